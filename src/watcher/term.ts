// One leadership term: resume or cold-start the watches, batch their events into the database,
// reconcile periodically, and tear everything down when the term ends.
import type { RunConfig } from '../lib/config.js';
import { backoffDelay, isRetryable, sleep, type Backoff } from '../pg/connect.js';
import { Batcher } from './batcher.js';
import { KINDS, type KubeClient } from './kube-client.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';
import { isDatabaseError, isSessionFatal, type LeaderSession } from './leader-session.js';
import { ResourceWatch, type ListStore } from './list-watch.js';

export interface TermDeps {
  config: Readonly<RunConfig>;
  kube: KubeClient;
  logger: Logger;
  metrics?: Metrics;
  /** Receives the watches of the running term (empty when none), for /readyz. */
  onWatches?: (watches: readonly ResourceWatch[]) => void;
}

export async function runTerm(session: LeaderSession, term: string, deps: TermDeps, signal: AbortSignal): Promise<void> {
  const { config, logger, metrics } = deps;
  const backoff: Backoff = { initialMs: config.backoffInitialMs, maxMs: config.backoffMaxMs };
  // Aborted by the term's end, or by a failure of the batcher: either way every watch stops.
  const local = new AbortController();
  const stop = (): void => local.abort();
  signal.addEventListener('abort', stop, { once: true });
  let failure: unknown = null;
  const fail = (err: unknown): void => {
    failure ??= err;
    local.abort();
  };

  const batcher = new Batcher({
    maxEvents: config.batchMaxEvents,
    maxWaitMs: config.batchMaxWaitMs,
    backoff,
    write: (events, checkpoints) => session.applyBatch(events, checkpoints),
    classify: classify,
    onFatal: fail,
    logger,
    metrics,
  });
  const store: ListStore = {
    applyList: async (events, merge) => {
      await retrying('apply list page', () => session.applyBatch(events, [], merge), backoff, logger, local.signal, metrics);
    },
    finishList: async (kind, scope, uids, rv, merge) => {
      await retrying('sweep', () => session.finishList(kind, scope, uids, rv, merge), backoff, logger, local.signal, metrics);
    },
  };

  const scopes = config.namespaces.length ? [...config.namespaces] : [''];
  const watches = KINDS.flatMap((kind) => scopes.map((scope) => new ResourceWatch(kind, scope, { kube: deps.kube, sink: batcher, store, options: { ...config, backoff }, logger, metrics })));
  let reconciler: Promise<void> = Promise.resolve();
  let running: Promise<void>[] = [];
  try {
    const saved = new Map((await session.readWatchState()).map((s) => [`${s.kind}/${s.scope}`, s.resourceVersion]));
    const positions = new Map<ResourceWatch, string>();
    const cold: ResourceWatch[] = [];
    for (const w of watches) {
      const rv = saved.get(`${w.kind}/${w.scope}`);
      if (rv) positions.set(w, rv);
      else cold.push(w);
    }
    if (cold.length) {
      // Both kinds are staged before anything merges, so a running VM is written once, from its VMI.
      logger.info({ term, watches: cold.map((w) => `${w.kind}/${w.scope || '*'}`) }, 'cold start: listing before the first merge');
      for (const w of cold) positions.set(w, await listUntilDone(w, backoff, logger, local.signal));
      const { changed, fieldUpdates } = await retrying('reconcile', () => session.reconcile(), backoff, logger, local.signal, metrics);
      metrics?.reconcileChanged.inc(changed);
      metrics?.recordFieldUpdates(fieldUpdates);
      logger.info({ changed }, 'cold start merged');
    } else {
      logger.info({ term }, 'resuming watches from saved resourceVersions');
    }
    deps.onWatches?.(watches);
    running = watches.map((w) =>
      w.run(positions.get(w)!, local.signal).catch((err) => {
        if (!local.signal.aborted) fail(err);
      }),
    );
    reconciler = reconcileLoop(session, config.reconcileIntervalMs, logger, metrics, local.signal);
    await new Promise<void>((resolve) => {
      if (local.signal.aborted) resolve();
      local.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } catch (err) {
    if (!local.signal.aborted) fail(err);
  } finally {
    local.abort();
    signal.removeEventListener('abort', stop);
    deps.onWatches?.([]);
    await Promise.allSettled([...running, reconciler]);
    // On a clean shutdown the batch in flight and what is queued are written (bounded in time);
    // after a failure nothing more is: the next leader resumes from the last committed checkpoint.
    if (failure === null && !session.lost) {
      const giveUp = new AbortController();
      const drained = await Promise.race([
        batcher.drain().then(() => true, () => false),
        sleep(Math.max(500, config.shutdownTimeoutMs / 2), giveUp.signal).then(() => false),
      ]);
      giveUp.abort();
      if (!drained) logger.warn('pending events abandoned at shutdown; the next leader resumes from the last checkpoint');
    }
    batcher.close();
    await batcher.settled();
  }
  if (failure !== null) throw failure;
}

/** Retry the same batch on serialization failures and deadlocks; anything else ends the term. */
function classify(err: unknown): 'retry' | 'fatal' {
  if (isSessionFatal(err)) return 'fatal';
  return isRetryable(err) ? 'retry' : 'fatal';
}

async function retrying<T>(what: string, fn: () => Promise<T>, backoff: Backoff, logger: Logger, signal: AbortSignal, metrics?: Metrics): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      metrics?.dbErrors.inc({ op: what.replace(/\s+/g, '_') });
      if (classify(err) === 'fatal' || signal.aborted) throw err;
      logger.warn({ err, attempt }, `${what} failed; retrying`);
      await sleep(backoffDelay(attempt, backoff), signal);
    }
  }
}

/** A cold-start list retried until it succeeds: the Kubernetes API may not be reachable yet. */
async function listUntilDone(w: ResourceWatch, backoff: Backoff, logger: Logger, signal: AbortSignal): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await w.relist(false, 'cold_start', signal);
    } catch (err) {
      if (signal.aborted || isDatabaseError(err)) throw err;
      logger.warn({ err, kind: w.kind, scope: w.scope, attempt }, 'cold-start list failed; retrying');
      await sleep(backoffDelay(attempt, backoff), signal);
      if (signal.aborted) throw err;
    }
  }
}

async function reconcileLoop(session: LeaderSession, intervalMs: number, logger: Logger, metrics: Metrics | undefined, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await sleep(intervalMs, signal);
    if (signal.aborted) return;
    try {
      const { changed, fieldUpdates } = await session.reconcile();
      metrics?.reconcileChanged.inc(changed);
      metrics?.recordFieldUpdates(fieldUpdates);
      if (changed) logger.info({ changed }, 'reconcile changed rows');
    } catch (err) {
      metrics?.dbErrors.inc({ op: 'reconcile' });
      // A lost session ends the term through its own listener; other errors wait for the next round.
      if (!session.lost) logger.warn({ err }, 'reconcile failed');
    }
  }
}
