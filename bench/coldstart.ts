// Section 3 (and the watcher's half of section 4): the real watcher against a simulated cluster of
// n VMs, each with a Running VMI. Cold start = process start until every vms row is filled. Then
// the watcher is stopped (SIGTERM), a few VMs change, and it is started again: resume = process
// start until those changes are in the rows, with no list request (it must watch on from the
// resourceVersion it saved).
import { connect, createBenchDatabase, namespaceOf, seedVmsRows, vmNameOf } from './pg.js';
import type pg from 'pg';
import type { Counters, Simulator } from '../src/sim/index.js';
import { FILLED_SQL, pollUntil, procMemoryMb, startCluster, Watcher, type BenchCluster } from './watcher.js';

/** A watcher caught up with its cluster (logging at info), handed on so a next benchmark need not cold-start again. */
export interface ConvergedWatcher {
  vms: number;
  cluster: BenchCluster;
  client: pg.Client;
  dbUrl: string;
  watcher: Watcher;
  coldStartSeconds: number;
}

export interface ColdStartResult {
  vms: number;
  /** Watcher start to every vms row filled; null when it did not converge within timeoutSeconds. */
  coldStartSeconds: number | null;
  /** Of which: process start until its first request reached the API (Node start-up, imports, DB, leadership). */
  coldStartFirstRequestSeconds: number | null;
  /** Process start until both kinds were listed and staged (the watcher's last "listed" log). */
  coldStartListedSeconds: number | null;
  /** Process start until its one reconcile() after the lists returned ("cold start merged"). */
  coldStartMergedSeconds: number | null;
  timeoutSeconds: number;
  /** VmHWM of the watcher after convergence: its peak RSS over the whole cold start. */
  watcherPeakRssMb: number;
  watcherRssMb: number;
  listRequestsColdStart: number;
  resumeChanges: number;
  /** Watcher start to the changes made while it was down being in vms; null on timeout. */
  resumeSeconds: number | null;
  /** Of which: process start until its first watch request reached the API. */
  resumeFirstWatchSeconds: number | null;
  /** List requests the simulator served during the resume (0 = no relist). */
  relistsOnResume: number;
  watchRequestsOnResume: number;
  /** vm_sync.watch_state.relists moved by the resume. */
  watchStateRelists: number;
  /** Exit code of the SIGTERMed watcher (0 = clean shutdown). */
  stopExitCode: number | null;
}

const RESUME_CHANGES = 5;

/** Seconds from the watcher's start until the simulator's counters first satisfy `pred`; null on timeout. */
function firstMoment(sim: Simulator, pred: (c: Counters) => boolean, w: Watcher, timeoutMs: number): Promise<number | null> {
  return sim.until((c) => pred(c), timeoutMs).then(
    () => (performance.now() - w.startedAt) / 1000,
    () => null,
  );
}

export async function benchColdStart(
  vms: number,
  opts: {
    timeoutMs: number;
    progress?: (m: string) => void;
    /** Runs after the resume, on the resumed watcher, before anything is torn down (a 100,000-VM cold start is minutes). */
    afterResume?: (w: ConvergedWatcher) => Promise<void>;
  },
): Promise<ColdStartResult> {
  const db = await createBenchDatabase(`cold_${vms}`);
  const client = await connect(db.url);
  const cluster = await startCluster(vms);
  const { sim } = cluster;
  const watchers: Watcher[] = [];
  try {
    await seedVmsRows(client, vms);
    sim.resetCounters();
    opts.progress?.(`cold start: watcher over ${vms} VMs + ${vms} VMIs`);
    // info level: the watcher logs when each list is done and when the cold-start merge returns.
    const first = Watcher.start(db.url, cluster.kubeconfig, { LOG_LEVEL: 'info' });
    watchers.push(first);
    const firstRequest = firstMoment(cluster.sim, (c) => c.requests >= 1, first, opts.timeoutMs);
    const waited = await pollUntil(client, FILLED_SQL, [], vms, opts.timeoutMs, 50);
    const coldStartSeconds = waited === null ? null : (performance.now() - first.startedAt) / 1000;
    const mem = procMemoryMb(first.pid);
    const coldCounters = sim.counters();
    const base: ColdStartResult = {
      vms,
      coldStartSeconds,
      coldStartFirstRequestSeconds: await firstRequest,
      coldStartListedSeconds: first.loggedAt('listed'),
      coldStartMergedSeconds: first.loggedAt('cold start merged'),
      timeoutSeconds: opts.timeoutMs / 1000,
      watcherPeakRssMb: mem.peakRssMb,
      watcherRssMb: mem.rssMb,
      listRequestsColdStart: coldCounters.lists.virtualmachines + coldCounters.lists.virtualmachineinstances,
      resumeChanges: RESUME_CHANGES,
      resumeSeconds: null,
      resumeFirstWatchSeconds: null,
      relistsOnResume: -1,
      watchRequestsOnResume: -1,
      watchStateRelists: -1,
      stopExitCode: null,
    };
    if (coldStartSeconds === null) return base;

    // Resume needs a saved position for both kinds.
    const saved = await pollUntil(client, 'select count(*) as n from vm_sync.watch_state where resource_version is not null', [], 2, 30_000);
    if (saved === null) throw new Error(`the watcher saved no resourceVersion after its cold start\n${first.tail()}`);
    base.stopExitCode = await first.stop();
    const relistsBefore = Number((await client.query<{ n: string }>('select coalesce(sum(relists), 0) as n from vm_sync.watch_state')).rows[0]!.n);

    opts.progress?.(`resume: ${RESUME_CHANGES} changes while the watcher is down, then restart`);
    sim.resetCounters();
    const ns: string[] = [];
    const names: string[] = [];
    const mbs: number[] = [];
    for (let k = 0; k < RESUME_CHANGES; k++) {
      const i = 1 + Math.floor((k * vms) / RESUME_CHANGES);
      const mb = 3000 + k;
      await sim.hotplugMemory(namespaceOf(i), vmNameOf(i), `${mb}Mi`);
      ns.push(namespaceOf(i));
      names.push(vmNameOf(i));
      mbs.push(mb);
    }
    // info, like the cold start: afterResume may need the watcher's `listed` lines.
    const second = Watcher.start(db.url, cluster.kubeconfig, { LOG_LEVEL: 'info' });
    watchers.push(second);
    const firstWatch = firstMoment(cluster.sim, (c) => c.watches.virtualmachines + c.watches.virtualmachineinstances >= 1, second, 120_000);
    const landed = await pollUntil(
      client,
      `select count(*) as n from public.vms v join unnest($1::text[], $2::text[], $3::int[]) as c(ns, name, mb)
          on v.namespace = c.ns and v.vm_name = c.name and v.memory_mb = c.mb`,
      [ns, names, mbs],
      RESUME_CHANGES,
      Math.min(opts.timeoutMs, 120_000),
      10,
    );
    base.resumeSeconds = landed === null ? null : (performance.now() - second.startedAt) / 1000;
    base.resumeFirstWatchSeconds = await firstWatch;
    const c = sim.counters();
    base.relistsOnResume = c.lists.virtualmachines + c.lists.virtualmachineinstances;
    base.watchRequestsOnResume = c.watches.virtualmachines + c.watches.virtualmachineinstances;
    const relistsAfter = Number((await client.query<{ n: string }>('select coalesce(sum(relists), 0) as n from vm_sync.watch_state')).rows[0]!.n);
    base.watchStateRelists = relistsAfter - relistsBefore;
    if (opts.afterResume && base.resumeSeconds !== null) {
      await opts.afterResume({ vms, cluster, client, dbUrl: db.url, watcher: second, coldStartSeconds });
    }
    return base;
  } finally {
    for (const w of watchers) await w.stop();
    await client.end();
    await cluster.close();
    await db.drop();
  }
}
