// `ssvirt-vm-sync status` for on-call people with read-only access: a LOGIN role that is a member of
// vm_sync_reader and nothing else (with a password, so this holds on a SCRAM server too) reads the
// whole status through vm_sync.status_report(), and stale checkpoints are flagged.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { cleanEnv, runCli, STACK } from '../helpers/cli.js';
import { createLoginRole, dropLoginRoles } from '../helpers/roles.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { ev, vm } from '../reliability/objects.js';

describe('status as a member of vm_sync_reader only', () => {
  let db: TestDatabase;
  let leader: pg.Client;
  let readerUrl: string;
  let password: string;

  before(async () => {
    db = await createTestDatabase('status_reader');
    ({ url: readerUrl, password } = await createLoginRole(db, 'vm_sync_reader', 'oncall'));
    // A leader of our own: holds the lock, records its cluster and watches, writes a batch.
    leader = new pg.Client({ connectionString: db.url });
    await leader.connect();
    await leader.query(`select vm_sync.try_lead('status-test')`);
    await leader.query(`select vm_sync.begin_term('https://api.example:6443', 'uid-1', '["VirtualMachine/vdc-a", "VirtualMachineInstance/vdc-a"]')`);
    await leader.query(`select vm_sync.apply_batch($1::jsonb, $2::jsonb)`, [
      JSON.stringify([ev('ADDED', vm({ namespace: 'vdc-a', name: 'v-1', cpu: { cores: 1 } }))]),
      JSON.stringify([
        { kind: 'VirtualMachine', scope: 'vdc-a', resourceVersion: '10' },
        { kind: 'VirtualMachineInstance', scope: 'vdc-a', resourceVersion: '10' },
      ]),
    ]);
    await leader.query(`select vm_sync.save_list_progress($1::jsonb)`, [JSON.stringify([{ kind: 'VirtualMachine', scope: 'vdc-a', reason: 'cold_start', objects: 1, pages: 1, done: true }])]);
  });

  after(async () => {
    await leader?.end();
    if (db) await dropLoginRoles(db);
    await db?.drop();
  });

  test('the reader role cannot read the tables themselves', async () => {
    const c = new pg.Client({ connectionString: readerUrl });
    await c.connect();
    try {
      await assert.rejects(c.query('select * from vm_sync.leader'), /permission denied/);
    } finally {
      await c.end();
    }
  });

  test('status --json shows the leader, cluster, checkpoints and lists, and no problem', async () => {
    const r = await runCli(['status', '--json'], cleanEnv({ DATABASE_URL: readerUrl }));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = JSON.parse(r.stdout) as Record<string, any>;
    assert.equal(s.leader.holder, 'status-test');
    assert.equal(s.leader.lockHeld, true);
    assert.equal(s.cluster.server, 'https://api.example:6443');
    assert.deepEqual(s.watches.map((w: any) => [w.kind, w.scope, w.resourceVersion, w.watched]), [
      ['VirtualMachine', 'vdc-a', '10', true],
      ['VirtualMachineInstance', 'vdc-a', '10', true],
    ]);
    assert.equal(s.lists[0].objects, 1);
    assert.deepEqual(s.problems, []);
    assert.ok(!r.stdout.includes(password), 'the password is not printed');
  });

  test('a checkpoint of a namespace no longer watched is flagged (exit 3)', async () => {
    await leader.query(`select vm_sync.begin_term('https://api.example:6443', 'uid-1', '["VirtualMachine/vdc-b", "VirtualMachineInstance/vdc-b"]')`);
    const r = await runCli(['status'], cleanEnv({ DATABASE_URL: readerUrl }));
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, STACK);
    assert.match(r.stdout, /stale checkpoint VirtualMachine\/vdc-a: no longer watched/);
    assert.match(r.stdout, /NO \(stale\)/);
  });
});
