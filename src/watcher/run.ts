// `ssvirt-vm-sync run`: wiring of the watcher process, and its orderly end.
import { ConfigError, type RunConfig } from '../lib/config.js';
import { createPool } from '../pg/connect.js';
import { isTransient } from '../pg/errors.js';
import { sleep, withRetry, type Backoff } from '../lib/retry.js';
import { startOpsServer, type OpsServer, type Readiness } from './ops-server.js';
import { EventRecorder } from './k8s-events.js';
import { KubeClient } from './kube-client.js';
import { LeaderElector } from './leader.js';
import { redactUrl, type Logger } from '../lib/log.js';
import { brief, fromPgError, OperatorError, urlParts } from '../lib/operator-error.js';
import { readSchemaState, schemaProblem, writerProblem } from '../pg/schema-check.js';
import { Metrics } from './metrics.js';
import { migrate } from '../pg/migrate.js';
import { poolerRefusal, probeSessionPooling } from '../pg/pooler.js';
import { runTerm } from './term.js';
import type { ResourceWatch } from './list-watch.js';
import { standbyLog } from './standby-log.js';
import { InstancetypeApi } from './instancetype-api.js';

export async function runWatcher(config: Readonly<RunConfig>, options: { logger: Logger; signal: AbortSignal }): Promise<number> {
  const { logger, signal } = options;
  const backoff: Backoff = { initialMs: config.backoffInitialMs, maxMs: config.backoffMaxMs };
  logger.info(
    { database: redactUrl(config.databaseUrl), namespaces: config.namespaces.length ? config.namespaces : 'all', holder: config.holder },
    'starting',
  );
  // A stuck shutdown must still end: after the budget, exit regardless.
  signal.addEventListener(
    'abort',
    () => {
      logger.info('shutting down');
      setTimeout(() => {
        // Still exit 0: a SIGTERM asked for the end, and the next leader resumes from the last checkpoint.
        logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long; exiting');
        process.exit(0);
      }, config.shutdownTimeoutMs).unref();
    },
    { once: true },
  );

  const metrics = new Metrics({ namespaceLabel: config.metricsNamespaceLabel, namespaceCap: config.metricsNamespaceCap });
  // Probes and the populated-ratio gauge use a small pool of their own, never the leader session.
  const pool = createPool(config.databaseUrl, { applicationName: 'ssvirt-vm-sync probe', max: 2 });
  const dbContext = urlParts(config.databaseUrl);
  /** A misconfiguration, as the one line it ends the process with; null for anything a retry may fix. */
  function permanent(err: unknown): OperatorError | null {
    return err instanceof OperatorError ? err : fromPgError(err, { phase: 'run', ...dbContext });
  }
  const newElector = (): LeaderElector =>
    new LeaderElector({
      databaseUrl: config.databaseUrl,
      holder: config.holder,
      pollMs: config.leaderPollMs,
      backoff,
      timeouts: {
        statementTimeoutMs: config.pgStatementTimeoutMs,
        lockTimeoutMs: config.pgLockTimeoutMs,
        idleInTransactionTimeoutMs: config.pgIdleInTransactionTimeoutMs,
      },
      closeTimeoutMs: Math.max(500, config.shutdownTimeoutMs / 4),
      logger,
      metrics,
      isPermanent: (err) => permanent(err) !== null,
    });
  let elector = newElector();
  /** Set while standing aside after a step-down: a standby that does not campaign. */
  let standingAside = false;
  let watches: readonly ResourceWatch[] = [];
  const instancetypes = new InstancetypeApi(logger);
  const readiness: Readiness = {
    details: () => [instancetypes.describe()],
    async check() {
      const giveUp = new AbortController();
      // The schema's own function: a database without it (or a role that may not call it) is not ready.
      const dbOk = await Promise.race([
        pool.query('select vm_sync.schema_version()').then(() => true, () => false),
        sleep(2000, giveUp.signal).then(() => false),
      ]);
      giveUp.abort();
      if (!dbOk) return 'database unreachable';
      if (elector.role === 'leader') {
        if (watches.length === 0) return 'leader: watches not started yet';
        const down = watches.filter((w) => !w.ready).map((w) => `${w.kind}/${w.scope || '*'}`);
        if (down.length) return `leader: watches not established: ${down.join(', ')}`;
      } else if (elector.role !== 'standby' && !standingAside) {
        return elector.role;
      } else if (!standingAside && Date.now() - elector.lastDbOkAt > Math.max(10_000, 3 * config.leaderPollMs)) {
        return 'standby: the leader session does not answer';
      }
      return null;
    },
  };

  let ops: OpsServer | null = null;
  let ratio: Promise<void> = Promise.resolve();
  let standby: Promise<void> = Promise.resolve();
  // Background loops end with the process's signal, or when the watcher fails.
  const background = new AbortController();
  signal.addEventListener('abort', () => background.abort(), { once: true });
  let stopEvents = (): void => undefined;
  try {
    // Credentials first: they are local files, and a missing kubeconfig must not wait behind the database.
    const kube = new KubeClient({ kubeconfig: config.kubeconfig, requestTimeoutMs: config.requestTimeoutMs });
    logger.info({ server: kube.server, credentials: kube.credentials.description, proxy: kube.credentials.proxyUrl ?? undefined }, 'kubernetes API');
    if (config.metricsAddr) ops = await startOpsServer(config.metricsAddr, { metrics, readiness, logger });
    const transient = (err: unknown): boolean => permanent(err) === null && isTransient(err);
    if (config.poolerCheck) {
      const probe = await withRetry(() => probeSessionPooling(config.databaseUrl), { what: 'pooler probe', classify: transient, logger, signal, backoff });
      if (signal.aborted) return 0;
      if (probe?.problem) {
        logger.error({ problem: probe.problem, pids: probe.pids }, 'transaction pooler in front of PostgreSQL');
        throw new ConfigError(poolerRefusal(probe.problem));
      }
    }
    if (config.migrate) {
      await withRetry(
        () => migrate(config.databaseUrl, logger).catch((err: unknown) => Promise.reject(fromPgError(err, { phase: 'migrate', ...dbContext }) ?? err)),
        { what: 'migrate', classify: transient, logger, signal, backoff },
      );
    }
    if (signal.aborted) return 0;
    await withRetry(() => checkDatabase(pool), { what: 'database check', classify: transient, logger, signal, backoff });
    if (signal.aborted) return 0;
    ratio = ratioLoop(pool, metrics, config.ratioIntervalMs, logger, background.signal);
    standby = standbyLog(pool, () => (standingAside ? 'aside' : elector.role), config, logger, background.signal);
    // Kept across terms: the Events already posted are patched, not posted again, after a failover here.
    const events = config.kubeEvents ? new EventRecorder({ kube, component: 'ssvirt-vm-sync', instance: config.holder, logger: logger.child({ part: 'events' }), metrics }) : undefined;
    stopEvents = () => events?.close();
    // Each round campaigns until shutdown, or until a term steps down (its watches stayed down):
    // then the lease is resigned and this process stands aside before campaigning again.
    while (!signal.aborted) {
      const round = new AbortController();
      const stop = (): void => round.abort();
      signal.addEventListener('abort', stop, { once: true });
      let steppedDown: string | null = null;
      const onStepDown = (reason: string): void => {
        steppedDown = reason;
        round.abort();
      };
      try {
        await elector.run(
          (session, term, termSignal) => runTerm(session, term, { config, kube, logger, metrics, events, onWatches: (w) => (watches = w), onStepDown, instancetypes }, termSignal),
          round.signal,
        );
      } finally {
        signal.removeEventListener('abort', stop);
      }
      if (signal.aborted || steppedDown === null) break;
      logger.warn({ reason: steppedDown, backoffMs: config.stepDownBackoffMs }, 'stepped down; standing aside before campaigning again');
      standingAside = true;
      await sleep(config.stepDownBackoffMs, signal);
      standingAside = false;
      elector = newElector();
    }
    return 0;
  } catch (err) {
    // A SIGTERM during connection retries is a clean end too.
    if (signal.aborted) {
      logger.info({ err: brief(err) }, 'stopped while retrying');
      return 0;
    }
    throw permanent(err) ?? err;
  } finally {
    background.abort();
    stopEvents();
    await ratio;
    await standby;
    await ops?.close();
    await pool.end().catch(() => undefined);
    logger.info('stopped');
  }
}

/** Before campaigning: the schema is this version's and this role may do the watcher's work. */
async function checkDatabase(pool: ReturnType<typeof createPool>): Promise<void> {
  const client = await pool.connect();
  try {
    const state = await readSchemaState(client);
    const problem = schemaProblem(state) ?? writerProblem(state);
    if (problem) throw problem;
  } finally {
    client.release();
  }
}

/** Keeps ssvirt_vm_data_populated_ratio{field} fresh; any replica can, since it only reads. */
async function ratioLoop(pool: ReturnType<typeof createPool>, metrics: Metrics, intervalMs: number, logger: Logger, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const r = await pool.query<{ field: string; ratio: number | null }>('select field, ratio from vm_sync.populated_ratio()');
      for (const row of r.rows) metrics.populatedRatio.set({ field: row.field }, Number(row.ratio ?? 0));
      const q = await pool.query<{ usage: number }>('select pg_notification_queue_usage() as usage');
      metrics.notifyQueueUsage.set(Number(q.rows[0]?.usage ?? 0));
    } catch (err) {
      metrics.dbErrors.inc({ op: 'populated_ratio' });
      logger.debug({ err }, 'populated_ratio failed');
    }
    await sleep(intervalMs, signal);
  }
}
