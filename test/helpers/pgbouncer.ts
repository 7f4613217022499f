// A real PgBouncer (Debian's pgbouncer) in front of the test server, in a chosen pool_mode, for the
// pooler-detection tests. Killed by stop(); skipped with a reason where the binary is missing.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { eventually } from './eventually.js';
import { freePort } from './watcher.js';

export const PGBOUNCER = process.env.PGBOUNCER ?? ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => fs.existsSync(p)) ?? '/usr/sbin/pgbouncer';

export function pgbouncerMissing(): string | null {
  return fs.existsSync(PGBOUNCER) ? null : `pgbouncer not found at ${PGBOUNCER} (.ci/run installs Debian's pgbouncer)`;
}

export interface Bouncer {
  /** `databaseUrl` with its host and port replaced by the bouncer's. */
  url: string;
  stop(): Promise<void>;
}

export async function startPgBouncer(databaseUrl: string, poolMode: 'session' | 'transaction' | 'statement', poolSize = 2): Promise<Bouncer> {
  const target = new URL(databaseUrl);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vmsync-pgbouncer-${poolMode}-`));
  fs.chmodSync(dir, 0o755);
  const user = decodeURIComponent(target.username || 'postgres');
  // The bouncer logs in to the server with the URL's password (the embedded server asks for one:
  // SCRAM); its own clients are trusted. Readable by all: as root, pgbouncer runs as postgres.
  const password = decodeURIComponent(target.password);
  const quoted = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  fs.writeFileSync(path.join(dir, 'users.txt'), `"${user}" "${password.replace(/"/g, '""')}"\n`, { mode: 0o644 });
  fs.writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${target.hostname} port=${target.port || 5432}` + (password ? ` user=${quoted(user)} password=${quoted(password)}` : ''),
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'users.txt')}`,
      `pool_mode = ${poolMode}`,
      `default_pool_size = ${poolSize}`,
      'ignore_startup_parameters = extra_float_digits,options',
      'server_reset_query =',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  // PgBouncer refuses to run as root; as root it is told to switch to an unprivileged user.
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', path.join(dir, 'pgbouncer.ini')] : [path.join(dir, 'pgbouncer.ini')];
  const child: ChildProcess = spawn(PGBOUNCER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout?.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr?.on('data', (c: Buffer) => output.push(c.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.on('exit', () => ((exited = true), resolve())));
  await eventually(
    () =>
      new Promise<boolean>((resolve, reject) => {
        if (exited) return reject(new Error(`pgbouncer exited: ${output.join('')}`));
        const s = net.connect(port, '127.0.0.1', () => (s.end(), resolve(true)));
        s.on('error', () => resolve(false));
      }),
    60_000,
    `pgbouncer (${poolMode}) listening`,
  );
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    stop: async () => {
      if (!exited) child.kill('SIGTERM');
      await exit;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
