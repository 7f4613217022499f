// `npm run bench`: the performance harness. Real PostgreSQL (DATABASE_URL, else the local default),
// a fresh database per benchmark, the real watcher process and the simulated KubeVirt API.
//
//   node dist/bench/run.js [--vms 1000|10000|100000] [--full] [--only ingest,noop,latency,coldstart,memory]
//                          [--baseline-budget <s>] [--ingest-budget <s>] [--reconcile-timeout <s>] [--out <dir>] [--quiet]
//
// Prints a table and writes bench/results/<timestamp>.json and bench/results/latest.json.
import path from 'node:path';
import { benchIngest } from './ingest.js';
import { benchNoop } from './noop.js';
import { serverUrl } from './pg.js';
import { machineInfo, renderText, writeResults, type Results, type ScaleResults } from './report.js';
import { evaluateTargets } from './targets.js';
import { packageRoot } from '../src/paths.js';

export const SECTIONS = ['ingest', 'noop', 'latency', 'coldstart', 'memory'] as const;
export type Section = (typeof SECTIONS)[number];

export interface BenchOptions {
  scales: number[];
  only: Set<Section>;
  /** Timed seconds the per-object baseline gets per batch size before it is stopped. */
  baselineBudgetSeconds: number;
  /** The same cap for set-based ingest, so a pathological build cannot hold the run hostage. */
  ingestBudgetSeconds: number;
  /** statement_timeout for the no-op reconcile(). */
  reconcileTimeoutSeconds: number;
  outDir: string;
  quiet: boolean;
}

export function parseArgs(argv: string[]): BenchOptions {
  const opts: BenchOptions = {
    scales: [10_000],
    only: new Set(SECTIONS),
    baselineBudgetSeconds: 15,
    ingestBudgetSeconds: 90,
    reconcileTimeoutSeconds: 120,
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
    const scale: ScaleResults = { vms };
    results.scales.push(scale);
    if (opts.only.has('ingest')) scale.ingest = await benchIngest(vms, {
        baselineBudgetMs: opts.baselineBudgetSeconds * 1000,
        setBudgetMs: opts.ingestBudgetSeconds * 1000,
        progress,
      });
    if (opts.only.has('noop')) {
      progress(`no-op replay and reconcile, ${vms} VMs`);
      scale.noop = await benchNoop(vms, { reconcileTimeoutMs: opts.reconcileTimeoutSeconds * 1000 });
    }
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
