// The real watcher process (`node dist/src/cli/main.js run`) as the benchmarks drive it, and the
// simulated cluster it watches. Nothing is faked: the watcher lists and watches over HTTP and
// writes through vm_sync.apply_batch like in production.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { packageRoot } from '../src/lib/paths.js';
import { benchNamespaces } from './pg.js';

const CLI = path.join(packageRoot, 'dist', 'src', 'cli', 'main.js');

export interface BenchCluster {
  sim: Simulator;
  kubeconfig: string;
  close(): Promise<void>;
}

/** A simulator with n VMs, each with a Running VMI and a connected guest agent, spread like the vms rows. */
export async function startCluster(n: number): Promise<BenchCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsync-bench-'));
  // History large enough that a resume after a few changes never meets a 410.
  const sim = await startSimulator({ historyLimit: Math.max(50_000, 3 * n), bookmarkIntervalMs: 5000 });
  sim.seed(n, { namespaces: benchNamespaces(), runningRatio: 1, agentRatio: 1 });
  const kubeconfig = path.join(dir, 'kubeconfig');
  await sim.writeKubeconfig(kubeconfig);
  return {
    sim,
    kubeconfig,
    async close() {
      await sim.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One JSON log line of the watcher (pino): msg, time, and the logger's context (kind, scope, ...). */
export type LogRecord = { msg?: string; time?: string; level?: number | string } & Record<string, unknown>;

export class Watcher {
  readonly startedAt = performance.now();
  /** Wall-clock start, to place the watcher's own log timestamps. */
  readonly startedWall = Date.now();
  readonly exited: Promise<number | null>;
  private tailLines: string[] = [];
  private readonly recordListeners = new Set<(rec: LogRecord) => void>();

  private constructor(readonly child: ChildProcess) {
    const keep = (chunk: Buffer) => {
      this.tailLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (this.tailLines.length > 200) this.tailLines.splice(0, this.tailLines.length - 200);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // Whole lines only (a chunk can end mid-record), for nextLog.
    let partial = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      if (this.recordListeners.size === 0) return;
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        let rec: LogRecord;
        try {
          rec = JSON.parse(line) as LogRecord;
        } catch {
          continue;
        }
        for (const l of [...this.recordListeners]) l(rec);
      }
    });
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  /** Starts `ssvirt-vm-sync run` as deployed (the Deployment's NODE_OPTIONS), plus `env` overrides. */
  static start(databaseUrl: string, kubeconfig: string, env: Record<string, string> = {}, extraArgs: string[] = []): Watcher {
    const child = spawn(process.execPath, [...extraArgs, CLI, 'run'], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? os.tmpdir(),
        DATABASE_URL: databaseUrl,
        KUBECONFIG: kubeconfig,
        // The harness migrated the database itself; metrics would need a free port.
        MIGRATE: 'false',
        METRICS_ADDR: 'off',
        LOG_LEVEL: process.env.BENCH_WATCHER_LOG_LEVEL ?? 'warn',
        VM_SYNC_HOLDER: 'bench',
        NODE_OPTIONS: deployedNodeOptions(),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new Watcher(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Seconds from process start to the last log record with this message (the log level must include it). */
  loggedAt(msg: string): number | null {
    let at: number | null = null;
    for (const line of this.tailLines) {
      if (!line.includes(msg)) continue;
      try {
        const rec = JSON.parse(line) as { msg?: string; time?: string };
        if (rec.msg === msg && rec.time) at = (Date.parse(rec.time) - this.startedWall) / 1000;
      } catch {
        // not a log record
      }
    }
    return at;
  }

  /**
   * The first log record from now on that satisfies `pred`, with its own timestamp placed on this
   * process's performance.now() clock (the record's time, not when this busy process read it);
   * null after timeoutMs or if the watcher exits first.
   */
  nextLog(pred: (rec: LogRecord) => boolean, timeoutMs: number): Promise<{ rec: LogRecord; at: number } | null> {
    return new Promise((resolve) => {
      const done = (v: { rec: LogRecord; at: number } | null) => {
        clearTimeout(timer);
        this.recordListeners.delete(listener);
        resolve(v);
      };
      const listener = (rec: LogRecord) => {
        if (!pred(rec)) return;
        const at = rec.time ? this.startedAt + (Date.parse(rec.time) - this.startedWall) : performance.now();
        done({ rec, at });
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      this.recordListeners.add(listener);
      void this.exited.then(() => done(null));
    });
  }

  tail(lines = 30): string {
    return this.tailLines.slice(-lines).join('\n');
  }

  /** SIGTERM, then SIGKILL if it has not exited within graceMs. Returns the exit code. */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** VmHWM (peak resident set) and VmRSS of a live process, in MB, from /proc/<pid>/status. */
export function procMemoryMb(pid: number): { peakRssMb: number; rssMb: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peakRssMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 };
}

/**
 * Polls `sql` (returning one row with a numeric `n`) until n >= want or timeoutMs passes.
 * Returns the milliseconds waited, or null on timeout. Polling is the measurement here:
 * the interval bounds its resolution.
 */
export async function pollUntil(client: pg.Client, sql: string, params: unknown[], want: number, timeoutMs: number, intervalMs = 50): Promise<number | null> {
  const t0 = performance.now();
  for (;;) {
    const r = await client.query<{ n: string }>(sql, params);
    if (Number(r.rows[0]!.n) >= want) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) return null;
    await new Promise((res) => setTimeout(res, intervalMs));
  }
}

export const FILLED_SQL = `select count(*) as n from public.vms
  where deleted_at is null and status is not null and cpu_count is not null and memory_mb is not null and guest_os is not null`;

/** NODE_OPTIONS of deploy/base/deployment.yaml, so the benchmark measures the watcher as it is deployed. */
export function deployedNodeOptions(): string {
  const manifest = fs.readFileSync(path.join(packageRoot, 'deploy', 'base', 'deployment.yaml'), 'utf8');
  const m = /name: NODE_OPTIONS\s*\n\s*value: "([^"]*)"/.exec(manifest);
  if (!m) throw new Error('deploy/base/deployment.yaml sets no NODE_OPTIONS');
  return m[1]!;
}
