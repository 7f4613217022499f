// Production-sized objects at scale, the way a real cluster hurts: a cold start, then every
// stream's resourceVersion expired at once (a kube-apiserver restart answers each watch with 410)
// and every stream relisted, cluster-wide (2 streams) and with one watch per namespace (50 x 2).
// The watcher runs with the Deployment's own NODE_OPTIONS; its peak RSS (VmHWM) is taken for each
// phase (reset in between through /proc/<pid>/clear_refs), and whether it stayed up.
import fs from 'node:fs';
import { connect, createBenchDatabase, namespaceOf, seedVmsRows, vmNameOf, benchNamespaces } from './pg.js';
import { FILLED_SQL, pollUntil, procMemoryMb, startCluster, Watcher, type BenchCluster } from './watcher.js';

export type RelistMode = 'cluster' | 'namespaces';

export interface RelistResult {
  vms: number;
  mode: RelistMode;
  streams: number;
  /** Watcher start until every vms row is filled; null on timeout. */
  coldStartSeconds: number | null;
  coldStartPeakRssMb: number;
  /** From the mass 410 until every stream watches again and the changes made meanwhile are in vms. */
  relistSeconds: number | null;
  relistPeakRssMb: number;
  listRequests: number;
  watchesExpired: number;
  /** The watcher never exited during the run. */
  survived: boolean;
  tail?: string;
}

const CHANGES = 5;

function resetPeak(pid: number): void {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // not Linux, or not allowed: the relist peak then includes the cold start's
  }
}

/** Both modes over one simulated cluster (seeding 200,000 realistic objects is the slow part). */
export async function benchRelistModes(vms: number, opts: { timeoutMs: number; modes?: RelistMode[]; progress?: (m: string) => void }): Promise<RelistResult[]> {
  opts.progress?.(`relist: seeding ${vms} VMs + ${vms} VMIs of the realistic size distribution`);
  const cluster = await startCluster(vms);
  try {
    const out: RelistResult[] = [];
    for (const mode of opts.modes ?? modesFromEnv()) out.push(await benchRelist(cluster, vms, mode, opts));
    return out;
  } finally {
    await cluster.close();
  }
}

async function benchRelist(cluster: BenchCluster, vms: number, mode: RelistMode, opts: { timeoutMs: number; progress?: (m: string) => void }): Promise<RelistResult> {
  const { sim } = cluster;
  const db = await createBenchDatabase(`relist_${mode}_${vms}`);
  const client = await connect(db.url);
  const namespaces = benchNamespaces();
  const streams = mode === 'cluster' ? 2 : 2 * namespaces.length;
  let watcher: Watcher | null = null;
  try {
    await seedVmsRows(client, vms);
    sim.resetCounters();
    opts.progress?.(`relist (${mode}): cold start over ${streams} streams`);
    watcher = Watcher.start(db.url, cluster.kubeconfig, { LOG_LEVEL: 'info', ...(mode === 'namespaces' ? { WATCH_NAMESPACES: namespaces.join(',') } : {}) });
    const w = watcher;
    let died = false;
    void w.exited.then(() => (died = true));
    const filled = await pollUntil(client, FILLED_SQL, [], vms, opts.timeoutMs, 200);
    const result: RelistResult = {
      vms,
      mode,
      streams,
      coldStartSeconds: filled === null ? null : (performance.now() - w.startedAt) / 1000,
      coldStartPeakRssMb: died ? NaN : procMemoryMb(w.pid).peakRssMb,
      relistSeconds: null,
      relistPeakRssMb: NaN,
      listRequests: 0,
      watchesExpired: 0,
      survived: !died,
    };
    if (filled === null || died) {
      result.tail = w.tail();
      return result;
    }
    // Every stream watching, then each one's next watch refused with 410, and a few VMs changed meanwhile.
    await sim.until((c) => c.activeWatches.virtualmachines + c.activeWatches.virtualmachineinstances >= streams, 120_000);
    resetPeak(w.pid);
    sim.resetCounters();
    opts.progress?.(`relist (${mode}): every stream's resourceVersion expired at once`);
    const t0 = performance.now();
    // Aimed at the VM and VMI watches: the instancetype and revision watches reconnect as well, and
    // would take untargeted 410s (the first 100,000-VM run of the per-namespace mode relisted nothing).
    sim.fail410OnNextWatch('event', streams / 2, 'virtualmachines');
    sim.fail410OnNextWatch('event', streams / 2, 'virtualmachineinstances');
    sim.dropStreams();
    const ns: string[] = [];
    const names: string[] = [];
    const mbs: number[] = [];
    for (let k = 0; k < CHANGES; k++) {
      const i = 1 + Math.floor((k * vms) / CHANGES);
      const mb = 5000 + k;
      await sim.hotplugMemory(namespaceOf(i), vmNameOf(i), `${mb}Mi`);
      ns.push(namespaceOf(i));
      names.push(vmNameOf(i));
      mbs.push(mb);
    }
    const relisted = sim
      .until(
        (c) =>
          c.watchesExpired >= streams &&
          c.lists.virtualmachines + c.lists.virtualmachineinstances >= streams &&
          c.activeWatches.virtualmachines + c.activeWatches.virtualmachineinstances >= streams,
        opts.timeoutMs,
      )
      .then(
        () => true,
        () => false,
      );
    const landed = await pollUntil(
      client,
      `select count(*) as n from public.vms v join unnest($1::text[], $2::text[], $3::int[]) as c(ns, name, mb)
          on v.namespace = c.ns and v.vm_name = c.name and v.memory_mb = c.mb`,
      [ns, names, mbs],
      CHANGES,
      opts.timeoutMs,
      200,
    );
    const ok = (await relisted) && landed !== null;
    result.relistSeconds = ok ? (performance.now() - t0) / 1000 : null;
    const c = sim.counters();
    result.listRequests = c.lists.virtualmachines + c.lists.virtualmachineinstances;
    result.watchesExpired = c.watchesExpired;
    result.survived = !died;
    if (!died) result.relistPeakRssMb = procMemoryMb(w.pid).peakRssMb;
    if (!ok || died) result.tail = w.tail();
    return result;
  } finally {
    if (watcher) await watcher.stop();
    await client.end();
    await db.drop();
  }
}

/** BENCH_RELIST_MODES=cluster or namespaces runs one mode (two processes can then run side by side). */
function modesFromEnv(): RelistMode[] {
  const v = process.env.BENCH_RELIST_MODES;
  if (!v) return ['cluster', 'namespaces'];
  return v.split(',').filter((m): m is RelistMode => m === 'cluster' || m === 'namespaces');
}
