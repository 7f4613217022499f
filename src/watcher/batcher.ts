// Coalesces watch events per object and writes them in batches, with their checkpoints, in one call.
// Bounded: while a batch is in flight and the next one is full, push() waits, so the watch streams
// stop reading their sockets instead of buffering without limit.
import { withRetry, type Backoff } from '../lib/retry.js';
import type { Logger } from '../lib/log.js';
import type { DbErrorClass } from '../pg/errors.js';
import type { Metrics } from './metrics.js';
import { objectKey, type Checkpoint, type WatchEvent } from './events.js';
import type { MemoryBudget } from './memory-budget.js';

export interface BatchSummary {
  [k: string]: unknown;
  field_updates?: unknown;
}

/** Writes one batch and its checkpoints atomically; resolves once committed. */
export type BatchWriter = (events: WatchEvent[], checkpoints: Checkpoint[]) => Promise<BatchSummary>;


/** Time and the flush timer, injectable so a test decides when maxWaitMs has passed. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface BatcherOptions {
  maxEvents: number;
  /** Flush (and push back on the streams) once the pending objects reach this many bytes of JSON. */
  maxBytes?: number;
  /** The process's memory budget: pending and in-flight bytes count in it (the batcher never waits on it). */
  budget?: MemoryBudget;
  maxWaitMs: number;
  backoff: Backoff;
  write: BatchWriter;
  /** What a failed write means (src/pg/errors.ts): 'retry' writes the same batch again after a backoff; anything else stops writing. */
  classify: (err: unknown) => DbErrorClass;
  /** Called once when writing stops for good; the owner tears the term down. */
  onFatal: (err: unknown) => void;
  logger: Logger;
  metrics?: Metrics;
  /** Default: real time and timers. */
  clock?: Clock;
}

interface Pending {
  event: WatchEvent;
  receivedAt: number;
  bytes: number;
}

export class BatcherClosedError extends Error {
  override name = 'BatcherClosedError';
}

export class Batcher {
  private pending = new Map<string, Pending>();
  private pendingBytes = 0;
  private checkpoints = new Map<string, Checkpoint>();
  private firstAt = 0;
  private timer: unknown = null;
  private inflight: Promise<void> | null = null;
  private waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  private failure: unknown = null;
  private closed = false;
  private readonly stop = new AbortController();

  private readonly clock: Clock;

  constructor(private readonly options: BatcherOptions) {
    this.clock = options.clock ?? realClock;
  }

  /** Objects waiting for the next batch. */
  get pendingSize(): number {
    return this.pending.size;
  }

  /**
   * Adds an event (the last one per object wins) and the stream position it brings. Resolves at
   * once while there is room; otherwise when the batch in flight has committed.
   */
  push(event: WatchEvent, checkpoint: Checkpoint | null, receivedAt = Date.now(), bytes = 0): Promise<void> {
    if (this.failure !== null || this.closed) return Promise.reject(this.failure ?? new BatcherClosedError('batcher closed'));
    const key = objectKey(event);
    const previous = this.pending.get(key);
    // Keep the first receive time: the lag of a coalesced object is that of its oldest change.
    this.pending.set(key, { event, receivedAt: previous ? previous.receivedAt : receivedAt, bytes });
    // A coalesced object no longer holds its older version's bytes.
    this.account(bytes - (previous?.bytes ?? 0));
    if (checkpoint) this.setCheckpoint(checkpoint);
    this.schedule();
    if (!this.full) return Promise.resolve();
    const started = Date.now();
    return new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject })).finally(() =>
      this.options.metrics?.backpressureSeconds.inc((Date.now() - started) / 1000),
    );
  }

  /** Pending objects reached maxEvents or maxBytes. */
  private get full(): boolean {
    return this.pending.size >= this.options.maxEvents || (this.options.maxBytes !== undefined && this.pendingBytes >= this.options.maxBytes);
  }

  private account(delta: number): void {
    this.pendingBytes += delta;
    if (delta > 0) this.options.budget?.force(delta);
    else if (delta < 0) this.options.budget?.release(-delta);
  }

  /** A stream position with no object change (a BOOKMARK): saved with the next batch. */
  checkpoint(checkpoint: Checkpoint): void {
    if (this.failure !== null || this.closed) return;
    this.setCheckpoint(checkpoint);
    this.schedule();
  }

  /** Writes everything pending and waits for it to commit. */
  async drain(): Promise<void> {
    for (;;) {
      if (this.failure !== null) throw this.failure;
      if (this.closed) throw new BatcherClosedError('batcher closed');
      if (this.inflight) {
        await this.inflight;
        continue;
      }
      if (this.pending.size === 0 && this.checkpoints.size === 0) return;
      this.flush();
    }
  }

  /** Stops for good: timers cleared, a retrying batch abandoned, waiting pushes rejected. Nothing pending is written. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    this.account(-this.pendingBytes);
    this.pending = new Map();
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.rejectWaiters(new BatcherClosedError('batcher closed'));
  }

  /** Resolves when the batch in flight (if any) has finished or was abandoned. */
  async settled(): Promise<void> {
    await this.inflight;
  }

  private setCheckpoint(checkpoint: Checkpoint): void {
    this.checkpoints.set(JSON.stringify([checkpoint.kind, checkpoint.scope]), checkpoint);
  }

  private schedule(): void {
    if (this.pending.size === 0 && this.checkpoints.size === 0) return;
    if (this.firstAt === 0) this.firstAt = this.clock.now();
    if (this.inflight) return;
    if (this.full) return this.flush();
    const due = this.firstAt + this.options.maxWaitMs - this.clock.now();
    if (due <= 0) return this.flush();
    if (!this.timer) this.timer = this.clock.setTimeout(() => this.flush(), due);
  }

  private flush(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
    if (this.inflight || this.closed || this.failure !== null) return;
    if (this.pending.size === 0 && this.checkpoints.size === 0) return;
    const batch = [...this.pending.values()];
    const checkpoints = [...this.checkpoints.values()];
    const bytes = this.pendingBytes;
    this.pendingBytes = 0;
    this.pending = new Map();
    this.checkpoints = new Map();
    this.firstAt = 0;
    // Room again: paused streams resume and fill the next batch while this one is written.
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
    this.inflight = this.write(batch, checkpoints).finally(() => {
      // Committed or abandoned: nothing here holds the objects any more.
      this.options.budget?.release(bytes);
      this.inflight = null;
      this.schedule();
    });
  }

  private async write(batch: Pending[], checkpoints: Checkpoint[]): Promise<void> {
    const { metrics, logger } = this.options;
    const events = batch.map((p) => p.event);
    const started = Date.now();
    try {
      const summary = await withRetry(() => this.options.write(events, checkpoints), {
        what: 'batch',
        classify: (err) => !this.closed && this.options.classify(err) === 'retry',
        backoff: this.options.backoff,
        signal: this.stop.signal,
        logger: logger.child({ events: events.length }),
        onRetry: () => {
          metrics?.dbErrors.inc({ op: 'apply_batch' });
          metrics?.batchRetries.inc();
        },
      });
      const now = Date.now();
      metrics?.batchSeconds.observe((now - started) / 1000);
      metrics?.batchSize.observe(events.length);
      for (const p of batch) metrics?.eventLag.observe((now - p.receivedAt) / 1000);
      metrics?.recordFieldUpdates(summary?.field_updates);
      metrics?.recordBatch(summary, checkpoints);
      logger.debug({ events: events.length, checkpoints: checkpoints.length, summary }, 'batch committed');
    } catch (err) {
      if (this.closed) return;
      metrics?.dbErrors.inc({ op: 'apply_batch' });
      this.failure = err;
      this.rejectWaiters(err);
      logger.warn({ err, events: events.length }, 'batch not written; writing stops');
      this.options.onFatal(err);
    }
  }

  private rejectWaiters(err: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }
}
