// The rig for fault tests: a simulator, a real PostgreSQL database, real watcher processes (each
// optionally behind its own cuttable TCP proxy), a seeded churn of VM lifecycle changes, a fence
// audit, and the convergence checker fed with every object the simulator ever served.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../src/lib/paths.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { ConvergenceChecker, VM, VMI, describeDivergences, type Report, type VmsRow } from '../helpers/convergence.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { MIN_GUARD_MS } from '../helpers/eventually.js';
import { startPgProxy, type PgProxy } from '../helpers/pgproxy.js';
import { startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';

/** Nightly mode (SOAK_MINUTES set, or RELIABILITY_NIGHTLY=1): full-length outages. */
export const NIGHTLY = Boolean(process.env.SOAK_MINUTES) || process.env.RELIABILITY_NIGHTLY === '1';

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RigOptions {
  label: string;
  vms?: number;
  namespaces?: string[];
  seed?: number;
}

interface ChurnState {
  running: boolean;
  done: Promise<void>;
}

export class Rig {
  db!: TestDatabase;
  sim!: Simulator;
  kubeconfig!: string;
  readonly checker = new ConvergenceChecker();
  readonly watchers: WatcherProcess[] = [];
  readonly proxies = new Map<WatcherProcess, PgProxy>();
  readonly names: { ns: string; name: string }[] = [];
  ops = 0;
  private churnState: ChurnState | null = null;
  private sampler: { stop: () => Promise<void>; maxHolders: number; samples: number; holders: Set<number> } | null = null;
  private nextVm = 0;
  readonly random: () => number;

  constructor(readonly opts: RigOptions) {
    this.random = rng(opts.seed ?? 1);
  }

  get namespaces(): string[] {
    return this.opts.namespaces ?? ['rel-a', 'rel-b'];
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  async start(): Promise<void> {
    this.db = await createTestDatabase(this.opts.label);
    this.sim = await startSimulator({ bookmarkIntervalMs: 200 });
    this.kubeconfig = path.join(tempDir(this.opts.label), 'kubeconfig');
    await this.sim.writeKubeconfig(this.kubeconfig);
    this.sim.on('change', (ev: { resource: string; obj: unknown }) =>
      this.checker.observe(ev.obj, ev.resource === 'virtualmachines' ? VM : VMI),
    );
    await this.installAudit();
    for (let i = 0; i < (this.opts.vms ?? 30); i++) await this.addVm(i % 3 === 0 ? 'row-first' : 'vm-first');
  }

  /** Every write to vms or to the change feed is recorded with whether its session held the leader lease. */
  private async installAudit(): Promise<void> {
    await this.db.query(`
      create table public.fence_audit (
        id bigserial primary key, at timestamptz not null default clock_timestamp(), tbl text not null,
        pid integer not null, holds boolean, term bigint, leader_pid integer, seq bigint);
      create function public.fence_audit_fn() returns trigger language plpgsql as $$
      begin
        insert into public.fence_audit (tbl, pid, holds, term, leader_pid, seq)
        select tg_table_name, pg_backend_pid(), l.pid = pg_backend_pid() and l.lease_expires_at > clock_timestamp(), l.term, l.pid,
               (to_jsonb(new) ->> 'seq')::bigint
          from vm_sync.leader l;
        return new;
      end $$;
      create trigger fence_audit after insert on vm_sync.changes for each row execute function public.fence_audit_fn();
      create trigger fence_audit after update on public.vms for each row execute function public.fence_audit_fn();
    `);
  }

  /** A new VM, its vms row created before or after it appears in the cluster (then reconcile fills it). */
  async addVm(order: 'row-first' | 'vm-first'): Promise<void> {
    const ns = this.pick(this.namespaces);
    const name = `vm-${String(this.nextVm++).padStart(4, '0')}`;
    const row = async () => {
      const id = `urn:vcloud:vm:${ns}-${name}`;
      await this.db.query(`insert into public.vms (id, name, vapp_id, vm_name, namespace) values ($1, $2, 'urn:vcloud:vapp:rel', $2, $3)`, [id, name, ns]);
      this.checker.recordInitial([{ id, namespace: ns, vm_name: name, status: null, cpu_count: null, memory_mb: null, guest_os: null }]);
    };
    if (order === 'row-first') await row();
    await this.sim.createVM(ns, name, {
      running: this.random() < 0.7,
      guestAgent: this.random() < 0.5 ? { prettyName: this.pick(['Fedora Linux 41', 'Ubuntu 24.04 LTS', 'Windows Server 2022']), name: 'x', version: '1' } : false,
      cpu: { sockets: 1 + Math.floor(this.random() * 2), cores: 1 + Math.floor(this.random() * 4) },
      memory: this.pick(['1Gi', '2Gi', '1536Mi', '4G']),
      memoryAsGuest: this.random() < 0.5,
      osHint: this.random() < 0.5 ? this.pick(['fedora', 'rhel9', 'windows2k22']) : undefined,
      runStrategy: this.pick(['Always', 'Halted', 'legacy', 'Manual', 'RerunOnFailure'] as const),
    } as never);
    if (order === 'vm-first') await row();
    this.names.push({ ns, name });
  }

  /** One random lifecycle change; invalid ones (pausing a stopped VM...) are simply skipped. */
  async churnOnce(): Promise<void> {
    const { ns, name } = this.pick(this.names);
    const r = this.random();
    try {
      if (r < 0.15) await this.sim.startVM(ns, name);
      else if (r < 0.27) await this.sim.stopVM(ns, name);
      else if (r < 0.33) await this.sim.pauseVM(ns, name);
      else if (r < 0.38) await this.sim.unpauseVM(ns, name);
      else if (r < 0.5) await this.sim.hotplugCPU(ns, name, 1 + Math.floor(this.random() * 6));
      else if (r < 0.62) await this.sim.hotplugMemory(ns, name, this.pick(['1Gi', '2Gi', '3Gi', '6144Mi', '8G']));
      else if (r < 0.7) await this.sim.connectGuestAgent(ns, name, { prettyName: `Linux ${Math.floor(this.random() * 100)}` });
      else if (r < 0.74) await this.sim.disconnectGuestAgent(ns, name);
      else if (r < 0.8) await this.sim.setPrintableStatus(ns, name, this.pick(['Running', 'Stopped', 'ErrImagePull', 'Migrating', 'Provisioning', 'Weird']));
      else if (r < 0.84) await this.sim.deleteVM(ns, name);
      else if (r < 0.9) await this.sim.recreateVM(ns, name, { running: this.random() < 0.5, cpu: { cores: 1 + Math.floor(this.random() * 8) }, memory: this.pick(['1Gi', '2Gi']) });
      else if (r < 0.93) await this.addVm(this.random() < 0.5 ? 'row-first' : 'vm-first');
      else await this.sim.createVM(ns, name, { running: true }).catch(() => this.sim.startVM(ns, name));
      this.ops++;
    } catch {
      // not applicable in the VM's current state
    }
  }

  /** Churns in the background until stopChurn(); `gapMs` between changes. */
  startChurn(gapMs = 25): void {
    const state: ChurnState = { running: true, done: Promise.resolve() };
    state.done = (async () => {
      while (state.running) {
        await this.churnOnce();
        await sleep(gapMs * (0.5 + this.random()));
      }
    })();
    this.churnState = state;
  }

  async stopChurn(): Promise<void> {
    if (!this.churnState) return;
    this.churnState.running = false;
    await this.churnState.done;
    this.churnState = null;
  }

  /** A watcher process; through its own proxy when `proxied` (so its database link can be cut). */
  async startWatcher(holder: string, opts: { proxied?: boolean; env?: Record<string, string> } = {}): Promise<WatcherProcess> {
    let url = this.db.url;
    let proxy: PgProxy | undefined;
    if (opts.proxied) {
      proxy = await startPgProxy(this.db.url);
      url = proxy.rewrite(this.db.url);
    }
    const w = startWatcher({ databaseUrl: url, kubeconfig: this.kubeconfig, holder, env: opts.env });
    this.watchers.push(w);
    if (proxy) this.proxies.set(w, proxy);
    return w;
  }

  /** Restarts a (dead) watcher with the same holder name and proxy. */
  restartWatcher(old: WatcherProcess, env?: Record<string, string>): WatcherProcess {
    const proxy = this.proxies.get(old);
    const w = startWatcher({ databaseUrl: proxy ? proxy.rewrite(this.db.url) : this.db.url, kubeconfig: this.kubeconfig, holder: old.holder, env });
    this.watchers.push(w);
    if (proxy) this.proxies.set(w, proxy);
    return w;
  }

  live(): WatcherProcess[] {
    return this.watchers.filter((w) => w.alive);
  }

  async leader(): Promise<{ holder: string | null; pid: number | null; term: number; connected: boolean }> {
    const [row] = await this.db.query(`select holder, pid, term::int as term, leader_connected as connected from vm_sync.sync_status`);
    return row;
  }

  /** The live watcher process currently leading (by holder name), awaited. */
  async awaitLeader(timeoutMs = 20_000): Promise<WatcherProcess> {
    timeoutMs = Math.max(timeoutMs, MIN_GUARD_MS);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = await this.leader();
      const w = this.live().find((p) => p.holder === l.holder);
      if (w && l.connected) return w;
      if (Date.now() > deadline) throw new Error(`no live leader within ${timeoutMs} ms: ${JSON.stringify(l)}; live ${this.live().map((p) => p.holder)}`);
      await sleep(50);
    }
  }

  /** Samples the lease continuously: at most one connected session may ever hold it. */
  startSampler(intervalMs = 25): void {
    const s = { maxHolders: 0, samples: 0, holders: new Set<number>(), stop: async () => undefined as void };
    let running = true;
    const loop = (async () => {
      while (running) {
        const rows = await this.db
          .query<{ pid: number }>(
            `select l.pid from vm_sync.leader l join pg_stat_activity a on a.pid = l.pid and a.datname = current_database()
              where l.lease_expires_at > clock_timestamp()`,
          )
          .catch(() => []);
        s.samples++;
        s.maxHolders = Math.max(s.maxHolders, rows.length);
        for (const r of rows) s.holders.add(r.pid);
        await sleep(intervalMs);
      }
    })();
    s.stop = async () => {
      running = false;
      await loop;
    };
    this.sampler = s;
  }

  async stopSampler(): Promise<{ samples: number; maxHolders: number; distinctHolders: number }> {
    if (!this.sampler) return { samples: 0, maxHolders: 0, distinctHolders: 0 };
    await this.sampler.stop();
    const r = { samples: this.sampler.samples, maxHolders: this.sampler.maxHolders, distinctHolders: this.sampler.holders.size };
    this.sampler = null;
    return r;
  }

  /**
   * The fence, checked: every write to vms and to the change feed came from a session holding the
   * leader lock and recorded as the leader, and terms never go back in write order.
   */
  async assertFenced(): Promise<{ writes: number; terms: number }> {
    const bad = await this.db.query(`select * from public.fence_audit where not holds or leader_pid is distinct from pid order by id limit 5`);
    assert.deepEqual(bad, [], 'a write from a session that did not hold the leader lock');
    const [back] = await this.db.query(
      `select count(*)::int as n from (select term < max(term) over (order by id rows between unbounded preceding and 1 preceding) as back from public.fence_audit) x where back`,
    );
    assert.equal(back.n, 0, 'a write under an older term after a newer term had written');
    const [stats] = await this.db.query(`select count(*)::int as writes, count(distinct term)::int as terms from public.fence_audit`);
    return stats;
  }

  async rows(): Promise<VmsRow[]> {
    return this.db.query<VmsRow>(`select id, namespace, vm_name, status, cpu_count, memory_mb, guest_os, deleted_at from public.vms order by id`);
  }

  /** Awaits zero divergent rows (the checker against the simulator's truth). */
  async awaitConvergence(what: string, timeoutMs = 30_000): Promise<Report> {
    timeoutMs = Math.max(timeoutMs, MIN_GUARD_MS);
    const deadline = Date.now() + timeoutMs;
    let last: Report | null = null;
    for (;;) {
      last = this.checker.check(this.sim.truth(), await this.rows());
      if (last.divergences.length === 0) return last;
      if (Date.now() > deadline) {
        const tails = this.live()
          .map((w) => `--- ${w.holder}\n${w.tail(8).split('\n').map((l) => l.slice(0, 300)).join('\n')}`)
          .join('\n');
        throw new Error(`${what}: no convergence within ${timeoutMs} ms. ${describeDivergences(last)}\n${tails}`);
      }
      await sleep(200);
    }
  }

  /** Counts of faults injected, by name. */
  readonly injected: Record<string, number> = {};

  private count(name: string): void {
    this.injected[name] = (this.injected[name] ?? 0) + 1;
  }

  /** PostgreSQL unreachable for `ms` for the watchers behind proxies (all of them, or one). */
  async pgOutage(ms: number, only?: WatcherProcess): Promise<void> {
    const proxies = only ? [this.proxies.get(only)].filter((p): p is PgProxy => !!p) : [...new Set(this.proxies.values())];
    assert.ok(proxies.length > 0, 'pgOutage needs proxied watchers');
    this.count(only ? 'pg-partition-one' : 'pg-outage');
    for (const p of proxies) await p.cut();
    await sleep(ms);
    for (const p of proxies) await p.restore();
  }

  /** SIGKILL while a batch is inside apply_batch: the test holds the writer row lock so the batch waits there. */
  async killMidBatch(commitOrphan: boolean): Promise<WatcherProcess> {
    const leader = await this.awaitLeader();
    const blocker = await this.db.pool.connect();
    try {
      await blocker.query('begin');
      await blocker.query('select 1 from vm_sync.writer where id = 1 for update');
      // Something to write, while the lock is held.
      let waiting: { pid: number } | undefined;
      const deadline = Date.now() + Math.max(20_000, MIN_GUARD_MS);
      while (!waiting) {
        await this.churnOnce();
        const rows = await this.db.query<{ pid: number }>(
          // A write of the leader's session (apply_batch, or a reconcile/sweep it runs between batches)
          // waiting for the writer row lock.
          `select a.pid from pg_stat_activity a where a.datname = current_database() and a.wait_event_type = 'Lock'
              and a.query like '%vm_sync.%' and a.pid <> pg_backend_pid()
              and a.pid = (select l.pid from vm_sync.leader l)`,
        );
        waiting = rows[0];
        if (Date.now() > deadline) throw new Error('no write of the leader reached the writer lock while the test held it');
        if (!waiting) await sleep(30);
      }
      await leader.kill('SIGKILL');
      this.count(commitOrphan ? 'sigkill-mid-batch-committed' : 'sigkill-mid-batch-aborted');
      if (!commitOrphan) await this.db.query('select pg_terminate_backend($1)', [waiting.pid]);
    } finally {
      await blocker.query('rollback').catch(() => undefined);
      blocker.release();
    }
    return leader;
  }

  /** SIGKILL of the leading process. */
  async killLeader(): Promise<WatcherProcess> {
    const leader = await this.awaitLeader();
    await leader.kill('SIGKILL');
    this.count('sigkill-leader');
    return leader;
  }

  /** The leader's database session dies under it (a network reset, an administrator). */
  async terminateLeaderSession(): Promise<void> {
    const l = await this.leader();
    if (l.pid !== null && l.connected) {
      await this.db.query('select pg_terminate_backend($1)', [l.pid]);
      this.count('leader-session-terminated');
    }
  }

  /**
   * Split brain attempt: the leader freezes (SIGSTOP), its session is killed, another watcher takes
   * over; then the old leader wakes up believing it leads. It must write nothing.
   */
  async frozenLeader(): Promise<void> {
    const leader = await this.awaitLeader();
    const before = (await this.leader()).term;
    leader.child.kill('SIGSTOP');
    try {
      await this.terminateLeaderSession();
      const deadline = Date.now() + Math.max(20_000, MIN_GUARD_MS);
      while ((await this.leader()).term === before || !(await this.leader()).connected) {
        if (Date.now() > deadline) throw new Error('no takeover while the leader was frozen');
        await sleep(50);
      }
      await sleep(300); // the new leader writes while the old one sleeps
    } finally {
      leader.child.kill('SIGCONT');
    }
    this.count('frozen-leader');
  }

  /** Watch stream faults from the simulator. */
  async apiFault(kind: string, ms: number): Promise<void> {
    this.count(kind);
    switch (kind) {
      case 'drop-streams':
        this.sim.dropStreams();
        break;
      case 'drop-streams-graceful':
        this.sim.dropStreams({ graceful: true });
        break;
      case 'stall-streams':
        this.sim.stallStreams({ newStreams: false });
        await sleep(ms);
        this.sim.resume();
        break;
      case 'stall-all':
        this.sim.stallStreams({ newStreams: true });
        await sleep(ms);
        this.sim.resume();
        break;
      case '410-event':
        this.sim.fail410OnNextWatch('event', 2);
        this.sim.dropStreams();
        break;
      case '410-http':
        this.sim.fail410OnNextWatch('http', 2);
        this.sim.dropStreams();
        break;
      case 'compact':
        this.sim.compact();
        this.sim.dropStreams();
        break;
      case 'http-500':
        this.sim.failRequests({ status: 500, durationMs: ms });
        this.sim.dropStreams();
        await sleep(ms);
        break;
      case 'http-503-lists':
        this.sim.failRequests({ status: 503, durationMs: ms, only: 'list' });
        this.sim.fail410OnNextWatch('event', 1);
        this.sim.dropStreams();
        await sleep(ms);
        break;
      case 'slow':
        this.sim.slowResponses(Math.min(ms, 2000));
        this.sim.dropStreams();
        await sleep(ms);
        this.sim.slowResponses(0);
        break;
      case 'api-offline':
        await this.sim.goOffline();
        await sleep(ms);
        await this.sim.goOnline();
        break;
      default:
        throw new Error(`unknown API fault ${kind}`);
    }
  }

  async stop(): Promise<void> {
    await this.stopChurn().catch(() => undefined);
    await this.stopSampler().catch(() => undefined);
    await stopAllWatchers();
    for (const p of this.proxies.values()) await p.close().catch(() => undefined);
    await this.sim?.close().catch(() => undefined);
    await this.db?.drop().catch(() => undefined);
  }
}

/** Runs the CLI without blocking this process (proxies and the simulator live here and must keep answering). */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(packageRoot, 'dist', 'src', 'cli', 'main.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ status: code, stdout, stderr });
    });
  });
}
