// Kubernetes access: credentials from kube-auth.ts (client-node's KubeConfig, read as kubectl reads
// it), HTTP done here, so the list/watch loop controls timeouts, backpressure and error handling itself.
import http from 'node:http';
import https from 'node:https';
import { OperatorError } from '../lib/operator-error.js';
import { KubeCredentials } from './kube-auth.js';
import { apiVersionOf, CORE_RESOURCES, resourcePath, type Kind, type Resource } from './resources.js';
import { ListFormatError, readList, type ItemHandler, type ListEnvelope } from './list-reader.js';

export type { Kind } from './resources.js';
/** The kinds every cluster has (VMs, VMIs); the instancetype ones are added once discovered. */
export const KINDS: readonly Kind[] = CORE_RESOURCES.map((r) => r.kind);

/** An API group's discovery document: its versions and the one the server prefers. */
export interface ApiGroup {
  name: string;
  versions: string[];
  preferredVersion: string;
}

/** A Kubernetes `Status` answer (or an HTTP failure shaped like one). */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    /** The server's Retry-After (429 from API Priority and Fairness, some 503s), in milliseconds. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }

  /** The resourceVersion or continue token is older than the server keeps. */
  get gone(): boolean {
    return this.status === 410 || this.reason === 'Expired' || this.reason === 'Gone' || /too old resource version/i.test(this.message);
  }
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface ObjectList {
  metadata?: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items?: KubeObject[];
}

export interface KubeClientOptions {
  /** Kubeconfig path(s) (a:b); null reads ~/.kube/config, then the in-cluster service account. */
  kubeconfig: string | null;
  requestTimeoutMs: number;
  /** Credentials already loaded (doctor, tests); else loaded from `kubeconfig`. */
  credentials?: KubeCredentials;
}

export class KubeClient {
  readonly credentials: KubeCredentials;
  private readonly resources = new Map<Kind, Resource>(CORE_RESOURCES.map((r) => [r.kind, r]));

  constructor(private readonly options: KubeClientOptions) {
    this.credentials = options.credentials ?? KubeCredentials.fromConfig(options.kubeconfig);
  }

  /**
   * Whether the API server ever accepted these credentials. A 401 before that (and after the
   * kubeconfig was read again) is a wrong credential, not one that expired mid-run: no retry fixes it.
   */
  private accepted = false;

  get server(): string {
    return this.credentials.server;
  }

  /** After the re-read: a credential the server never accepted ends the process (exit 2). */
  private refused(res: http.IncomingMessage): void {
    if (res.statusCode !== 401 || this.accepted) return;
    res.resume();
    const user = this.credentials.user;
    throw new OperatorError(
      `the Kubernetes API server at ${this.server} refused the credentials${user ? ` of user ${JSON.stringify(user)}` : ''} in ${this.credentials.description} (401 Unauthorized)`,
      'log in again (oc login, or a fresh token in the kubeconfig) or point KUBECONFIG at a kubeconfig whose user this cluster knows',
    );
  }

  /** Makes a resource (one of the instancetype ones, at its discovered version) known to list and watch. */
  register(resource: Resource): void {
    this.resources.set(resource.kind, resource);
  }

  resource(kind: Kind): Resource {
    const r = this.resources.get(kind);
    if (!r) throw new Error(`kind ${kind} is not registered`);
    return r;
  }

  /** The apiVersion objects of `kind` are served at (list items leave it off). */
  apiVersionOf(kind: Kind): string {
    return apiVersionOf(this.resource(kind));
  }

  /** `/apis/<group>/<version>[/namespaces/<ns>]/<plural>` */
  path(kind: Kind, namespace: string): string {
    return resourcePath(this.resource(kind), namespace);
  }

  /** `GET /apis/<group>`: the group's versions, or null when the server does not serve it (404). */
  async discoverGroup(group: string, signal: AbortSignal): Promise<ApiGroup | null> {
    const res = await this.get(`/apis/${group}`, {}, signal);
    const text = await readBody(res, this.options.requestTimeoutMs);
    if (res.statusCode === 404) return null;
    if (res.statusCode !== 200) throw statusError(res.statusCode ?? 0, text);
    let doc: { name?: string; versions?: { version?: string }[]; preferredVersion?: { version?: string } };
    try {
      doc = JSON.parse(text);
    } catch {
      throw new KubeApiError(200, 'BadResponse', `discovery of ${group}: response is not JSON`);
    }
    const versions = (doc.versions ?? []).map((v) => v.version).filter((v): v is string => typeof v === 'string' && v.length > 0);
    const preferredVersion = doc.preferredVersion?.version ?? versions[0];
    if (!preferredVersion) return null;
    return { name: doc.name ?? group, versions, preferredVersion };
  }

  /** One list page, fully read and parsed. */
  async list(kind: Kind, namespace: string, query: { limit: number; continue?: string }, signal: AbortSignal): Promise<ObjectList> {
    const params: Record<string, string> = { limit: String(query.limit) };
    if (query.continue) params.continue = query.continue;
    const selector = this.resource(kind).labelSelector;
    if (selector) params.labelSelector = selector;
    const res = await this.get(this.path(kind, namespace), params, signal);
    const text = await readBody(res, this.options.requestTimeoutMs);
    if (res.statusCode !== 200) throw statusError(res.statusCode ?? 0, text);
    try {
      return JSON.parse(text) as ObjectList;
    } catch {
      throw new KubeApiError(res.statusCode, 'BadResponse', `list ${kind}: response is not JSON`);
    }
  }

  /**
   * One list page read as it streams in: `onItem` gets each item as soon as it is parsed (and may
   * make reading wait); resolves with the envelope (resourceVersion, continue) once the body ends.
   */
  async listStream(
    kind: Kind,
    namespace: string,
    query: { limit: number; continue?: string },
    signal: AbortSignal,
    onItem: ItemHandler,
  ): Promise<ListEnvelope> {
    const params: Record<string, string> = { limit: String(query.limit) };
    if (query.continue) params.continue = query.continue;
    const selector = this.resource(kind).labelSelector;
    if (selector) params.labelSelector = selector;
    const res = await this.get(this.path(kind, namespace), params, signal);
    if (res.statusCode !== 200) {
      const text = await readBody(res, this.options.requestTimeoutMs).catch(() => '');
      throw statusError(res.statusCode ?? 0, text, res.headers['retry-after']);
    }
    try {
      return await readList(res, onItem, {
        idleTimeoutMs: this.options.requestTimeoutMs,
        onIdleTimeout: () => res.destroy(new KubeApiError(0, 'Timeout', `list ${kind}: no data for ${this.options.requestTimeoutMs} ms`)),
      });
    } catch (err) {
      if (err instanceof ListFormatError) throw new KubeApiError(0, res.complete ? 'BadResponse' : 'Aborted', `list ${kind}: ${err.message}`);
      throw err;
    } finally {
      if (!res.complete) {
        res.on('error', () => undefined);
        res.destroy();
      }
    }
  }

  /**
   * Opens a watch; resolves once the server answered 200 with the stream, which the caller reads
   * (and stops reading, for backpressure). Any other status rejects with a KubeApiError.
   */
  async watch(
    kind: Kind,
    namespace: string,
    query: { resourceVersion: string; timeoutSeconds: number },
    signal: AbortSignal,
  ): Promise<http.IncomingMessage> {
    const selector = this.resource(kind).labelSelector;
    const res = await this.get(
      this.path(kind, namespace),
      {
        watch: 'true',
        resourceVersion: query.resourceVersion,
        allowWatchBookmarks: 'true',
        timeoutSeconds: String(query.timeoutSeconds),
        ...(selector ? { labelSelector: selector } : {}),
      },
      signal,
    );
    if (res.statusCode !== 200) {
      const text = await readBody(res, this.options.requestTimeoutMs).catch(() => '');
      throw statusError(res.statusCode ?? 0, text);
    }
    return res;
  }

  /** A GET; on a 401 the credentials are read again (kube-auth.ts) and the request is sent once more. */
  private async get(path: string, params: Record<string, string>, signal: AbortSignal): Promise<http.IncomingMessage> {
    const res = await this.send('GET', path, params, null, signal);
    if (res.statusCode !== 401 || signal.aborted) return res;
    res.resume();
    this.credentials.refresh();
    const again = await this.send('GET', path, params, null, signal);
    this.refused(again);
    return again;
  }

  /** A JSON POST (SelfSubjectAccessReview), answered with its parsed body; 401 handled as for GET. */
  async post(path: string, body: unknown, signal: AbortSignal): Promise<{ status: number; body: unknown }> {
    const text = JSON.stringify(body);
    let res = await this.send('POST', path, {}, text, signal);
    if (res.statusCode === 401 && !signal.aborted) {
      res.resume();
      this.credentials.refresh();
      res = await this.send('POST', path, {}, text, signal);
      this.refused(res);
    }
    const answer = await readBody(res, this.options.requestTimeoutMs);
    if ((res.statusCode ?? 0) >= 300) throw statusError(res.statusCode ?? 0, answer);
    return { status: res.statusCode ?? 0, body: JSON.parse(answer) as unknown };
  }

  /** A GET of one JSON object (a namespace, discovery), parsed; non-200 rejects with a KubeApiError. */
  async getJson(path: string, signal: AbortSignal): Promise<unknown> {
    const res = await this.get(path, {}, signal);
    const text = await readBody(res, this.options.requestTimeoutMs);
    if (res.statusCode !== 200) throw statusError(res.statusCode ?? 0, text);
    return JSON.parse(text) as unknown;
  }

  /**
   * One write to the core API (Events): POST or PATCH with a JSON body of `contentType`; its status
   * and parsed answer (null when not JSON), whatever the status; 401 handled as for GET.
   */
  async write(method: 'POST' | 'PATCH', path: string, body: unknown, contentType: string, signal: AbortSignal): Promise<{ status: number; body: unknown }> {
    const text = JSON.stringify(body);
    let res = await this.send(method, path, {}, text, signal, contentType);
    if (res.statusCode === 401 && !signal.aborted) {
      res.resume();
      this.credentials.refresh();
      res = await this.send(method, path, {}, text, signal, contentType);
      this.refused(res);
    }
    const answer = await readBody(res, this.options.requestTimeoutMs);
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(answer) as unknown;
    } catch {
      parsed = null;
    }
    return { status: res.statusCode ?? 0, body: parsed };
  }

  private async send(method: string, path: string, params: Record<string, string>, body: string | null, signal: AbortSignal, contentType = 'application/json'): Promise<http.IncomingMessage> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    // Fresh options per request: exec plugins and projected service-account tokens rotate.
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== null) headers['Content-Type'] = contentType;
    const opts: https.RequestOptions = { method, headers };
    await this.credentials.applyTo(opts);
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, { ...opts, signal }, (res) => {
        clearTimeout(timer);
        if (res.statusCode !== 401) this.accepted = true;
        resolve(res);
      });
      // Only until the headers arrive: a watch body is long-lived by design and has its own idle timeout.
      const timer = setTimeout(() => req.destroy(new KubeApiError(0, 'Timeout', `${method} ${url.pathname}: no response in ${this.options.requestTimeoutMs} ms`)), this.options.requestTimeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.on('socket', (socket) => socket.setKeepAlive(true, 30_000));
      req.end(body ?? undefined);
    });
  }

}

function readBody(res: http.IncomingMessage, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => res.destroy(new KubeApiError(0, 'Timeout', `response body not complete in ${timeoutMs} ms`)), timeoutMs);
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    res.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    res.on('close', () => {
      clearTimeout(timer);
      if (!res.complete) reject(new KubeApiError(0, 'Aborted', 'connection closed before the response was complete'));
    });
  });
}

/** Turns a non-200 answer into a KubeApiError, using the Status body when there is one. */
export function statusError(httpStatus: number, body: string, retryAfter?: string | string[]): KubeApiError {
  const after = retryAfterMs(retryAfter);
  try {
    const status = JSON.parse(body) as { kind?: string; code?: number; reason?: string; message?: string; details?: { retryAfterSeconds?: number } };
    if (status && status.kind === 'Status') {
      const detail = status.details?.retryAfterSeconds;
      return new KubeApiError(status.code ?? httpStatus, status.reason ?? '', status.message ?? `HTTP ${httpStatus}`, after ?? (detail ? detail * 1000 : undefined));
    }
  } catch {
    // not JSON: fall through
  }
  return new KubeApiError(httpStatus, http.STATUS_CODES[httpStatus] ?? '', `HTTP ${httpStatus}${body ? `: ${body.slice(0, 200)}` : ''}`, after);
}

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 10.2.3), in milliseconds; undefined if absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}
