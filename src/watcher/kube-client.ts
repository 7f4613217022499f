// Kubernetes access: credentials from @kubernetes/client-node's KubeConfig, HTTP done here, so the
// list/watch loop controls timeouts, backpressure and error handling itself.
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

export type Kind = 'VirtualMachine' | 'VirtualMachineInstance';
export const KINDS: readonly Kind[] = ['VirtualMachine', 'VirtualMachineInstance'];

const RESOURCES: Record<Kind, string> = {
  VirtualMachine: 'virtualmachines',
  VirtualMachineInstance: 'virtualmachineinstances',
};

/** A Kubernetes `Status` answer (or an HTTP failure shaped like one). */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
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
  /** Path of a kubeconfig; null reads KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  kubeconfig: string | null;
  requestTimeoutMs: number;
}

export class KubeClient {
  private readonly kc = new KubeConfig();
  readonly server: string;

  constructor(private readonly options: KubeClientOptions) {
    if (options.kubeconfig) this.kc.loadFromFile(options.kubeconfig);
    else this.kc.loadFromDefault();
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/+$/, '');
  }

  /** `/apis/kubevirt.io/v1[/namespaces/<ns>]/<resource>` */
  static path(kind: Kind, namespace: string): string {
    const ns = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    return `/apis/kubevirt.io/v1${ns}/${RESOURCES[kind]}`;
  }

  /** One list page, fully read and parsed. */
  async list(kind: Kind, namespace: string, query: { limit: number; continue?: string }, signal: AbortSignal): Promise<ObjectList> {
    const params: Record<string, string> = { limit: String(query.limit) };
    if (query.continue) params.continue = query.continue;
    const res = await this.get(KubeClient.path(kind, namespace), params, signal);
    const text = await readBody(res, this.options.requestTimeoutMs);
    if (res.statusCode !== 200) throw statusError(res.statusCode ?? 0, text);
    try {
      return JSON.parse(text) as ObjectList;
    } catch {
      throw new KubeApiError(res.statusCode, 'BadResponse', `list ${kind}: response is not JSON`);
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
    const res = await this.get(
      KubeClient.path(kind, namespace),
      {
        watch: 'true',
        resourceVersion: query.resourceVersion,
        allowWatchBookmarks: 'true',
        timeoutSeconds: String(query.timeoutSeconds),
      },
      signal,
    );
    if (res.statusCode !== 200) {
      const text = await readBody(res, this.options.requestTimeoutMs).catch(() => '');
      throw statusError(res.statusCode ?? 0, text);
    }
    return res;
  }

  private async get(path: string, params: Record<string, string>, signal: AbortSignal): Promise<http.IncomingMessage> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    // Fresh options per request: exec plugins and projected service-account tokens rotate.
    const opts: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
    await this.kc.applyToHTTPSOptions(opts);
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, { ...opts, signal }, (res) => {
        clearTimeout(timer);
        resolve(res);
      });
      // Only until the headers arrive: a watch body is long-lived by design and has its own idle timeout.
      const timer = setTimeout(() => req.destroy(new KubeApiError(0, 'Timeout', `GET ${url.pathname}: no response in ${this.options.requestTimeoutMs} ms`)), this.options.requestTimeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.on('socket', (socket) => socket.setKeepAlive(true, 30_000));
      req.end();
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
export function statusError(httpStatus: number, body: string): KubeApiError {
  try {
    const status = JSON.parse(body) as { kind?: string; code?: number; reason?: string; message?: string };
    if (status && status.kind === 'Status') {
      return new KubeApiError(status.code ?? httpStatus, status.reason ?? '', status.message ?? `HTTP ${httpStatus}`);
    }
  } catch {
    // not JSON: fall through
  }
  return new KubeApiError(httpStatus, http.STATUS_CODES[httpStatus] ?? '', `HTTP ${httpStatus}${body ? `: ${body.slice(0, 200)}` : ''}`);
}
