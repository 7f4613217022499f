// The term's write paths into the database, one per purpose, each with its invariant inside:
//   watch events   coalesced by the batcher and ingested (staged and merged) with their checkpoints;
//   list pages     written only once every watch event queued before them has committed (an older
//                  queued event landing after a list would overwrite the list's newer state); during
//                  the cold start they are staged without merging, and one reconcile merges them all
//                  (both kinds staged first, so a running VM is written once, from its VMI).
// Every write goes through the leader session; retries follow src/lib/retry.ts and src/pg/errors.ts.
import type { RunConfig } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import { withRetry, type Backoff } from '../lib/retry.js';
import { classifyDbError } from '../pg/errors.js';
import { Batcher } from './batcher.js';
import type { Checkpoint, WatchEvent } from './events.js';
import { applyQuarantining } from './quarantine.js';
import type { EventRecorder } from './k8s-events.js';
import type { Kind } from './kube-client.js';
import type { LeaderSession } from './leader-session.js';
import type { ListStore } from './list-watch.js';
import type { MemoryBudget } from './memory-budget.js';
import type { Metrics } from './metrics.js';

export interface TermWriterOptions {
  config: Readonly<RunConfig>;
  backoff: Backoff;
  logger: Logger;
  metrics?: Metrics;
  /** Told the rejected objects of every committed write. */
  events?: EventRecorder;
  /** Aborts the retries of list writes when the term ends. */
  signal: AbortSignal;
  /** A batch could not be written: the term ends. */
  onFatal: (err: unknown) => void;
  /** The process's memory budget: the batcher's objects count in it. */
  budget?: MemoryBudget;
}

export class TermWriter implements ListStore {
  /** Where watch events go. */
  readonly batcher: Batcher;
  /** False only during the cold start: list pages are staged, and merged by its closing reconcile. */
  private mergeLists = true;

  constructor(
    private readonly session: LeaderSession,
    private readonly options: TermWriterOptions,
  ) {
    const { config, backoff, logger, metrics } = options;
    this.batcher = new Batcher({
      maxEvents: config.batchMaxEvents,
      maxBytes: config.batchMaxBytes,
      budget: options.budget,
      maxWaitMs: config.batchMaxWaitMs,
      backoff,
      write: (events, checkpoints) => this.apply(events, checkpoints, true),
      classify: classifyDbError,
      onFatal: options.onFatal,
      logger,
      metrics,
    });
  }

  async writeListPage(_kind: Kind, _scope: string, events: WatchEvent[]): Promise<void> {
    await this.batcher.drain();
    const summary = await this.retrying('apply list page', () => this.session.applyBatch(events, [], this.mergeLists));
    this.options.metrics?.recordBatch(summary);
  }

  async finishList(kind: Kind, scope: string, presentUids: string[], resourceVersion: string): Promise<void> {
    await this.retrying('sweep', () => this.session.finishList(kind, scope, presentUids, resourceVersion, this.mergeLists));
    this.options.metrics?.recordBatch(undefined, [{ kind, scope, resourceVersion }]);
  }

  /** Runs the cold start's lists with merging deferred, then merges everything staged once. */
  async coldStart(list: () => Promise<void>): Promise<{ changed: number; fieldUpdates: unknown }> {
    this.mergeLists = false;
    try {
      await list();
    } finally {
      this.mergeLists = true;
    }
    return this.retrying('reconcile', () => this.session.reconcile());
  }

  /** One write; a batch refused for its content is bisected and its bad events quarantined. */
  private apply(events: WatchEvent[], checkpoints: Checkpoint[], merge: boolean): Promise<Record<string, unknown>> {
    const { logger, metrics } = this.options;
    return applyQuarantining((e, c, r) => this.session.applyBatch(e, c, merge, r), events, checkpoints, { logger, metrics }).then((summary) => {
      this.options.events?.observe(summary.rejected_objects);
      return summary;
    });
  }

  private retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const { backoff, logger, metrics, signal } = this.options;
    return withRetry(fn, {
      what,
      classify: (err) => classifyDbError(err) === 'retry',
      backoff,
      signal,
      logger,
      onRetry: () => metrics?.dbErrors.inc({ op: what.replace(/\s+/g, '_') }),
    });
  }
}
