// One full, paginated list of a kind in a scope, written for big objects and busy API servers:
// - items stream in one at a time (list-reader.ts) and go to the database in sub-batches of at
//   most BATCH_MAX_BYTES / BATCH_MAX_EVENTS, one written while the next is read;
// - every item read but not yet committed holds its bytes in the process's memory budget: when
//   the budget is full the list stops reading its socket until a write commits;
// - the page size follows the bytes per object seen (LIST_PAGE_BYTES per page at most);
// - a page that fails with a 429, a 5xx, a timeout or a cut connection is asked again with the
//   same continue token after a capped, jittered backoff, never shorter than the server's
//   Retry-After; only an expired continue token (410) starts the list over.
// - lists of all streams take turns (LIST_CONCURRENCY at once): after a mass 410, fifty
//   namespaces do not all hold their pages at the same moment.
import { backoffDelay, sleep, type Backoff } from '../lib/retry.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';
import { KubeApiError, type Kind, type KubeClient, type KubeObject } from './kube-client.js';
import { prepareEvent, type WatchEvent } from './events.js';
import type { ObjectLimits } from './limits.js';
import type { MemoryBudget } from './memory-budget.js';

export interface ListPagerOptions {
  listPageSize: number;
  listPageBytes: number;
  batchMaxEvents: number;
  batchMaxBytes: number;
  backoff: Backoff;
  /** Objects over these are trimmed to what the contract reads, with a reject (limits.ts). */
  limits?: ObjectLimits;
  /** Longest wait before asking a page again, whatever Retry-After says. */
  maxRetryDelayMs?: number;
}

export interface ListPagerDeps {
  kube: Pick<KubeClient, 'listStream' | 'apiVersionOf'>;
  /** Writes one sub-batch of ADDED events (retrying database failures itself). */
  apply: (events: WatchEvent[]) => Promise<void>;
  /**
   * After each page: the list's objects and pages so far (from zero again when an expired continue
   * token restarts it) and the server's remainingItemCount (absent on the last page, or not given).
   */
  onPage?: (progress: { objects: number; pages: number; remaining?: number }) => void;
  /** Called whenever the API server answers (a page's headers, its items): for step-down's health. */
  onContact?: () => void;
  budget: MemoryBudget;
  gate: ListGate;
  options: ListPagerOptions;
  logger: Logger;
  metrics?: Metrics;
}

export interface ListResult {
  resourceVersion: string;
  uids: string[];
  objects: number;
  pages: number;
  pageRetries: number;
}

/** At most n lists at once, first come first served. */
export class ListGate {
  private running = 0;
  private readonly queue: Array<() => void> = [];
  private contactAt = 0;
  private databaseWaits = 0;
  constructor(
    readonly concurrency: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Last time the API server answered any list through this gate (watches waiting their turn count
   * it). A list waiting on its own writes (a slow or busy database) counts as in contact: the API
   * server is not what holds it up, and a standby would meet the same database.
   */
  get lastContactAt(): number {
    return this.databaseWaits > 0 ? this.now() : this.contactAt;
  }

  set lastContactAt(at: number) {
    this.contactAt = at;
  }

  /** Awaits `work` (a list's write, or the memory it waits for) as time spent on the database. */
  async waitingOnDatabase<T>(work: Promise<T>): Promise<T> {
    this.databaseWaits++;
    try {
      return await work;
    } finally {
      this.databaseWaits--;
      this.contactAt = Math.max(this.contactAt, this.now());
    }
  }

  async run<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    if (this.running >= this.concurrency) {
      await new Promise<void>((resolve, reject) => {
        const go = (): void => {
          signal.removeEventListener('abort', stop);
          resolve();
        };
        const stop = (): void => {
          const i = this.queue.indexOf(go);
          if (i >= 0) this.queue.splice(i, 1);
          reject(signal.reason ?? new Error('aborted'));
        };
        this.queue.push(go);
        signal.addEventListener('abort', stop, { once: true });
      });
    } else this.running++;
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/** 429, 5xx, timeouts and broken connections: worth asking the same page again. */
export function isRetryableListError(err: unknown): boolean {
  if (err instanceof KubeApiError) {
    if (err.gone) return false;
    return err.status === 0 || err.status === 429 || err.status >= 500;
  }
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|ERR_STREAM_PREMATURE_CLOSE|UND_ERR_SOCKET)$/.test(code);
}

/** Delay before asking a page again: the backoff, but never less than Retry-After; capped. */
export function retryDelay(err: unknown, attempt: number, backoff: Backoff, maxMs = 60_000): number {
  const base = backoffDelay(attempt, backoff);
  const after = err instanceof KubeApiError ? err.retryAfterMs : undefined;
  if (after === undefined) return base;
  // Honour the server, plus a little jitter so a crowd of clients does not come back in step.
  return Math.min(maxMs, Math.max(base, after + Math.round(Math.random() * Math.min(1000, after * 0.2 + 100))));
}

const INITIAL_BYTES_PER_OBJECT = 12 * 1024;
const MIN_PAGE = 10;

class Pipeline {
  private inflight: Promise<void> | null = null;
  private events: WatchEvent[] = [];
  private bytes = 0;
  constructor(
    private readonly apply: (events: WatchEvent[]) => Promise<void>,
    private readonly budget: MemoryBudget,
  ) {}

  get size(): { events: number; bytes: number } {
    return { events: this.events.length, bytes: this.bytes };
  }

  add(event: WatchEvent, bytes: number): void {
    this.events.push(event);
    this.bytes += bytes;
  }

  /** Starts writing what is collected (after the write before it has committed). */
  async send(): Promise<void> {
    const prev = this.inflight;
    if (prev) await prev;
    if (this.events.length === 0) return;
    const events = this.events;
    const bytes = this.bytes;
    this.events = [];
    this.bytes = 0;
    const write = this.apply(events).finally(() => this.budget.release(bytes));
    write.catch(() => undefined); // surfaces at the next send() or drain()
    this.inflight = write;
  }

  /** Drops what is collected and not yet sent (a page that will be read again). */
  discard(): void {
    this.budget.release(this.bytes);
    this.events = [];
    this.bytes = 0;
  }

  async drain(): Promise<void> {
    await this.send();
    const last = this.inflight;
    this.inflight = null;
    if (last) await last;
  }
}

/** Lists everything of `kind` in `scope`; returns the list's resourceVersion and the uids seen. */
export async function listAll(kind: Kind, scope: string, deps: ListPagerDeps, signal: AbortSignal, log: Logger): Promise<ListResult> {
  return deps.gate.run(() => listOnce(kind, scope, deps, signal, log), signal);
}

async function listOnce(kind: Kind, scope: string, deps: ListPagerDeps, signal: AbortSignal, log: Logger): Promise<ListResult> {
  const { kube, budget, options, metrics } = deps;
  const maxBytes = Math.max(1, options.batchMaxBytes);
  const dbWait = <T>(work: Promise<T>): Promise<T> => deps.gate.waitingOnDatabase(work);
  let pageRetries = 0;
  restart: for (;;) {
    const uids = new Set<string>();
    const pipeline = new Pipeline(deps.apply, budget);
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    let objects = 0;
    let bytesSeen = 0;
    let pages = 0;
    try {
      do {
        // Until objects were seen, assume a production-sized one (a VM ~8 KB, a VMI ~12 KB).
        const avg = objects > 0 ? bytesSeen / objects : INITIAL_BYTES_PER_OBJECT;
        const limit = Math.max(MIN_PAGE, Math.min(options.listPageSize, Math.floor(options.listPageBytes / avg)));
        let envelope;
        for (let attempt = 0; ; attempt++) {
          let pageObjects = 0;
          let pageBytes = 0;
          const pageUids: string[] = [];
          try {
            envelope = await kube.listStream(kind, scope, { limit, continue: cont }, signal, async (item, bytes) => {
              deps.gate.lastContactAt = Date.now();
              deps.onContact?.();
              if (!budget.tryAcquire(bytes)) {
                // Write what this list holds before waiting: whoever waits on the budget holds nothing.
                await dbWait(pipeline.send());
                await dbWait(budget.acquire(bytes, signal));
              }
              // Oversized or too deep objects are trimmed to what the contract reads, with a reject (limits.ts).
              const event = prepareEvent('ADDED', item as KubeObject, kind, options.limits, bytes, kube.apiVersionOf(kind));
              const uid = event.object.metadata?.uid;
              if (typeof uid === 'string' && uid) pageUids.push(uid);
              if (event.reject) metrics?.objectsTrimmed.inc({ kind, reason: event.reject.value && 'depth' in (event.reject.value as object) ? 'depth' : 'size' });
              pipeline.add(event, bytes);
              pageObjects++;
              pageBytes += bytes;
              const size = pipeline.size;
              if (size.bytes >= maxBytes || size.events >= options.batchMaxEvents) await dbWait(pipeline.send());
            });
            deps.gate.lastContactAt = Date.now();
            deps.onContact?.();
            for (const u of pageUids) uids.add(u);
            objects += pageObjects;
            bytesSeen += pageBytes;
            metrics?.listedObjects.inc({ kind }, pageObjects);
            break;
          } catch (err) {
            if (signal.aborted || !isRetryableListError(err)) throw err;
            // What this attempt read and has not yet written is read again with the same token.
            pipeline.discard();
            pageRetries++;
            metrics?.listPageRetries.inc({ kind, reason: err instanceof KubeApiError ? String(err.status || err.reason) : 'network' });
            const delay = retryDelay(err, attempt, options.backoff, options.maxRetryDelayMs);
            log.warn({ err, page: pages + 1, attempt, delayMs: delay, continue: !!cont }, 'list page failed; asking for it again');
            await sleep(delay, signal);
            if (signal.aborted) throw err;
          }
        }
        pages++;
        cont = envelope.metadata?.continue || undefined;
        resourceVersion = envelope.metadata?.resourceVersion ?? resourceVersion;
        const remaining = envelope.metadata?.remainingItemCount;
        deps.onPage?.({ objects, pages, remaining: cont && typeof remaining === 'number' && remaining >= 0 ? remaining : undefined });
        // The last sub-batch of a page is written while the next page is read.
        await dbWait(pipeline.send());
      } while (cont);
      await dbWait(pipeline.drain());
    } catch (err) {
      pipeline.discard();
      await pipeline.drain().catch(() => undefined);
      if (err instanceof KubeApiError && err.gone && cont && !signal.aborted) {
        metrics?.relists.inc({ kind, reason: 'continue_expired' });
        log.warn({ err }, 'continue token expired; listing again from the start');
        continue restart;
      }
      throw err;
    }
    if (!resourceVersion) throw new KubeApiError(0, 'BadResponse', `list ${kind} carried no resourceVersion`);
    return { resourceVersion, uids: [...uids], objects, pages, pageRetries };
  }
}
