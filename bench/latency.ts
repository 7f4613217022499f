// Section 2: end-to-end latency at a steady rate of watch events. The simulator's controls change
// VMs at a paced rate (memory hotplug: 3 events, the last one moves memory_mb; a guest agent
// report: 1 event that moves guest_os). Each change's emission time is taken when the control
// call returns (the simulator writes synchronously, so its watch events are already on the wire)
// and matched, by VM and new value, with the vm_changed notification a separate LISTEN
// connection receives. Same process, same monotonic clock.
import type pg from 'pg';
import { FEDORA } from '../src/sim/index.js';
import { connect, createBenchDatabase, namespaceOf, seedVmsRows, vmNameOf } from './pg.js';
import { FILLED_SQL, pollUntil, startCluster, Watcher, type BenchCluster } from './watcher.js';

export interface LatencyRun {
  label: string;
  /** Watcher settings that differ from the defaults. */
  env: Record<string, string>;
  targetEventsPerSec: number;
  achievedEventsPerSec: number;
  seconds: number;
  changes: number;
  received: number;
  missing: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface LatencyResult {
  vms: number;
  runs: LatencyRun[];
  /** Figures of the default-settings run, for the targets. */
  p99Ms: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

/** Expected notifications, keyed "<ns>/<vm>/<column>/<new value>", with their emission time. */

/** The "<namespace>/<vm>/<column>/<new value>" keys of one vm_changed payload (none if it does not parse). */
export function changeKeys(payload: string | undefined): string[] {
  let p: { namespace?: string; vm_name?: string; changes?: Record<string, { new: unknown }> };
  try {
    p = JSON.parse(payload ?? '{}');
  } catch {
    return [];
  }
  return Object.entries(p.changes ?? {}).map(([column, change]) => `${p.namespace}/${p.vm_name}/${column}/${String(change.new)}`);
}

class Matcher {
  readonly pending = new Map<string, number>();
  readonly latencies: number[] = [];
  private onEmpty: (() => void) | null = null;

  expect(key: string, at: number): void {
    this.pending.set(key, at);
  }

  constructor(client: pg.Client) {
    client.on('notification', (msg) => {
      const now = performance.now();
      for (const key of changeKeys(msg.payload)) {
        const at = this.pending.get(key);
        if (at === undefined) continue;
        this.pending.delete(key);
        this.latencies.push(now - at);
      }
      if (this.pending.size === 0) this.onEmpty?.();
    });
  }

  /** Resolves when every expected notification arrived, or after timeoutMs. */
  settle(timeoutMs: number): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      this.onEmpty = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}

/** Drives the simulator at `rate` events/s for `seconds` and measures emission -> notification. */
async function load(
  cluster: BenchCluster,
  listenUrl: string,
  vms: number,
  rate: number,
  seconds: number,
  runTag: string,
  /** Hotplug count per VM, kept across runs: a value a VM already has would change nothing and never be notified. */
  memorySteps: Map<number, number>,
) {
  const listener = await connect(listenUrl, 'ssvirt-vm-sync bench latency listener');
  await listener.query('listen vm_changed');
  const matcher = new Matcher(listener);
  const { sim } = cluster;
  let emitted = 0;
  let changes = 0;
  let next = 0;
  const t0 = performance.now();
  try {
    while (performance.now() - t0 < seconds * 1000) {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      // Bounded by the clock too: a simulator slower than `rate` would otherwise never leave this loop.
      while (emitted < due && performance.now() - t0 < seconds * 1000) {
        const i = 1 + (next % vms);
        const ns = namespaceOf(i);
        const name = vmNameOf(i);
        if (next % 2 === 0) {
          // Memory hotplug: VM template, VMI spec, VMI guestCurrent; only the last moves memory_mb.
          const step = (memorySteps.get(i) ?? 0) + 1;
          memorySteps.set(i, step);
          const mb = 2048 + 16 * step;
          await sim.hotplugMemory(ns, name, `${mb}Mi`);
          matcher.expect(`${ns}/${name}/memory_mb/${mb}`, performance.now());
          emitted += 3;
        } else {
          const pretty = `Fedora Linux 41 (${runTag} ${next})`;
          await sim.connectGuestAgent(ns, name, { ...FEDORA, prettyName: pretty });
          matcher.expect(`${ns}/${name}/guest_os/${pretty}`, performance.now());
          emitted += 1;
        }
        next++;
        changes++;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    const elapsed = (performance.now() - t0) / 1000;
    await matcher.settle(15_000);
    return { emitted, changes, elapsed, latencies: matcher.latencies, missing: matcher.pending.size };
  } finally {
    await listener.end();
  }
}

// The default batching window against a wide one: what the window costs in latency, side by side.
export const LATENCY_CONFIGS: { label: string; env: Record<string, string> }[] = [
  { label: 'defaults (BATCH_MAX_WAIT_MS=10)', env: {} },
  { label: 'BATCH_MAX_WAIT_MS=150', env: { BATCH_MAX_WAIT_MS: '150' } },
];

export async function benchLatency(
  vms: number,
  opts: { rate: number; seconds: number; convergeTimeoutMs: number; progress?: (m: string) => void },
): Promise<LatencyResult> {
  const db = await createBenchDatabase(`latency_${vms}`);
  const client = await connect(db.url);
  const cluster = await startCluster(vms);
  const runs: LatencyRun[] = [];
  const memorySteps = new Map<number, number>();
  let watcher: Watcher | undefined;
  try {
    await seedVmsRows(client, vms);
    for (const [k, config] of LATENCY_CONFIGS.entries()) {
      // The first watcher cold-starts; the next ones resume from the saved resourceVersion.
      watcher = Watcher.start(db.url, cluster.kubeconfig, config.env);
      if ((await pollUntil(client, FILLED_SQL, [], vms, opts.convergeTimeoutMs)) === null) {
        throw new Error(`latency bench: the watcher did not fill ${vms} rows in ${opts.convergeTimeoutMs / 1000} s\n${watcher.tail()}`);
      }
      // Caught up: a probe change made now must land before the measurement starts.
      const probe = `probe-${k}`;
      await cluster.sim.connectGuestAgent(namespaceOf(1), vmNameOf(1), { ...FEDORA, prettyName: probe });
      // A watcher still behind the previous load (it ran above what it ingests) would only measure
      // its backlog: the remaining settings are left out rather than waited for for minutes.
      if ((await pollUntil(client, 'select count(*) as n from public.vms where guest_os = $1', [probe], 1, Math.min(opts.convergeTimeoutMs, 60_000))) === null) {
        if (runs.length === 0) throw new Error(`latency bench: the watcher did not catch up before the load\n${watcher.tail()}`);
        opts.progress?.(`latency: the watcher is still behind the previous load; ${config.label} not run`);
        break;
      }
      opts.progress?.(`latency: ${opts.rate} events/s for ${opts.seconds} s, ${config.label}`);
      const r = await load(cluster, db.url, vms, opts.rate, opts.seconds, `run${k}`, memorySteps);
      const sorted = [...r.latencies].sort((a, b) => a - b);
      runs.push({
        label: config.label,
        env: config.env,
        targetEventsPerSec: opts.rate,
        achievedEventsPerSec: r.emitted / r.elapsed,
        seconds: r.elapsed,
        changes: r.changes,
        received: r.latencies.length,
        missing: r.missing,
        p50Ms: percentile(sorted, 50),
        p95Ms: percentile(sorted, 95),
        p99Ms: percentile(sorted, 99),
        maxMs: sorted[sorted.length - 1] ?? NaN,
        meanMs: sorted.reduce((s, x) => s + x, 0) / (sorted.length || 1),
      });
      await watcher.stop();
      watcher = undefined;
    }
    return { vms, runs, p99Ms: runs[0]!.p99Ms };
  } finally {
    await watcher?.stop();
    await client.end();
    await cluster.close();
    await db.drop();
  }
}
