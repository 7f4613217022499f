// Core v1 Events, as the API server keeps them: namespaced, created by POST, counted up by PATCH
// (merge or strategic-merge patch of top-level fields), read by GET and list (namespaced or
// across namespaces, as a Table when kubectl asks for one), so `kubectl get events` shows them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson, sendStatus } from './status.js';

export interface CoreEvent {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string; creationTimestamp: string };
  involvedObject?: { kind?: string; namespace?: string; name?: string; uid?: string; apiVersion?: string };
  reason?: string;
  message?: string;
  type?: string;
  count?: number;
  firstTimestamp?: string;
  lastTimestamp?: string;
  source?: { component?: string; host?: string };
  [k: string]: unknown;
}

/** What the Events API has been asked, for tests. */
export interface EventCounters {
  creates: number;
  patches: number;
}

const MAX_BODY = 1024 * 1024;
const ROUTE = /^\/api\/v1(?:\/namespaces\/([^/]+))?\/events(?:\/([^/]+))?\/?$/;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy(new Error('request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export class CoreEvents {
  private readonly events = new Map<string, CoreEvent>();
  private rv = 0;
  private uid = 0;
  readonly counters: EventCounters = { creates: 0, patches: 0 };
  /** Answer every write with this status instead (a failing API server), or null. */
  failWrites: number | null = null;

  /** Every stored event, oldest first. */
  list(namespace?: string): CoreEvent[] {
    return [...this.events.values()].filter((e) => namespace === undefined || e.metadata.namespace === namespace);
  }

  static matches(path: string): boolean {
    return ROUTE.test(path);
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const m = ROUTE.exec(url.pathname);
    if (!m) return sendStatus(res, 404, 'the server could not find the requested resource');
    const ns = m[1] && decodeURIComponent(m[1]);
    const name = m[2] && decodeURIComponent(m[2]);
    const method = req.method ?? 'GET';
    if (method !== 'GET' && this.failWrites !== null) {
      await readBody(req).catch(() => '');
      return sendStatus(res, this.failWrites, `simulated failure (HTTP ${this.failWrites})`);
    }
    if (method === 'GET' && name === undefined) return this.sendList(req, res, ns);
    if (ns === undefined) return sendStatus(res, 405, 'the server does not allow this method on the requested resource');
    if (method === 'POST' && name === undefined) return this.create(ns, await readBody(req), res);
    if (name === undefined) return sendStatus(res, 405, 'the server does not allow this method on the requested resource');
    const key = `${ns}/${name}`;
    const existing = this.events.get(key);
    if (method === 'GET') {
      if (!existing) return sendStatus(res, 404, `events "${name}" not found`, { details: { name, kind: 'events' } });
      return sendJson(res, 200, existing);
    }
    if (method === 'PATCH') {
      const body = await readBody(req);
      if (!existing) return sendStatus(res, 404, `events "${name}" not found`, { details: { name, kind: 'events' } });
      let patch: unknown;
      try {
        patch = JSON.parse(body);
      } catch {
        return sendStatus(res, 400, 'the patch is not JSON');
      }
      if (!isRecord(patch)) return sendStatus(res, 400, 'the patch is not a JSON object');
      const next = { ...existing };
      for (const [k, v] of Object.entries(patch)) {
        if (k === 'metadata' || k === 'apiVersion' || k === 'kind') continue;
        if (v === null) delete next[k];
        else next[k] = v;
      }
      next.metadata = { ...existing.metadata, resourceVersion: String(++this.rv) };
      this.events.set(key, next);
      this.counters.patches++;
      return sendJson(res, 200, next);
    }
    if (method === 'DELETE') {
      if (!existing) return sendStatus(res, 404, `events "${name}" not found`);
      this.events.delete(key);
      return sendJson(res, 200, existing);
    }
    return sendStatus(res, 405, 'the server does not allow this method on the requested resource');
  }

  private create(ns: string, body: string, res: ServerResponse): void {
    let ev: unknown;
    try {
      ev = JSON.parse(body);
    } catch {
      return sendStatus(res, 400, 'the body is not JSON');
    }
    if (!isRecord(ev)) return sendStatus(res, 400, 'the body is not a JSON object');
    const meta = isRecord(ev.metadata) ? ev.metadata : {};
    const name = typeof meta.name === 'string' && meta.name ? meta.name : `event.${(++this.uid).toString(16)}`;
    if (typeof meta.namespace === 'string' && meta.namespace !== ns) return sendStatus(res, 400, 'the namespace of the provided object does not match the namespace sent on the request');
    const involved = isRecord(ev.involvedObject) ? ev.involvedObject : {};
    if (involved.namespace !== undefined && involved.namespace !== ns) return sendStatus(res, 422, `Event "${name}" is invalid: involvedObject.namespace: Invalid value: does not match event.namespace`, { reason: 'Invalid' });
    const key = `${ns}/${name}`;
    if (this.events.has(key)) return sendStatus(res, 409, `events "${name}" already exists`, { reason: 'AlreadyExists' });
    const stored: CoreEvent = {
      ...(ev as Record<string, unknown>),
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: ns, uid: `sim-event-${++this.uid}`, resourceVersion: String(++this.rv), creationTimestamp: new Date().toISOString() },
    };
    this.events.set(key, stored);
    this.counters.creates++;
    sendJson(res, 201, stored);
  }

  private sendList(req: IncomingMessage, res: ServerResponse, ns: string | undefined): void {
    const items = this.list(ns);
    const accept = String(req.headers.accept ?? '');
    if (/as=Table/.test(accept)) return sendJson(res, 200, table(items, String(this.rv)));
    sendJson(res, 200, { apiVersion: 'v1', kind: 'EventList', metadata: { resourceVersion: String(this.rv) }, items });
  }
}

function age(ts: string | undefined): string {
  const t = ts ? Date.parse(ts) : NaN;
  if (!Number.isFinite(t)) return '<unknown>';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

/** The server-side printing kubectl asks for: the columns of `kubectl get events`. */
function table(items: CoreEvent[], rv: string): unknown {
  const col = (name: string, description: string, priority = 0) => ({ name, type: 'string', format: '', description, priority });
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: rv },
    columnDefinitions: [
      col('Last Seen', 'Time of the last occurrence'),
      col('Type', 'Normal or Warning'),
      col('Reason', 'Why the event was recorded'),
      col('Object', 'The object the event is about'),
      col('Count', 'Occurrences', 0),
      col('Message', 'What happened'),
    ],
    rows: items.map((e) => ({
      cells: [
        age(e.lastTimestamp ?? e.metadata.creationTimestamp),
        e.type ?? '',
        e.reason ?? '',
        `${String(e.involvedObject?.kind ?? '').toLowerCase()}/${e.involvedObject?.name ?? ''}`,
        String(e.count ?? 1),
        e.message ?? '',
      ],
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: e.metadata },
    })),
  };
}
