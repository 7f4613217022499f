// The list+watch loop for one kind in one scope (a namespace, or '' for cluster-wide), written for
// the ways watches fail: streams that end, stall silently, or answer 410 Gone; servers that refuse.
import type http from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { Pacer, type Backoff } from '../lib/retry.js';
import { KubeApiError, type Kind, type KubeClient, type KubeObject } from './kube-client.js';
import { listAll, type ListGate, type ListPagerOptions } from './list-pager.js';
import type { MemoryBudget } from './memory-budget.js';
import type { Logger } from '../lib/log.js';
import { setResourceVersion, type Metrics } from './metrics.js';
import { BatcherClosedError } from './batcher.js';
import { isDatabaseError } from '../pg/errors.js';
import { ListProgress, type SaveListProgress } from './list-progress.js';
import { oversizeReject, prepareEvent, prepareObject, type Checkpoint, type WatchEvent } from './events.js';
import type { ObjectLimits } from './limits.js';
import { LineSkimmer, type Skimmed } from './line-skim.js';

/** Where watch events go (the batcher). */
export interface EventSink {
  push(event: WatchEvent, checkpoint: Checkpoint | null, receivedAt?: number, bytes?: number): Promise<void>;
  checkpoint(checkpoint: Checkpoint): void;
}

/**
 * The database side of a full list (the term's writer). Whether a page merges at once or waits for
 * the cold start's reconcile, and that watch events queued before the list land before it, is the
 * writer's business.
 */
export interface ListStore {
  writeListPage(kind: Kind, scope: string, events: WatchEvent[]): Promise<void>;
  finishList(kind: Kind, scope: string, presentUids: string[], resourceVersion: string): Promise<void>;
}

export interface WatchOptions extends ListPagerOptions {
  listPageSize: number;
  watchTimeoutSeconds: number;
  watchIdleTimeoutMs: number;
  backoff: Backoff;
  /** Bounds of one object (MAX_OBJECT_BYTES, MAX_OBJECT_DEPTH). */
  limits: ObjectLimits;
}

export interface WatchDeps {
  kube: KubeClient;
  sink: EventSink;
  store: ListStore;
  options: WatchOptions;
  logger: Logger;
  metrics?: Metrics;
  /** The process's memory budget (list items and batched objects, in bytes of JSON). */
  budget: MemoryBudget;
  /** Lists of all streams take turns through it. */
  gate: ListGate;
  /** Where list progress goes for `status` (the leader session, fenced); none in unit tests. */
  saveProgress?: SaveListProgress;
}

/** Why a stream that did not fail ended: the server closed it, or this side cut it. */
type StreamEnd = 'closed' | 'idle' | 'trickle' | 'expired';

interface StreamState {
  /** The position reached: the resourceVersion of the last event handled. */
  resourceVersion: string;
  lines: number;
}

class StreamCutError extends Error {
  override name = 'StreamCutError';
  constructor(readonly why: StreamEnd) {
    super(`watch stream cut: ${why}`);
  }
}

/** A stream may outlive its timeoutSeconds by this much (or 10 %) before this side ends it. */
const STREAM_MARGIN_MS = 15_000;

/** A stream that ran this long is healthy: its end is routine, not a reason to back off. */
const HEALTHY_STREAM_MS = 10_000;
const READY_GRACE_MS = 30_000;

export class ResourceWatch {
  /** True while a watch stream is open (the server answered 200). */
  established = false;
  /** Last time a stream of this watch was open and delivering. */
  private lastAliveAt = 0;
  /** Last time the API server answered: a list page, a stream opened, data on it (for step-down). */
  private contactAt = 0;
  /**
   * Waiting for a list of its own (not yet listed this term, or after a 410) while lists take turns:
   * the API server answering the list in progress counts as contact for this watch too.
   */
  private awaitingList = true;

  get lastContactAt(): number {
    return this.awaitingList ? Math.max(this.contactAt, this.deps.gate.lastContactAt) : this.contactAt;
  }

  set lastContactAt(at: number) {
    this.contactAt = at;
  }
  private readonly logger: Logger;

  constructor(
    readonly kind: Kind,
    readonly scope: string,
    private readonly deps: WatchDeps,
  ) {
    this.logger = deps.logger.child({ kind, scope: scope || '*' });
  }

  /** For /readyz: a stream is open, or was moments ago (a routine reconnect is not unreadiness). */
  get ready(): boolean {
    return this.established || Date.now() - this.lastAliveAt < READY_GRACE_MS;
  }

  /**
   * Lists everything (page by page into the store, list-pager.ts), marks what is gone as deleted and
   * saves the list's resourceVersion, which it returns. A failed page is asked again; an expired
   * continue token restarts the list.
   */
  async relist(reason: string, signal: AbortSignal): Promise<string> {
    const { kube, store, options, metrics, budget, gate } = this.deps;
    metrics?.relists.inc({ kind: this.kind, reason });
    this.logger.info({ reason }, 'listing');
    const progress = new ListProgress({ kind: this.kind, scope: this.scope, reason, logger: this.logger, metrics, save: this.deps.saveProgress });
    let result: Awaited<ReturnType<typeof listAll>>;
    try {
      result = await listAll(
        this.kind,
        this.scope,
        {
          kube,
          apply: (events) => store.writeListPage(this.kind, this.scope, events),
          onPage: (p) => progress.page(p.objects, p.pages, p.remaining),
          onContact: () => (this.lastContactAt = Date.now()),
          budget,
          gate,
          options,
          logger: this.logger,
          metrics,
        },
        signal,
        this.logger,
      );
      await gate.waitingOnDatabase(store.finishList(this.kind, this.scope, result.uids, result.resourceVersion));
    } catch (err) {
      progress.done(false);
      throw err;
    }
    progress.done();
    this.awaitingList = false;
    this.logger.info({ objects: result.objects, pages: result.pages, pageRetries: result.pageRetries, resourceVersion: result.resourceVersion }, 'listed');
    return result.resourceVersion;
  }

  /**
   * Watches from `resourceVersion` until `signal` aborts, relisting whenever the server says the
   * version is gone. Throws only if the signal is not the reason it stopped.
   */
  async run(resourceVersion: string | null, signal: AbortSignal): Promise<void> {
    const { metrics, options } = this.deps;
    let rv = resourceVersion;
    const pacer = new Pacer(options.backoff);
    while (!signal.aborted) {
      let reason: string;
      let healthy = false;
      try {
        if (rv === null) rv = await this.relist('gone', signal);
        const stream: StreamState = { resourceVersion: rv, lines: 0 };
        const started = Date.now();
        let end: StreamEnd;
        try {
          end = await this.watchOnce(stream, signal);
        } finally {
          // Whatever ends the stream (its end, a cut, an error), it resumes from the last event handled.
          rv = stream.resourceVersion;
        }
        if (signal.aborted) break;
        reason = end;
        healthy = stream.lines > 0 || Date.now() - started >= HEALTHY_STREAM_MS;
        if (end === 'idle') this.logger.warn({ idleMs: options.watchIdleTimeoutMs }, 'watch stream silent; restarting it');
        else if (end === 'trickle') this.logger.warn({ idleMs: options.watchIdleTimeoutMs }, 'watch stream trickling: bytes but no event; restarting it');
        else if (end === 'expired') this.logger.info({ timeoutSeconds: options.watchTimeoutSeconds }, 'watch stream outlived its timeoutSeconds; restarting it');
        else this.logger.debug('watch stream ended; resuming');
      } catch (err) {
        this.established = false;
        if (signal.aborted) break;
        // The database side failing is the term's problem, not this stream's: let the owner decide.
        if (isDatabaseError(err) || err instanceof BatcherClosedError) throw err;
        if (err instanceof KubeApiError && err.gone) {
          this.logger.info({ err: err.message, resourceVersion: rv }, 'resourceVersion gone; relisting');
          rv = null;
          this.awaitingList = true;
          reason = 'gone';
        } else {
          reason = 'error';
          this.logger.warn({ err, resourceVersion: rv, consecutiveFailures: pacer.attempts + 1 }, 'watch failed');
        }
      }
      metrics?.watchRestarts.inc({ kind: this.kind, reason });
      // A healthy stream's end reconnects at once; failures, empty streams and repeated 410s back off.
      if (healthy) pacer.reset();
      else await pacer.wait(signal);
    }
    this.established = false;
  }

  /**
   * One watch request, read to its end. `stream.resourceVersion` follows every event handled, so the
   * caller resumes from there even when this throws. The stream is bounded on this side too: restarted
   * when no complete event arrives for the idle timeout (however many bytes do), and when it outlives
   * its timeoutSeconds plus a margin (a server or proxy that never ends it).
   */
  private async watchOnce(stream: StreamState, signal: AbortSignal): Promise<StreamEnd> {
    const { kube, options } = this.deps;
    const res = await kube.watch(this.kind, this.scope, { resourceVersion: stream.resourceVersion, timeoutSeconds: options.watchTimeoutSeconds }, signal);
    this.established = true;
    this.awaitingList = false;
    this.lastAliveAt = this.lastContactAt = Date.now();
    let ended: StreamEnd | null = null;
    let bytesSinceEvent = 0;
    const cut = (why: StreamEnd): void => {
      ended ??= why;
      res.destroy(new StreamCutError(why));
    };
    let idleTimer: NodeJS.Timeout | null = null;
    // Armed when an event has been handled; bytes alone (a trickle) do not re-arm it.
    const arm = (): void => {
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => cut(bytesSinceEvent > 0 ? 'trickle' : 'idle'), options.watchIdleTimeoutMs);
    };
    const lifetimeMs = options.watchTimeoutSeconds * 1000 + Math.max(STREAM_MARGIN_MS, options.watchTimeoutSeconds * 100);
    const lifetime = setTimeout(() => cut('expired'), lifetimeMs);
    const decoder = new StringDecoder('utf8');
    // The line being read: its pieces while it is small enough to parse, else a skimmer that
    // keeps only what the contract reads.
    let parts: string[] = [];
    let partChars = 0;
    let skim: LineSkimmer | null = null;
    const maxChars = options.limits.maxBytes;
    try {
      arm();
      // for-await stops reading while a line is being handled: a blocked push() pauses the socket.
      for await (const chunk of res as AsyncIterable<Buffer>) {
        bytesSinceEvent += chunk.length;
        this.lastContactAt = Date.now();
        const text = decoder.write(chunk);
        let from = 0;
        let nl: number;
        while ((nl = text.indexOf('\n', from)) >= 0) {
          const piece = text.slice(from, nl);
          from = nl + 1;
          let skimmed: Skimmed | null = null;
          let line = '';
          if (skim) {
            skim.feed(piece);
            skimmed = skim.finish();
            skim = null;
          } else {
            line = (partChars ? parts.join('') + piece : piece).trim();
            parts = [];
            partChars = 0;
            if (!line) continue;
          }
          // Waiting for room in the batcher (backpressure) is not silence.
          if (idleTimer) clearTimeout(idleTimer);
          stream.lines++;
          const next = skimmed ? await this.handleSkimmed(skimmed, stream.resourceVersion) : await this.handleLine(line, stream.resourceVersion);
          stream.resourceVersion = next ?? stream.resourceVersion;
          bytesSinceEvent = text.length - from;
          this.lastAliveAt = Date.now();
          arm();
        }
        const rest = from === 0 ? text : text.slice(from);
        if (rest) {
          if (skim) skim.feed(rest);
          else {
            parts.push(rest);
            partChars += rest.length;
            if (partChars > maxChars) {
              skim = new LineSkimmer();
              for (const p of parts) skim.feed(p);
              parts = [];
              partChars = 0;
            }
          }
        }
      }
      return ended ?? 'closed';
    } catch (err) {
      if (ended !== null || err instanceof StreamCutError) return ended ?? 'idle';
      throw err;
    } finally {
      if (idleTimer) clearTimeout(idleTimer);
      clearTimeout(lifetime);
      this.established = false;
      destroyQuietly(res);
    }
  }

  /** Handles one event line; returns the resourceVersion it moves the stream to. */
  private async handleLine(line: string, current: string): Promise<string | undefined> {
    let parsed: { type?: string; object?: KubeObject };
    try {
      parsed = JSON.parse(line) as { type?: string; object?: KubeObject };
    } catch {
      throw new KubeApiError(0, 'BadResponse', `watch ${this.kind}: a line is not JSON`);
    }
    if (!parsed || typeof parsed !== 'object') throw new KubeApiError(0, 'BadResponse', `watch ${this.kind}: a line is not a JSON object`);
    return this.handleEvent(parsed.type, parsed.object, current, line.length);
  }

  /** A line too large to parse: what the skimmer kept of it, sent with a reject. */
  private async handleSkimmed(skimmed: Skimmed, current: string): Promise<string | undefined> {
    const type = typeof skimmed.type === 'string' ? skimmed.type : undefined;
    this.logger.warn({ type, chars: skimmed.chars, name: (skimmed.object.metadata as { name?: unknown } | undefined)?.name }, 'watch event over MAX_OBJECT_BYTES; only the contract\'s fields kept');
    return this.handleEvent(type, skimmed.object as KubeObject, current, skimmed.chars, true);
  }

  private async handleEvent(type: string | undefined, object: KubeObject | undefined, current: string, chars: number, skimmed = false): Promise<string | undefined> {
    const { sink, metrics, options } = this.deps;
    metrics?.eventsReceived.inc({ kind: this.kind, type: String(type) });
    if (type === 'ERROR') {
      const status = (object ?? {}) as { code?: number; reason?: string; message?: string };
      throw new KubeApiError(status.code ?? 0, status.reason ?? '', status.message ?? 'watch ERROR event');
    }
    if (!object || typeof object !== 'object') return undefined;
    const rv = typeof object.metadata?.resourceVersion === 'string' ? object.metadata.resourceVersion : undefined;
    if (metrics) setResourceVersion(metrics.watchResourceVersion, this.kind, this.scope, rv);
    if (type === 'BOOKMARK') {
      if (rv && rv !== current) sink.checkpoint({ kind: this.kind, scope: this.scope, resourceVersion: rv });
      return rv;
    }
    if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') {
      this.logger.warn({ type }, 'unknown watch event type; skipped');
      return undefined;
    }
    const checkpoint = rv ? { kind: this.kind, scope: this.scope, resourceVersion: rv } : null;
    const apiVersion = this.deps.kube.apiVersionOf(this.kind);
    const event: WatchEvent = skimmed
      ? { type, object: prepareObject(object, this.kind, apiVersion), reject: oversizeReject(object, this.kind, 'size', chars, options.limits) }
      : prepareEvent(type, object, this.kind, options.limits, chars, apiVersion);
    if (event.reject) metrics?.objectsTrimmed.inc({ kind: this.kind, reason: event.reject.value && 'depth' in (event.reject.value as object) ? 'depth' : 'size' });
    await sink.push(event, checkpoint, Date.now(), skimmed ? 4096 : chars);
    return rv;
  }
}

function destroyQuietly(res: http.IncomingMessage): void {
  res.on('error', () => undefined);
  if (!res.destroyed) res.destroy();
}
