// One leadership term: resume or cold-start the watches, batch their events into the database,
// reconcile periodically, and tear everything down when the term ends.
import type { RunConfig } from '../lib/config.js';
import { sleep, withRetry, type Backoff } from '../lib/retry.js';
import { isDatabaseError } from '../pg/errors.js';
import type { KubeClient } from './kube-client.js';
import { InstancetypeApi } from './instancetype-api.js';
import { CORE_RESOURCES, INSTANCETYPE_GROUP, scopesOf, type Resource } from './resources.js';
import type { EventRecorder } from './k8s-events.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';
import type { LeaderSession } from './leader-session.js';
import { ListGate } from './list-pager.js';
import { ResourceWatch } from './list-watch.js';
import { MemoryBudget } from './memory-budget.js';
import { monitorWatches } from './step-down.js';
import { fromKubeError, OperatorError } from '../lib/operator-error.js';
import { beginTerm, readClusterIdentity } from './cluster-identity.js';
import { TermWriter } from './term-writer.js';

export interface TermDeps {
  config: Readonly<RunConfig>;
  kube: KubeClient;
  /** Posts VMDataRejected Events for the rejects of committed batches (KUBE_EVENTS); none when off. */
  events?: EventRecorder;
  logger: Logger;
  metrics?: Metrics;
  /** Receives the watches of the running term (empty when none), for /readyz. */
  onWatches?: (watches: readonly ResourceWatch[]) => void;
  /** Called when the watches stayed down for STEP_DOWN_AFTER_MS: the owner ends the term (step-down.ts). */
  onStepDown?: (reason: string) => void;
  /** What the process knows of the instancetype API (kept across terms, for /readyz). */
  instancetypes?: InstancetypeApi;
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

  // One budget for the term's lists and batches; lists take turns (list-pager.ts).
  const budget = new MemoryBudget(config.memoryBudgetBytes);
  const gate = new ListGate(config.listConcurrency);
  if (metrics) metrics.budget = budget;
  const writer = new TermWriter(session, { config, backoff, logger, metrics, events: deps.events, signal: local.signal, onFatal: fail, budget });
  const batcher = writer.batcher;

  const api = deps.instancetypes ?? new InstancetypeApi(logger);
  const watchesOf = (resources: readonly Resource[]): ResourceWatch[] =>
    resources.flatMap((r) =>
      scopesOf(r, config.namespaces).map(
        (scope) =>
          new ResourceWatch(r.kind, scope, {
            kube: deps.kube,
            sink: batcher,
            store: writer,
            options: { ...config, backoff, limits: { maxBytes: config.maxObjectBytes, maxDepth: config.maxObjectDepth } },
            logger,
            metrics,
            budget,
            gate,
            // For `status`: through the leader session, so a deposed leader cannot overwrite it.
            saveProgress: (rows) => session.saveListProgress(rows),
          }),
      ),
    );
  // Grows when the instancetype API is found; readiness and the step-down monitor read it live.
  const watches: ResourceWatch[] = watchesOf(CORE_RESOURCES);
  const recordApi = (): Promise<void> => {
    const c = api.current;
    if (c.state === 'unknown') return Promise.resolve();
    return session.recordApi(INSTANCETYPE_GROUP, c.state === 'present' ? c.version : null, c.state === 'present');
  };
  let reconciler: Promise<void> = Promise.resolve();
  let running: Promise<void>[] = [];
  // From the term's start: a cold start that cannot list is as down as a watch that cannot connect.
  const health = deps.onStepDown
    ? monitorWatches(
        watches,
        { afterMs: config.stepDownAfterMs, logger, metrics, onStepDown: deps.onStepDown, report: (down, s) => session.reportWatches(down, s) },
        local.signal,
      )
    : Promise.resolve();
  let late: Promise<void> = Promise.resolve();
  try {
    const identity = await withRetry(() => readClusterIdentity(deps.kube, local.signal), {
      what: 'reading the cluster identity',
      classify: (err) => !isDatabaseError(err) && !(err instanceof OperatorError),
      backoff,
      signal: local.signal,
      logger,
    });
    const found = await api.discover(deps.kube, local.signal);
    if (found) watches.push(...watchesOf(found));
    await recordApi();
    const watching = (): string[] => watches.map((w) => `${w.kind}/${w.scope}`);
    await beginTerm(session, identity, watching(), logger);
    let saved = new Map((await session.readWatchState()).map((s) => [`${s.kind}/${s.scope}`, s.resourceVersion]));
    if (saved.size && (await session.stagingLost())) {
      // Resuming would never stage the objects again: every watch starts cold, with a full list.
      logger.warn({ term, checkpoints: saved.size }, STAGING_LOST);
      saved = new Map();
    }
    const positions = new Map<ResourceWatch, string>();
    const cold: ResourceWatch[] = [];
    for (const w of watches) {
      const rv = saved.get(`${w.kind}/${w.scope}`);
      if (rv) positions.set(w, rv);
      else cold.push(w);
    }
    if (cold.length) {
      logger.info({ term, watches: cold.map((w) => `${w.kind}/${w.scope || '*'}`) }, 'cold start: listing before the first merge');
      const { changed, fieldUpdates } = await writer.coldStart(async () => {
        for (const w of cold) positions.set(w, await listUntilDone(w, backoff, logger, local.signal));
      });
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
    reconciler = reconcileLoop(session, config.reconcileIntervalMs, logger, metrics, local.signal, fail);
    // No instancetype API yet: look again now and then; once it is served, list and watch it too.
    if (!found) {
      late = api.waitForIt(deps.kube, config.instancetypeCheckMs, local.signal, recordApi).then(async (resources) => {
        if (!resources || local.signal.aborted) return;
        const added = watchesOf(resources);
        for (const w of added) {
          const position = saved.get(`${w.kind}/${w.scope}`) ?? (await listUntilDone(w, backoff, logger, local.signal));
          watches.push(w);
          running.push(w.run(position, local.signal).catch((err) => {
            if (!local.signal.aborted) fail(err);
          }));
        }
        deps.onWatches?.(watches);
        await beginTerm(session, identity, watching(), logger);
      }).catch((err) => {
        if (!local.signal.aborted) fail(err);
      });
    }
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
    await late;
    await Promise.allSettled([...running, reconciler, health]);
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

/** A cold-start list retried until it succeeds: the Kubernetes API may not be reachable yet. */
function listUntilDone(w: ResourceWatch, backoff: Backoff, logger: Logger, signal: AbortSignal): Promise<string> {
  return withRetry(() => w.relist('cold_start', signal), {
    what: 'cold-start list',
    // RBAC forbidding the list, or no KubeVirt at all, is the operator's to fix: the term ends with it.
    classify: (err) => !isDatabaseError(err) && fromKubeError(err, w.kind, w.scope) === null,
    backoff,
    signal,
    logger: logger.child({ kind: w.kind, scope: w.scope }),
  }).catch((err: unknown) => {
    throw fromKubeError(err, w.kind, w.scope) ?? err;
  });
}

const STAGING_LOST = 'staging emptied under the watcher (checkpoints present, snapshots gone): relisting everything';

/** Reconciles every interval; first checks (cheaply) that the staging table was not emptied under the term. */
async function reconcileLoop(session: LeaderSession, intervalMs: number, logger: Logger, metrics: Metrics | undefined, signal: AbortSignal, fail: (err: unknown) => void): Promise<void> {
  while (!signal.aborted) {
    await sleep(intervalMs, signal);
    if (signal.aborted) return;
    try {
      if (await session.stagingLost()) {
        // The next term starts cold (it checks again before resuming).
        fail(new Error(STAGING_LOST));
        return;
      }
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
