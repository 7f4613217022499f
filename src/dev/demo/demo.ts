// `ssvirt-vm-sync demo` (`npm run demo`): PostgreSQL (embedded, or DATABASE_URL's server with a
// throwaway database), the simulated KubeVirt API and the real watcher process, driven through a
// short timeline while every vm_changed notification and the vms table are printed.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { DATABASE_URL_OPTION, optionsHelp, parseOptions, type OptionSpec } from '../../lib/config.js';
import { pino } from 'pino';
import { redactUrl } from '../../lib/log.js';
import { createInitialVms, formatNotification, readRows, seedRows, STEPS, UNTOUCHED, unmet, vmsTable, type Step } from './timeline.js';
import { pidAlive, processCommandLine, processStartTime, readOwner, ownerAlive, tryCreateLock, type OwnerRecord } from '../embedded/proc.js';
import { startEmbeddedPostgres, type EmbeddedServer } from '../embedded/server.js';
import { migrate } from '../../pg/migrate.js';
import { packageRoot } from '../../lib/paths.js';
import { startSimulator, type Simulator } from '../../sim/index.js';
import { formatStatus, readStatus } from '../../cli/status.js';

export const DEMO_OPTIONS: readonly OptionSpec[] = [
  { ...DATABASE_URL_OPTION, help: 'use this server (a throwaway database is created on it and dropped after) instead of the embedded one' },
  { key: 'dataDir', flag: '--data-dir', env: ['VM_SYNC_DATA_DIR'], type: 'string', default: null, help: 'folder for the demo lock, the watcher log and the embedded cluster (default: .data in the checkout)' },
  { key: 'paceMs', flag: '--pace-ms', env: ['DEMO_PACE_MS'], type: 'int', default: 700, min: 0, max: 60_000, help: 'pause between steps, to read along' },
  { key: 'stepTimeoutMs', flag: '--step-timeout-ms', env: ['DEMO_STEP_TIMEOUT_MS'], type: 'int', default: 20_000, min: 1000, max: 600_000, help: 'longest wait for a step to show in vms' },
];

const HELP = `usage: ssvirt-vm-sync demo [options]

Runs the whole system through a scripted VM lifecycle (about 15 steps, each paced by --pace-ms,
then it stops): PostgreSQL (embedded in .data/demo-pg, or DATABASE_URL's server
with a throwaway database), the simulated KubeVirt API, and the real watcher (\`ssvirt-vm-sync run\`
as a child process). SSVirt rows are seeded, then VMs start, get a guest agent, are hotplugged,
stop and are deleted; each vm_changed notification and the vms table after each step are printed.
Exits 0 when every step reached the values it should. One demo at a time per checkout.

options:
${optionsHelp(DEMO_OPTIONS)}`;

let dataDir = path.join(packageRoot, '.data');
let demoDir = path.join(dataDir, 'demo');
let lockPath = path.join(dataDir, 'demo.lock');
const cli = path.join(packageRoot, 'dist', 'src', 'cli', 'main.js');

interface DemoOwner extends OwnerRecord {
  watcherPid?: number;
}

class DemoFailure extends Error {}

/** Set once the demo tears down, so the watcher's exit is not reported as a surprise. */
let stopping = false;

/** One demo per checkout: a second one fails fast; a killed one's watcher is stopped. */
function takeDemoLock(): DemoOwner {
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });
  const me: DemoOwner = {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    clusterDir: demoDir,
    command: 'ssvirt-vm-sync demo',
    startedAt: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreateLock(lockPath, me)) return me;
    const owner = readOwner(lockPath) as DemoOwner | undefined;
    if (owner && ownerAlive(owner)) {
      throw new DemoFailure(`another ssvirt-vm-sync demo is running (pid ${owner.pid}, since ${owner.startedAt}): wait for it to finish or stop it`);
    }
    // Its owner was killed: its watcher may still run (it does not die with its parent).
    const w = owner?.watcherPid;
    if (w && pidAlive(w) && /cli\/main\.js run/.test(processCommandLine(w) ?? '')) {
      try {
        process.kill(w, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
    fs.rmSync(lockPath, { force: true });
  }
  throw new DemoFailure(`cannot take ${lockPath}`);
}

function writeDemoLock(owner: DemoOwner): void {
  fs.writeFileSync(`${lockPath}.tmp`, JSON.stringify(owner, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(`${lockPath}.tmp`, lockPath);
}

async function adminQuery(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

/** Demo databases left by killed demos have nobody connected: drop them. Live demos keep theirs. */
async function dropAbandonedDemoDatabases(serverUrl: string): Promise<void> {
  const { rows } = await adminQuery(
    serverUrl,
    `select d.datname from pg_database d
      where d.datname like 'ssvirt\\_vm\\_sync\\_demo\\_%'
        and not exists (select 1 from pg_stat_activity a where a.datname = d.datname)`,
  );
  for (const r of rows) await adminQuery(serverUrl, `drop database if exists "${r.datname}"`).catch(() => undefined);
}

export async function runDemo(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  const o = parseOptions(DEMO_OPTIONS, argv, process.env);
  if (typeof o.dataDir === 'string' && o.dataDir) {
    dataDir = path.resolve(String(o.dataDir));
    demoDir = path.join(dataDir, 'demo');
    lockPath = path.join(dataDir, 'demo.lock');
  }
  const t0 = Date.now();
  const say = (line = '') => console.log(line === '' ? '' : `[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${line}`);
  // The demo's own warnings (a killed run recovered, a shared folder used as root) read as notes.
  const logger = pino(
    { level: process.env.LOG_LEVEL ?? 'warn', base: null, timestamp: false },
    {
      write(line: string) {
        try {
          const rec = JSON.parse(line) as { msg?: string; err?: { message?: string } };
          say(`note: ${rec.msg ?? ''}${rec.err?.message ? `: ${rec.err.message}` : ''}`);
        } catch {
          say(`note: ${line.trim()}`);
        }
      },
    },
  );

  let owner: DemoOwner;
  try {
    owner = takeDemoLock();
  } catch (err) {
    if (err instanceof DemoFailure) {
      console.error(`ssvirt-vm-sync demo: ${err.message}`);
      return 1;
    }
    throw err;
  }

  const aborted = new AbortController();
  const onSignal = () => aborted.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let embedded: EmbeddedServer | undefined;
  let serverUrl: string | undefined;
  let demoDb: string | undefined;
  let sim: Simulator | undefined;
  let watcher: ChildProcess | undefined;
  let watcherExit: Promise<unknown> = Promise.resolve();
  let listener: pg.Client | undefined;
  let db: pg.Client | undefined;
  const watcherLog = path.join(demoDir, 'watcher.log');
  try {
    fs.mkdirSync(demoDir, { recursive: true });
    console.log('ssvirt-vm-sync demo: SSVirt rows + simulated KubeVirt + the real watcher, on PostgreSQL\n');

    // 1. PostgreSQL
    if (typeof o.databaseUrl === 'string' && o.databaseUrl) {
      serverUrl = o.databaseUrl;
      await dropAbandonedDemoDatabases(serverUrl);
      demoDb = `ssvirt_vm_sync_demo_${process.pid}`;
      await adminQuery(serverUrl, `create database ${demoDb}`);
      say(`PostgreSQL   ${redactUrl(withDatabase(serverUrl, demoDb))} (throwaway database, dropped at the end)`);
    } else {
      embedded = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'demo-pg'), port: 0, logger });
      serverUrl = embedded.url;
      demoDb = 'ssvirt_vm_sync_demo';
      await adminQuery(serverUrl, `drop database if exists ${demoDb} with (force)`);
      await adminQuery(serverUrl, `create database ${demoDb}`);
      const shown = path.relative(process.cwd(), embedded.clusterDir);
      say(`PostgreSQL   embedded, 127.0.0.1:${embedded.port}, data in ${shown && !shown.startsWith('..') ? shown : embedded.clusterDir}`);
    }
    const url = withDatabase(serverUrl, demoDb);
    await migrate(url, logger);
    db = new pg.Client({ connectionString: url, application_name: 'ssvirt-vm-sync demo' });
    db.on('error', () => undefined);
    await db.connect();
    await seedRows(db);
    say('Migrated vm_sync; seeded public.vms with rows as SSVirt creates them (no cpu, memory or OS yet)');

    // 2. LISTEN before anything changes, so every notification is seen.
    listener = new pg.Client({ connectionString: url, application_name: 'ssvirt-vm-sync demo listen' });
    listener.on('error', () => undefined);
    await listener.connect();
    let seenSeq = 0;
    let notifications = 0;
    listener.on('notification', (msg) => {
      if (msg.channel !== 'vm_changed') return;
      const { seq, line } = formatNotification(msg.payload ?? '');
      seenSeq = Math.max(seenSeq, seq);
      notifications++;
      say(`  NOTIFY vm_changed ${line}`);
    });
    await listener.query('listen vm_changed');

    // 3. The simulated cluster, with its first VMs, and a kubeconfig for it.
    sim = await startSimulator({ bookmarkIntervalMs: 1000, stepDelayMs: 120 });
    await createInitialVms(sim);
    const kubeconfig = path.join(demoDir, 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    say(`KubeVirt API simulated at ${sim.url}: 4 stopped VMs (shop/web-01, shop/db-01, shop/cache-01, analytics/report-01) and the u1 instancetypes`);

    // 4. The real watcher, as a child process.
    const log = fs.openSync(watcherLog, 'w');
    watcher = spawn(process.execPath, [cli, 'run'], {
      env: {
        ...process.env,
        DATABASE_URL: url,
        KUBECONFIG: kubeconfig,
        MIGRATE: 'false',
        METRICS_ADDR: 'off',
        BATCH_MAX_WAIT_MS: '50',
        RECONCILE_INTERVAL_MS: '1000',
        LEADER_POLL_MS: '200',
        VM_SYNC_HOLDER: 'demo-watcher',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    const w = watcher;
    watcherExit = new Promise((resolve) => w.once('exit', resolve));
    w.once('exit', (code, signal) => {
      if (!aborted.signal.aborted && !stopping) say(`watcher exited unexpectedly (${signal ?? code}); see ${watcherLog}`);
    });
    writeDemoLock({ ...owner, watcherPid: w.pid });
    say(`Watcher      node dist/src/cli/main.js run (pid ${w.pid}), logs in ${path.relative(process.cwd(), watcherLog)}`);
    say();

    // 5. The timeline.
    for (const [i, step] of STEPS.entries()) {
      if (aborted.signal.aborted) throw new DemoFailure('interrupted');
      await runStep(i, step, sim, db, { say, paceMs: o.paceMs as number, timeoutMs: o.stepTimeoutMs as number, signal: aborted.signal, seen: () => seenSeq, watcher: w });
    }
    const finalRows = await readRows(db);
    const untouched = unmet(finalRows, UNTOUCHED);
    if (untouched.length) throw new DemoFailure(`legacy-01 was changed: ${untouched.join('; ')}`);
    say(`Done: ${STEPS.length} steps, ${notifications} notifications. legacy-01 has no VM: the sync left it alone.`);
    say('What `ssvirt-vm-sync status` says now:');
    console.log(
      formatStatus(await readStatus(url))
        .split('\n')
        .map((l) => (l ? `    ${l}` : l))
        .join('\n'),
    );
    console.log('\nNext: `npm test` runs the suite; docs/ tells how to run the watcher against a real cluster and database.');
    return 0;
  } catch (err) {
    if (aborted.signal.aborted) {
      console.error('\nssvirt-vm-sync demo: interrupted; stopping what it started');
      return 130;
    }
    if (err instanceof DemoFailure) {
      console.error(`\nssvirt-vm-sync demo failed: ${err.message}`);
      if (fs.existsSync(watcherLog)) console.error(`last watcher log lines (${watcherLog}):\n${tail(watcherLog, 15)}`);
      return 1;
    }
    throw err;
  } finally {
    stopping = true;
    if (watcher && watcher.exitCode === null && watcher.signalCode === null) {
      watcher.kill('SIGTERM');
      const timer = setTimeout(() => watcher?.kill('SIGKILL'), 6000);
      await watcherExit;
      clearTimeout(timer);
    }
    await listener?.end().catch(() => undefined);
    await db?.end().catch(() => undefined);
    await sim?.close().catch(() => undefined);
    if (serverUrl && demoDb && !embedded) await adminQuery(serverUrl, `drop database if exists ${demoDb} with (force)`).catch(() => undefined);
    await embedded?.stop().catch((err) => logger.warn({ err }, 'stopping the embedded PostgreSQL failed'));
    fs.rmSync(lockPath, { force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}


function tail(file: string, n: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(unreadable)';
  }
}

async function runStep(
  i: number,
  step: Step,
  sim: Simulator,
  db: pg.Client,
  ctx: { say: (l?: string) => void; paceMs: number; timeoutMs: number; signal: AbortSignal; seen: () => number; watcher: ChildProcess },
): Promise<void> {
  ctx.say(`Step ${i + 1}/${STEPS.length}: ${step.title}`);
  await step.act(sim, db);
  const deadline = Date.now() + ctx.timeoutMs;
  let missing: string[] = [];
  // Wait for the values, then for the notifications of every change committed so far.
  for (;;) {
    if (ctx.signal.aborted) throw new DemoFailure('interrupted');
    if (ctx.watcher.exitCode !== null || ctx.watcher.signalCode !== null) throw new DemoFailure('the watcher exited');
    missing = unmet(await readRows(db), step.expect);
    if (missing.length === 0) {
      const { rows } = await db.query<{ seq: string | null }>('select max(seq) as seq from vm_sync.changes');
      if (ctx.seen() >= Number(rows[0]?.seq ?? 0)) break;
    }
    if (Date.now() > deadline) {
      throw new DemoFailure(`step ${i + 1} did not reach its values within ${ctx.timeoutMs} ms: ${missing.join('; ') || 'notifications missing'}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  ctx.say('  vms now:');
  console.log(vmsTable(await readRows(db)));
  console.log('');
  if (ctx.paceMs > 0 && i < STEPS.length - 1) await new Promise((r) => setTimeout(r, ctx.paceMs));
}

