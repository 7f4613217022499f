// The demo end to end, as a newcomer runs it: exit 0, and the sync visibly happening (specific
// notifications and values). Also: a second demo fails fast, and a demo killed with SIGKILL leaves
// nothing that breaks the next one.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { pidAlive } from '../../src/dev/embedded/proc.js';
import { packageRoot } from '../../src/lib/paths.js';
import { MIN_GUARD_MS } from '../helpers/eventually.js';

const cli = path.join(packageRoot, 'dist', 'src', 'cli', 'main.js');
const server = process.env.VM_SYNC_TEST_SERVER ?? process.env.DATABASE_URL ?? '';
const dataDir = path.join(packageRoot, '.data', `test-demo-${crypto.randomBytes(3).toString('hex')}`);
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

interface Run {
  child: ChildProcess;
  output: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when the output contains `text`; rejects if the demo exits first. */
  printed(text: string): Promise<void>;
}

function demo(args: string[], env: Record<string, string | undefined> = {}): Run {
  const child = spawn(process.execPath, [cli, 'demo', '--data-dir', dataDir, ...args], {
    // A step's deadline is a hang guard: as long as any wait of the suite on a loaded machine.
    env: { ...process.env, DATABASE_URL: server, LOG_LEVEL: 'warn', DEMO_STEP_TIMEOUT_MS: String(MIN_GUARD_MS), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => {
    out += d.toString('utf8');
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output: () => out,
    done,
    printed: (text) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (out.includes(text)) resolve();
        };
        waiters.push(check);
        check();
        void done.then(() => (out.includes(text) ? resolve() : reject(new Error(`demo exited before printing ${JSON.stringify(text)}:\n${out}`))));
      }),
  };
}

async function demoDatabases(): Promise<string[]> {
  const client = new pg.Client({ connectionString: server });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(`select datname from pg_database where datname like 'ssvirt\\_vm\\_sync\\_demo\\_%'`);
    return rows.map((r) => r.datname);
  } finally {
    await client.end();
  }
}

describe('npm run demo', () => {
  test('runs end to end on the test server and shows the sync happening', { timeout: 240_000 }, async () => {
    const run = demo(['--pace-ms', '0']);
    const { code } = await run.done;
    const out = run.output();
    assert.equal(code, 0, out);
    // Specs fill the rows, the hint gives a first OS, the guest agent replaces it.
    assert.match(out, /NOTIFY vm_changed #\d+ shop\/web-01 .*cpu_count null -> 2, memory_mb null -> 4096/);
    assert.match(out, /shop\/web-01 +status "POWERING_ON" -> "POWERED_ON"/);
    assert.match(out, /shop\/web-01 +guest_os "fedora" -> "Fedora Linux 41 \(Cloud Edition\)"/);
    assert.match(out, /shop\/db-01 +guest_os "rhel9" -> "Red Hat Enterprise Linux 9.4 \(Plow\)"/);
    // Hotplug, reconcile of a late row, stop, delete.
    assert.match(out, /shop\/web-01 +cpu_count 2 -> 4/);
    assert.match(out, /shop\/db-01 +memory_mb 16384 -> 24576/);
    assert.match(out, /analytics\/report-01 .*cpu_count null -> 4, memory_mb null -> 8192/);
    assert.match(out, /shop\/web-01 +status "POWERING_OFF" -> "POWERED_OFF"/);
    assert.match(out, /shop\/db-01 +status "DELETING" -> "DELETED"/);
    // The final table, and the row without a VM untouched.
    assert.match(out, /web-01 +shop\/web-01 +POWERED_OFF +4 +4096 +Fedora Linux 41 \(Cloud Edition\)/);
    assert.match(out, /legacy-01 +shop\/legacy-01 +POWERED_ON +2 +2048 +Ubuntu 22.04.4 LTS/);
    assert.match(out, /shop\/app-01 .*cpu_count null -> 8, memory_mb null -> 32768/);
    assert.match(out, /shop\/app-01 +cpu_count 8 -> 1, memory_mb 32768 -> 4096/);
    assert.match(out, /app-01 +shop\/app-01 +POWERED_OFF +1 +4096/);
    assert.match(out, /Done: 9 steps, \d+ notifications/);
    assert.deepEqual(
      (await demoDatabases()).filter((d) => d.endsWith(`_${run.child.pid}`)),
      [],
      'the throwaway database is dropped',
    );
    assert.equal(fs.existsSync(path.join(dataDir, 'demo.lock')), false, 'the demo lock is released');
  });

  test('a second demo fails fast; a demo killed with SIGKILL does not break the next one', { timeout: 240_000 }, async () => {
    const first = demo(['--pace-ms', '1000']);
    await first.printed('Step 2/9');
    const second = demo(['--pace-ms', '0']);
    const { code } = await second.done;
    assert.equal(code, 1);
    assert.match(second.output(), /another ssvirt-vm-sync demo is running \(pid \d+/);

    const lock = JSON.parse(fs.readFileSync(path.join(dataDir, 'demo.lock'), 'utf8')) as { pid: number; watcherPid: number };
    assert.equal(lock.pid, first.child.pid);
    first.child.kill('SIGKILL');
    await first.done;
    assert.ok(pidAlive(lock.watcherPid), "the killed demo's watcher outlives it");

    const third = demo(['--pace-ms', '0']);
    const result = await third.done;
    assert.equal(result.code, 0, third.output());
    assert.equal(pidAlive(lock.watcherPid), false, "the killed demo's watcher was stopped");
    assert.match(third.output(), /Done: 9 steps/);
  });

  test('runs on the embedded PostgreSQL when DATABASE_URL is not set', { timeout: 180_000 }, async () => {
    const run = demo(['--pace-ms', '0'], { DATABASE_URL: '' });
    const { code } = await run.done;
    const out = run.output();
    assert.equal(code, 0, out);
    assert.match(out, /PostgreSQL +embedded, 127\.0\.0\.1:\d+/);
    assert.match(out, /shop\/db-01 +memory_mb 16384 -> 24576/);
    assert.match(out, /Done: 9 steps/);
    assert.equal(fs.existsSync(path.join(dataDir, 'demo-pg.lock')), false, 'the embedded server was stopped');
  });
});
