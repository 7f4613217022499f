// The embedded PostgreSQL really starts, answers, stops, and survives the traps of its package:
// a second owner, a port in use, a stale postmaster.pid, and an owner killed with SIGKILL.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { pidAlive } from '../../src/dev/embedded/proc.js';
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedServer } from '../../src/dev/embedded/server.js';
import { packageRoot } from '../../src/lib/paths.js';

const root = path.join(packageRoot, '.data', `test-embedded-${crypto.randomBytes(3).toString('hex')}`);
after(() => fs.rmSync(root, { recursive: true, force: true }));

async function selectOne(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ v: string }>(`select current_setting('server_version_num') as v`)).rows[0]!.v;
  } finally {
    await client.end();
  }
}

async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof EmbeddedPostgresError, `expected EmbeddedPostgresError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

describe('embedded PostgreSQL', () => {
  test('an ephemeral server answers on 127.0.0.1 and leaves nothing behind', async () => {
    const base = path.join(root, 'ephemeral');
    const server = await startEmbeddedPostgres({ dataDir: base, ephemeral: true });
    assert.match(server.url, /@127\.0\.0\.1:\d+\/postgres$/);
    assert.match(await selectOne(server.url), /^17\d{4}$/);
    assert.ok(fs.existsSync(path.join(server.clusterDir, 'PG_VERSION')));
    await server.stop();
    assert.equal(pidAlive(server.pid), false);
    assert.deepEqual(fs.readdirSync(base), []);
    await server.stop(); // idempotent
  });

  test('a persistent cluster keeps its data across restarts and refuses a second owner', async () => {
    const dataDir = path.join(root, 'persistent');
    let server: EmbeddedServer | undefined = await startEmbeddedPostgres({ dataDir, port: 0 });
    try {
      const client = new pg.Client({ connectionString: server.url });
      await client.connect();
      await client.query('create table kept (x int); insert into kept values (42)');
      await client.end();
      await rejectsWith(startEmbeddedPostgres({ dataDir, port: 0 }), 'ALREADY_RUNNING', /another ssvirt-vm-sync demo\/embedded server is running \(pid \d+/);
      await server.stop();
      server = await startEmbeddedPostgres({ dataDir, port: 0 });
      const again = new pg.Client({ connectionString: server.url });
      await again.connect();
      assert.deepEqual((await again.query('select x from kept')).rows, [{ x: 42 }]);
      await again.end();
    } finally {
      await server?.stop();
    }
    assert.ok(fs.existsSync(path.join(dataDir, 'PG_VERSION')), 'persistent data is kept');
    assert.equal(fs.existsSync(`${dataDir}.lock`), false, 'the owner lock is released');
  });

  test('a port in use is reported before start, with the port in the message', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await rejectsWith(startEmbeddedPostgres({ dataDir: path.join(root, 'port'), port }), 'PORT_IN_USE', new RegExp(`port ${port} `));
      assert.equal(fs.existsSync(path.join(root, 'port.lock')), false, 'a failed start releases the lock');
    } finally {
      blocker.close();
    }
  });

  test('a stale postmaster.pid (its process is gone) is removed and the cluster reused', async () => {
    const dataDir = path.join(root, 'stale');
    const first = await startEmbeddedPostgres({ dataDir, port: 0 });
    await first.stop();
    // A pid that is certainly not a postgres of this cluster: a child that has already exited.
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.on('exit', r));
    const pidFile = path.join(dataDir, 'postmaster.pid');
    fs.writeFileSync(pidFile, `${gone.pid}\n${dataDir}\n0\n0\n\n127.0.0.1\n0 0\nready\n`);
    const server = await startEmbeddedPostgres({ dataDir, port: 0 });
    try {
      assert.match(await selectOne(server.url), /^17/);
    } finally {
      await server.stop();
    }
  });

  test('a server whose owner was killed with SIGKILL is recovered by the next start', { timeout: 60_000 }, async () => {
    const dataDir = path.join(root, 'killed');
    const script = `
      import { startEmbeddedPostgres } from ${JSON.stringify(path.join(packageRoot, 'dist', 'src', 'dev', 'embedded', 'server.js'))};
      const s = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, port: 0 });
      process.stdout.write(JSON.stringify({ pid: s.pid, url: s.url }) + '\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const started = await new Promise<{ pid: number; url: string }>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
      });
      child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    assert.ok(pidAlive(started.pid), 'the orphaned postmaster outlives its killed owner');
    const server = await startEmbeddedPostgres({ dataDir, port: 0 });
    try {
      assert.equal(pidAlive(started.pid), false, 'the orphan was stopped');
      assert.match(await selectOne(server.url), /^17/);
    } finally {
      await server.stop();
    }
  });
});
