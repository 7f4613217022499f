// One watch stream: newline-delimited JSON events over a chunked 200 response, following the
// API server's watch cache: history replay from a resourceVersion, selector transitions
// turned into ADDED/DELETED for this watcher, periodic BOOKMARKs, timeoutSeconds, and forced
// close of watchers that do not read (the real server drops them rather than buffer forever).
import { stringifyDeep } from '../lib/json.js';
import type { ServerResponse } from 'node:http';
import { statusBody } from './status.js';
import { ExpiredError, KINDS, withResourceVersion, type ChangeEvent, type Resource, type Store } from './store.js';

export interface WatchSpec {
  resource: Resource;
  /** Namespace-scoped watch; undefined = all namespaces. */
  namespace?: string;
  match?: (obj: unknown) => boolean;
  /** Replay changes after this revision; undefined = start with synthetic ADDED for every current object. */
  sinceRv?: number;
  allowBookmarks: boolean;
  bookmarkIntervalMs: number;
  /** Server-side timeout after which the stream ends cleanly. */
  timeoutMs: number;
  /** Close the stream when this many bytes are queued unread. */
  maxBufferedBytes: number;
  /** The client asked for Tables (kubectl get -w): each event's object becomes a one-row Table. */
  table?: (obj: unknown, withColumns: boolean) => unknown;
}

export interface WatchHooks {
  onEventSent(resource: Resource, type: string): void;
  onClose(stream: WatchStream): void;
}

/** JSON lines are built once per change and shared by every watcher that receives it unchanged. */
const lineCache = new WeakMap<ChangeEvent, string>();

function lineFor(ev: ChangeEvent): string {
  let line = lineCache.get(ev);
  if (line === undefined) {
    line = `{"type":"${ev.type}","object":${stringifyDeep(ev.obj)}}\n`;
    lineCache.set(ev, line);
  }
  return line;
}

export class WatchStream {
  /** Newest revision this stream has dealt with (sent or filtered out): where a resume replays from. */
  lastRv: number;
  private stalled = false;
  /** The initial synthetic ADDED events are still owed (stream started stalled). */
  private needsInitial = false;
  private headersSent = false;
  private closed = false;
  private tableColumnsSent = false;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly res: ServerResponse,
    private readonly store: Store,
    readonly spec: WatchSpec,
    private readonly hooks: WatchHooks,
  ) {
    this.lastRv = spec.sinceRv ?? store.resourceVersion;
    res.on('close', () => this.finish());
  }

  get isStalled(): boolean {
    return this.stalled;
  }

  /**
   * Starts the stream. `stalled`: behave like a black-holed connection (no headers, nothing) until resume().
   * Throws ExpiredError before anything is written when sinceRv is compacted (the caller chooses how to answer).
   */
  start(stalled: boolean): void {
    const backlog = this.spec.sinceRv === undefined ? undefined : this.store.changesSince(this.spec.sinceRv);
    this.stalled = stalled;
    this.timers.push(setTimeout(() => this.end(true), this.spec.timeoutMs));
    if (this.spec.allowBookmarks) {
      this.timers.push(setInterval(() => this.bookmark(), this.spec.bookmarkIntervalMs));
    }
    if (stalled) {
      this.needsInitial = backlog === undefined;
      return;
    }
    this.sendHeaders();
    if (backlog === undefined) this.sendInitialState();
    else for (const ev of backlog) this.deliver(ev);
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    this.res.flushHeaders();
  }

  /** rv unset or "0": the current state as synthetic ADDED events, then live changes. */
  private sendInitialState(): void {
    const prefix = this.spec.namespace === undefined ? undefined : `${this.spec.namespace}/`;
    for (const obj of this.store.all(this.spec.resource)) {
      if (prefix !== undefined && (obj as { metadata?: { namespace?: unknown } })?.metadata?.namespace !== this.spec.namespace) continue;
      if (this.spec.match && !this.spec.match(obj)) continue;
      this.write(`{"type":"ADDED","object":${stringifyDeep(obj)}}\n`, 'ADDED');
    }
    this.lastRv = this.store.resourceVersion;
  }

  private inScope(key: string): boolean {
    return this.spec.namespace === undefined || key.startsWith(`${this.spec.namespace}/`);
  }

  /** Applies one change to this watcher, as the watch cache's per-watcher filter does. */
  deliver(ev: ChangeEvent): void {
    if (this.closed || this.stalled || ev.rv <= this.lastRv) return;
    this.lastRv = ev.rv;
    if (ev.resource !== this.spec.resource || !this.inScope(ev.key)) return;
    const match = this.spec.match;
    const curPasses = ev.type !== 'DELETED' && (!match || match(ev.obj));
    const oldPasses = ev.prev !== undefined && (!match || match(ev.prev));
    if (curPasses && (oldPasses || ev.type === 'ADDED')) return this.write(lineFor(ev), ev.type);
    if (curPasses) return this.write(`{"type":"ADDED","object":${stringifyDeep(ev.obj)}}\n`, 'ADDED');
    if (!oldPasses) return;
    if (ev.type === 'DELETED') return this.write(lineFor(ev), 'DELETED');
    // Left the selector: a DELETED of the previous content at this event's revision.
    this.write(`{"type":"DELETED","object":${stringifyDeep(withResourceVersion(ev.prev, ev.rv))}}\n`, 'DELETED');
  }

  private bookmark(): void {
    if (this.closed || this.stalled) return;
    const { kind } = KINDS[this.spec.resource];
    const rv = this.store.resourceVersion;
    this.lastRv = Math.max(this.lastRv, rv);
    this.write(`{"type":"BOOKMARK","object":{"kind":"${kind}","apiVersion":"kubevirt.io/v1","metadata":{"resourceVersion":"${rv}"}}}\n`, 'BOOKMARK');
  }

  private write(line: string, type: string): void {
    if (this.closed) return;
    if (this.spec.table && type !== 'BOOKMARK' && type !== 'ERROR') {
      const ev = JSON.parse(line) as { type: string; object: unknown };
      line = `${JSON.stringify({ type: ev.type, object: this.spec.table(ev.object, !this.tableColumnsSent) })}\n`;
      this.tableColumnsSent = true;
    }
    this.res.write(line);
    this.hooks.onEventSent(this.spec.resource, type);
    if (this.res.writableLength > this.spec.maxBufferedBytes) this.drop();
  }

  /** Sends an ERROR event (e.g. 410 Expired) and ends the stream, as the watch cache does. */
  fail(code: number, message: string, reason?: string): void {
    this.sendHeaders();
    const status = statusBody(code, message, reason ? { reason } : {});
    this.write(`{"type":"ERROR","object":${JSON.stringify(status)}}\n`, 'ERROR');
    this.end(false);
  }

  /** Stops sending anything (connection kept open) until resume(). */
  stall(): void {
    this.stalled = true;
  }

  /** Lifts a stall: sends headers if they were held, then what happened meanwhile (or 410 if compacted). */
  resume(): void {
    if (this.closed || !this.stalled) return;
    this.stalled = false;
    this.sendHeaders();
    if (this.needsInitial) {
      this.needsInitial = false;
      return this.sendInitialState();
    }
    let backlog: ChangeEvent[];
    try {
      backlog = this.store.changesSince(this.lastRv);
    } catch (err) {
      if (err instanceof ExpiredError) return this.fail(410, err.message);
      throw err;
    }
    for (const ev of backlog) this.deliver(ev);
  }

  /** Ends the chunked response cleanly (timeoutSeconds, graceful drop); a final bookmark first, like the cacher. */
  end(finalBookmark: boolean): void {
    if (this.closed) return;
    if (finalBookmark && this.spec.allowBookmarks && !this.stalled && this.headersSent) this.bookmark();
    if (!this.headersSent) this.sendHeaders();
    this.closed = true;
    this.res.end();
    this.finish();
  }

  /** Cuts the connection abruptly (no terminating chunk): what a network failure looks like. */
  drop(): void {
    this.closed = true;
    this.res.destroy();
    this.finish();
  }

  private finished = false;
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.hooks.onClose(this);
  }
}
