// Live changes during a full relist of one kind (issue 14). The watcher as deployed cold-starts
// over n VMs + n VMIs and catches up; then its VMI watch alone is cut and answered 410 (the VM
// watch keeps streaming), so it relists every VMI. From that 410 until the watcher logs `listed`
// for VirtualMachineInstance, a paced load changes
//   (a) the other kind: a VM's printableStatus (one VM MODIFIED; the merge takes status from the VM),
//   (b) the relisting kind: a guest agent report (one VMI MODIFIED; moves guest_os),
// and each change is timed as in latency.ts: control call returned -> its vm_changed notification
// on a separate LISTEN connection, matched by VM, column and new value. Only changes emitted inside
// the relist window count. The simulator runs in this process, so the time it spends rendering
// list pages also delays reading notifications: the figures are an upper bound.
import type pg from 'pg';
import { FEDORA } from '../src/sim/index.js';
import { changeKeys, percentile } from './latency.js';
import { connect, createBenchDatabase, namespaceOf, seedVmsRows, vmNameOf } from './pg.js';
import { FILLED_SQL, pollUntil, startCluster, Watcher } from './watcher.js';
import type { ConvergedWatcher } from './coldstart.js';

export interface RelistLatencyFigures {
  /** What was changed, in words. */
  change: string;
  /** Changes emitted during the whole load, and of those inside the relist window. */
  emitted: number;
  inWindow: number;
  received: number;
  missing: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface RelistLatencyResult {
  vms: number;
  /** Watcher start until every vms row was filled. */
  coldStartSeconds: number;
  /** Target rate of the load, events/s over both kinds (half each). */
  targetEventsPerSec: number;
  achievedEventsPerSec: number;
  /** Changes not made because that VM's previous change of the kind was still unnotified. */
  skippedBusy: number;
  /** The VMI watch's 410 until the watcher's `listed` log line for VirtualMachineInstance. */
  relistSeconds: number;
  /** The 410 until a VMI watch was open again. */
  watchAgainSeconds: number | null;
  vmiListRequests: number;
  /** List requests for VMs during the relist: 0 when the other kind was left alone. */
  vmListRequests: number;
  watchesExpired: number;
  otherKind: RelistLatencyFigures;
  ownKind: RelistLatencyFigures;
}

interface Sent {
  kind: 'vm' | 'vmi';
  at: number;
  receivedAt?: number;
}

/**
 * Changes keyed "<ns>/<vm>/<column>/<new value>" until their vm_changed notification arrives. A key
 * is reused only once its notification came (a VM's status toggles), so a match is never ambiguous.
 */
class Tracker {
  readonly sent: Sent[] = [];
  private readonly pending = new Map<string, Sent>();
  constructor(client: pg.Client) {
    client.on('notification', (msg) => {
      const now = performance.now();
      for (const key of changeKeys(msg.payload)) {
        const s = this.pending.get(key);
        if (!s) continue;
        s.receivedAt = now;
        this.pending.delete(key);
      }
    });
  }
  /** Whether a change of this VM's (kind's) values is still waiting: changing it again would coalesce. */
  busy(vmKey: string): boolean {
    return this.pending.has(vmKey);
  }
  expect(key: string, kind: 'vm' | 'vmi'): void {
    const s: Sent = { kind, at: performance.now() };
    this.sent.push(s);
    this.pending.set(key, s);
  }
  async settle(timeoutMs: number): Promise<void> {
    const t0 = performance.now();
    while (this.pending.size > 0 && performance.now() - t0 < timeoutMs) await new Promise((r) => setTimeout(r, 20));
  }
  figures(kind: 'vm' | 'vmi', change: string, from: number, to: number): RelistLatencyFigures {
    const all = this.sent.filter((s) => s.kind === kind);
    const inWindow = all.filter((s) => s.at >= from && s.at <= to);
    const lat = inWindow.flatMap((s) => (s.receivedAt === undefined ? [] : [s.receivedAt - s.at])).sort((a, b) => a - b);
    return {
      change,
      emitted: all.length,
      inWindow: inWindow.length,
      received: lat.length,
      missing: inWindow.length - lat.length,
      p50Ms: percentile(lat, 50),
      p95Ms: percentile(lat, 95),
      p99Ms: percentile(lat, 99),
      maxMs: lat[lat.length - 1] ?? NaN,
    };
  }
}

/** Standalone: its own cluster, database and cold start (run.ts shares the coldstart section's instead). */
export async function benchRelistLatency(
  vms: number,
  opts: { rate: number; convergeTimeoutMs: number; progress?: (m: string) => void },
): Promise<RelistLatencyResult> {
  const db = await createBenchDatabase(`relistlat_${vms}`);
  const client = await connect(db.url);
  opts.progress?.(`relist latency: seeding ${vms} VMs + ${vms} VMIs`);
  const cluster = await startCluster(vms);
  let watcher: Watcher | undefined;
  try {
    await seedVmsRows(client, vms);
    opts.progress?.(`relist latency: cold start over ${vms} VMs + ${vms} VMIs`);
    // info level: the `listed` line closes the relist window.
    watcher = Watcher.start(db.url, cluster.kubeconfig, { LOG_LEVEL: 'info' });
    if ((await pollUntil(client, FILLED_SQL, [], vms, opts.convergeTimeoutMs, 100)) === null) {
      throw new Error(`relist latency: the watcher did not fill ${vms} rows in ${opts.convergeTimeoutMs / 1000} s\n${watcher.tail()}`);
    }
    const coldStartSeconds = (performance.now() - watcher.startedAt) / 1000;
    return await measureRelistLatency({ vms, cluster, client, dbUrl: db.url, watcher, coldStartSeconds }, opts);
  } finally {
    await watcher?.stop();
    await client.end();
    await cluster.close();
    await db.drop();
  }
}

/** On a watcher that has filled every row and logs at info: the VMI relist and the load during it. */
export async function measureRelistLatency(
  ctx: ConvergedWatcher,
  opts: { rate: number; convergeTimeoutMs: number; progress?: (m: string) => void },
): Promise<RelistLatencyResult> {
  const { vms, client, watcher: w, coldStartSeconds } = ctx;
  const { sim } = ctx.cluster;
  let listener: pg.Client | undefined;
  try {
    await sim.until((c) => c.activeWatches.virtualmachines >= 1 && c.activeWatches.virtualmachineinstances >= 1, 120_000);
    // Caught up: a probe made now must land before the relist starts.
    await sim.connectGuestAgent(namespaceOf(1), vmNameOf(1), { ...FEDORA, prettyName: 'probe' });
    await pollUntil(client, 'select count(*) as n from public.vms where guest_os = $1', ['probe'], 1, opts.convergeTimeoutMs);

    listener = await connect(ctx.dbUrl, 'ssvirt-vm-sync bench relist-latency listener');
    await listener.query('listen vm_changed');
    const tracker = new Tracker(listener);

    opts.progress?.(`relist latency: VMI watch answered 410, ${opts.rate} events/s of live changes during the relist`);
    sim.resetCounters();
    // A leader whose watch stays down too long steps down (it then never logs `listed`): that ends the run too.
    const listed = w.nextLog((r) => (r.msg === 'listed' && r.kind === 'VirtualMachineInstance') || r.msg === 'no longer leading', opts.convergeTimeoutMs);
    let lostLeadership = false;
    // Set by callbacks while the load runs.
    const marks: { listed: number | null; expired: number | null; watching: number | null } = { listed: null, expired: null, watching: null };
    void listed.then((l) => {
      lostLeadership = l?.rec.msg === 'no longer leading';
      marks.listed = l?.at ?? performance.now();
    });
    void sim.until((c) => c.watchesExpired >= 1, opts.convergeTimeoutMs).then(() => (marks.expired = performance.now()), () => undefined);
    // The watch after the 410 (which opens no stream): the relisted kind is live again.
    const watching = sim
      .until((c) => c.watchesExpired >= 1 && c.activeWatches.virtualmachineinstances >= 1, opts.convergeTimeoutMs + 60_000)
      .then(() => (marks.watching = performance.now()), () => undefined);
    sim.fail410OnNextWatch('event', 1, 'virtualmachineinstances');
    sim.dropStreams({ resource: 'virtualmachineinstances' });

    // VM changes on the first half of the VMs, VMI changes on the second, round robin; a VM whose
    // previous change of that kind has not been notified yet is skipped (a second change would
    // coalesce with it), so the own kind's load stops once all its VMs wait behind the relist.
    const half = Math.max(1, Math.floor(vms / 2));
    const vmStatus = new Map<number, string>();
    const vmiCurrent = new Map<number, string>();
    let emitted = 0;
    let skipped = 0;
    let next = 0;
    const cursor = { vm: 0, vmi: 0 };
    const t0 = performance.now();
    while (marks.listed === null && performance.now() - t0 < opts.convergeTimeoutMs) {
      const due = Math.floor(((performance.now() - t0) / 1000) * opts.rate);
      while (emitted + skipped < due && marks.listed === null) {
        if (next++ % 2 === 0) {
          const i = 1 + (cursor.vm++ % half);
          const ns = namespaceOf(i);
          const name = vmNameOf(i);
          const was = vmStatus.get(i) ?? 'Running';
          if (tracker.busy(`${ns}/${name}/status/${was === 'Running' ? 'POWERED_ON' : 'ERROR'}`)) {
            skipped++;
            continue;
          }
          const ps = was === 'Running' ? 'ErrorUnschedulable' : 'Running';
          vmStatus.set(i, ps);
          await sim.setPrintableStatus(ns, name, ps);
          tracker.expect(`${ns}/${name}/status/${ps === 'Running' ? 'POWERED_ON' : 'ERROR'}`, 'vm');
        } else {
          const i = 1 + half + (cursor.vmi++ % Math.max(1, vms - half));
          const ns = namespaceOf(i);
          const name = vmNameOf(i);
          const was = vmiCurrent.get(i);
          if (was !== undefined && tracker.busy(`${ns}/${name}/guest_os/${was}`)) {
            skipped++;
            continue;
          }
          const pretty = `Fedora Linux 41 (relist ${next})`;
          vmiCurrent.set(i, pretty);
          await sim.connectGuestAgent(ns, name, { ...FEDORA, prettyName: pretty });
          tracker.expect(`${ns}/${name}/guest_os/${pretty}`, 'vmi');
        }
        emitted++;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    const elapsed = (performance.now() - t0) / 1000;
    const from = marks.expired;
    const to = marks.listed;
    if (lostLeadership) throw new Error(`relist latency: the watcher stepped down during the VMI relist (its VMI watch was down too long)\n${w.tail()}`);
    if (from === null || to === null) throw new Error(`relist latency: the VMI relist did not ${from === null ? 'start' : 'end'} in time\n${w.tail()}`);
    await watching;
    await tracker.settle(30_000);
    if (process.env.BENCH_RELIST_LATENCY_TAIL) process.stderr.write(w.tail(200) + '\n');
    const c = sim.counters();
    const watchedAgain = marks.watching;
    return {
      vms,
      coldStartSeconds,
      targetEventsPerSec: opts.rate,
      achievedEventsPerSec: emitted / elapsed,
      skippedBusy: skipped,
      relistSeconds: (to - from) / 1000,
      watchAgainSeconds: watchedAgain === null ? null : (watchedAgain - from) / 1000,
      vmiListRequests: c.lists.virtualmachineinstances,
      vmListRequests: c.lists.virtualmachines,
      watchesExpired: c.watchesExpired,
      otherKind: tracker.figures('vm', 'VM printableStatus (1 VM event, moves status)', from, to),
      ownKind: tracker.figures('vmi', 'guest agent report (1 VMI event, moves guest_os)', from, to),
    };
  } finally {
    await listener?.end();
  }
}
