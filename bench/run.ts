// `npm run bench`: the performance harness. Real PostgreSQL (DATABASE_URL, else the local default),
// a fresh database per benchmark, the real watcher process and the simulated KubeVirt API.
//
//   node dist/bench/run.js [--vms 1000|10000|100000] [--full] [--only ingest,noop,latency,coldstart,memory,relistlatency,relist]
//                          [--baseline-budget <s>] [--ingest-budget <s>] [--reconcile-timeout <s>]
//                          [--converge-timeout <s>] [--latency-rate <ev/s>] [--latency-seconds <s>] [--latency-max-vms <n>]
//                          [--relist-latency-rate <ev/s>] [--relist-latency-max-vms <n>] [--out <dir>] [--quiet]
//
// Prints a table and writes bench/results/<timestamp>.json and bench/results/latest.json.
import path from 'node:path';
import { benchIngest } from './ingest.js';
import { benchNoop } from './noop.js';
import { benchColdStart } from './coldstart.js';
import { benchLatency } from './latency.js';
import { benchInformer } from './memory.js';
import { benchRelistModes } from './relist.js';
import { benchRelistLatency, measureRelistLatency } from './relist-latency.js';
import { BATCH_SIZES } from './ingest.js';
import { forgetColdStartEvents } from './fixtures.js';
import { serverUrl } from './pg.js';
import { machineInfo, renderText, writeResults, type Results, type ScaleResults } from './report.js';
import { DEFAULT_BATCH, evaluateTargets } from './targets.js';

/** From this many VMs on, a section's every extra variant costs minutes: --ingest-batches-large applies. */
export const LARGE_SCALE = 100_000;
import { packageRoot } from '../src/lib/paths.js';

export const SECTIONS = ['ingest', 'noop', 'latency', 'coldstart', 'memory', 'relistlatency', 'relist'] as const;
export type Section = (typeof SECTIONS)[number];
/** Without --only. The mass-410 memory run (relist) takes longer than all of these at 100,000 VMs: --only relist. */
export const DEFAULT_SECTIONS: readonly Section[] = SECTIONS.filter((s) => s !== 'relist');

export interface BenchOptions {
  scales: number[];
  only: Set<Section>;
  /** Timed seconds the per-object baseline gets per batch size before it is stopped. */
  baselineBudgetSeconds: number;
  /** The same cap for set-based ingest, so a pathological build cannot hold the run hostage. */
  ingestBudgetSeconds: number;
  /** statement_timeout for the no-op reconcile(). */
  reconcileTimeoutSeconds: number;
  /** Longest wait for a watcher to fill every row (cold start, and before the latency load). */
  convergeTimeoutSeconds: number;
  latencyRate: number;
  latencySeconds: number;
  /** Latency is measured at scales up to this many VMs (its cold start alone dominates beyond). */
  latencyMaxVms: number;
  /** Batch sizes of the ingest section at every scale, overriding the two below. */
  batchSizes?: number[];
  /** Live changes during a VMI relist: events/s over both kinds, and the largest scale measured. */
  relistLatencyRate: number;
  relistLatencyMaxVms: number;
  /** Ingest batch sizes below LARGE_SCALE VMs, and at it and above (where each size costs minutes). */
  ingestBatches: number[];
  ingestBatchesLarge: number[];
  /** The client-node informer's half of the memory section is run up to this scale. */
  informerMaxVms: number;
  outDir: string;
  quiet: boolean;
}

export function parseArgs(argv: string[]): BenchOptions {
  const opts: BenchOptions = {
    scales: [10_000],
    only: new Set(DEFAULT_SECTIONS),
    baselineBudgetSeconds: 15,
    ingestBudgetSeconds: 90,
    reconcileTimeoutSeconds: 120,
    convergeTimeoutSeconds: 300,
    latencyRate: 1000,
    latencySeconds: 20,
    latencyMaxVms: 10_000,
    // Well below what the harness process (simulator, load and listener in one) can drive while it
    // also serves a 100,000-object list: at 1,000 it measured itself on a loaded machine.
    relistLatencyRate: 200,
    relistLatencyMaxVms: Number.POSITIVE_INFINITY,
    ingestBatches: [...BATCH_SIZES],
    ingestBatchesLarge: [DEFAULT_BATCH],
    informerMaxVms: 10_000,
    outDir: path.join(packageRoot, 'bench', 'results'),
    quiet: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--vms') opts.scales = value().split(',').map((v) => Number(v.replace(/[_,]/g, '')));
    else if (arg === '--full') opts.scales = [1_000, 10_000, 100_000];
    else if (arg === '--only') {
      const names = value().split(',').map((s) => s.trim()).filter(Boolean);
      for (const n of names) if (!(SECTIONS as readonly string[]).includes(n)) throw new Error(`--only: unknown section ${n} (${SECTIONS.join(', ')})`);
      opts.only = new Set(names as Section[]);
    } else if (arg === '--baseline-budget') opts.baselineBudgetSeconds = Number(value());
    else if (arg === '--ingest-budget') opts.ingestBudgetSeconds = Number(value());
    else if (arg === '--reconcile-timeout') opts.reconcileTimeoutSeconds = Number(value());
    else if (arg === '--converge-timeout') opts.convergeTimeoutSeconds = Number(value());
    else if (arg === '--latency-rate') opts.latencyRate = Number(value());
    else if (arg === '--latency-seconds') opts.latencySeconds = Number(value());
    else if (arg === '--latency-max-vms') opts.latencyMaxVms = Number(value());
    else if (arg === '--batch-sizes') opts.batchSizes = value().split(',').map(Number);
    else if (arg === '--relist-latency-rate') opts.relistLatencyRate = Number(value());
    else if (arg === '--relist-latency-max-vms') opts.relistLatencyMaxVms = Number(value());
    else if (arg === '--ingest-batches') opts.ingestBatches = value().split(',').map(Number);
    else if (arg === '--ingest-batches-large') opts.ingestBatchesLarge = value().split(',').map(Number);
    else if (arg === '--informer-max-vms') opts.informerMaxVms = Number(value());
    else if (arg === '--out') opts.outDir = path.resolve(value());
    else if (arg === '--quiet') opts.quiet = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  for (const s of opts.scales) if (!Number.isInteger(s) || s <= 0) throw new Error(`--vms: not a VM count: ${s}`);
  return opts;
}

export async function runBench(opts: BenchOptions, command: string): Promise<Results> {
  const progress = (msg: string) => {
    if (!opts.quiet) process.stderr.write(`# ${new Date().toISOString().slice(11, 19)} ${msg}\n`);
  };
  const results: Results = {
    startedAt: new Date().toISOString(),
    command,
    machine: await machineInfo(serverUrl()),
    scales: [],
    targets: [],
  };
  for (const vms of opts.scales) {
    const scale: ScaleResults = { vms, errors: {} };
    results.scales.push(scale);
    // A section that fails is recorded and the run goes on: one broken figure must not cost the others.
    const section = async (name: Section, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        progress(`${name} at ${vms} VMs failed: ${(err as Error).message.split('\n')[0]}`);
        scale.errors![name] = String((err as Error).stack ?? err);
      }
    };
    if (opts.only.has('ingest')) {
      await section('ingest', async () => {
        scale.ingest = await benchIngest(vms, {
          // --batch-sizes (every scale) wins over the per-scale defaults.
          batchSizes: opts.batchSizes ?? (vms >= LARGE_SCALE ? opts.ingestBatchesLarge : opts.ingestBatches),
          baselineBudgetMs: opts.baselineBudgetSeconds * 1000,
          setBudgetMs: opts.ingestBudgetSeconds * 1000,
          progress,
        });
      });
    }
    if (opts.only.has('noop')) {
      await section('noop', async () => {
        progress(`no-op replay and reconcile, ${vms} VMs`);
        scale.noop = await benchNoop(vms, { reconcileTimeoutMs: opts.reconcileTimeoutSeconds * 1000, reconcileRuns: 2 });
      });
    }
    if (opts.only.has('latency') && vms <= opts.latencyMaxVms) {
      await section('latency', async () => {
        scale.latency = await benchLatency(vms, {
          rate: opts.latencyRate,
          seconds: opts.latencySeconds,
          convergeTimeoutMs: opts.convergeTimeoutSeconds * 1000,
          progress,
        });
      });
    }
    // ingest and noop share the rendered events; the sections below seed a simulated cluster instead.
    forgetColdStartEvents();
    const relistLatency = opts.only.has('relistlatency') && vms <= opts.relistLatencyMaxVms;
    const relistOpts = { rate: opts.relistLatencyRate, convergeTimeoutMs: opts.convergeTimeoutSeconds * 1000, progress };
    // The watcher's peak RSS is taken during its cold start, so the memory section needs that run too.
    // The relist-latency section runs on the resumed watcher of that run: a second cold start of
    // 100,000 VMs (and seeding a second cluster) would cost more than the rest of the scale.
    if (opts.only.has('coldstart') || opts.only.has('memory')) {
      await section('coldstart', async () => {
        const cold = await benchColdStart(vms, {
          timeoutMs: opts.convergeTimeoutSeconds * 1000,
          progress,
          afterResume: relistLatency
            ? (w) =>
                section('relistlatency', async () => {
                  scale.relistLatency = await measureRelistLatency(w, relistOpts);
                })
            : undefined,
        });
        if (opts.only.has('coldstart')) scale.coldstart = cold;
        if (relistLatency && !scale.relistLatency && !scale.errors!.relistlatency) {
          scale.errors!.relistlatency = 'not run: the cold start or the resume before it did not converge';
        }
        if (!opts.only.has('memory')) return;
        if (vms > opts.informerMaxVms) {
          scale.memory = { vms, watcherPeakRssMb: cold.watcherPeakRssMb, informer: `not run above --informer-max-vms ${opts.informerMaxVms}` };
          return;
        }
        await section('memory', async () => {
          progress(`memory: client-node informers caching ${vms} VMs + ${vms} VMIs`);
          const inf = await benchInformer(vms, { timeoutMs: opts.convergeTimeoutSeconds * 1000 });
          scale.memory = {
            vms,
            watcherPeakRssMb: cold.watcherPeakRssMb,
            informerPeakRssMb: inf.informerPeakRssMb,
            watcherToInformer: cold.watcherPeakRssMb / inf.informerPeakRssMb,
            informerRssMb: inf.informerRssMb,
            informerCachedVms: inf.cached[0] ?? 0,
            informerCachedVmis: inf.cached[1] ?? 0,
            informerListSeconds: inf.listSeconds ?? null,
            informerTimedOut: inf.timedOut,
          };
        });
      });
    } else if (relistLatency) {
      await section('relistlatency', async () => {
        scale.relistLatency = await benchRelistLatency(vms, relistOpts);
      });
    }
    if (opts.only.has('relist')) {
      await section('relist', async () => {
        scale.relist = await benchRelistModes(vms, { timeoutMs: opts.convergeTimeoutSeconds * 1000 * 3, progress });
      });
    }
    if (Object.keys(scale.errors!).length === 0) delete scale.errors;
  }
  results.finishedAt = new Date().toISOString();
  results.targets = evaluateTargets(results);
  return results;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opts = parseArgs(argv);
  const results = await runBench(opts, ['npm run bench --', ...argv].join(' '));
  const written = writeResults(results, opts.outDir);
  // The report is this program's output.
  console.log(renderText(results));
  console.log(`\nresults: ${path.relative(process.cwd(), written.file)} (and ${path.relative(process.cwd(), written.latest)})`);
}

// Only when run as the entry point: the smoke test imports runBench.
if (process.argv[1] && path.resolve(process.argv[1]) === path.join(packageRoot, 'dist', 'bench', 'run.js')) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
