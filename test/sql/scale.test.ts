// 10,000 VMs and 10,000 VMIs through vm_sync.ingest in batches of 500: every matching row is filled
// with the right values, and replaying the same events writes nothing and notifies nobody.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { vm, vmi } from '../helpers/objects.js';
import { ev, ingest, listen } from '../helpers/sync.js';

const VMS = 10_000;
const BATCH = 500;
const NAMESPACES = 20;

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase('scale');
});
after(async () => {
  await db.drop();
});

function spec(i: number) {
  const namespace = `vdc-scale-${i % NAMESPACES}`;
  const name = `vm-${i}`;
  const running = i % 4 !== 0; // every fourth VM is stopped: no VMI, values from the spec
  return { namespace, name, running, cores: 1 + (i % 4), sockets: 1 + (i % 2), memoryMi: 1024 * (1 + (i % 8)), guestMi: 1024 * (2 + (i % 8)) };
}

describe('ingest at scale', () => {
  it(`fills ${VMS} VMs (+ VMIs) in batches of ${BATCH}, then a full replay writes nothing`, async () => {
    // One SSVirt row per VM, plus rows nobody manages and soft-deleted duplicates.
    await db.query(`
      insert into public.vms (id, name, vapp_id, vm_name, namespace)
      select 'urn:vcloud:vm:' || i, 'display ' || i, 'urn:vcloud:vapp:1', 'vm-' || i, 'vdc-scale-' || (i % ${NAMESPACES})
        from generate_series(0, ${VMS - 1}) as i`);
    await db.query(`insert into public.vms (id, name, vapp_id, vm_name, namespace)
                    select 'urn:vcloud:vm:unmanaged-' || i, 'x', 'v', 'other-' || i, 'vdc-scale-0' from generate_series(1, 500) i`);
    await db.query(`insert into public.vms (id, name, vapp_id, vm_name, namespace, deleted_at)
                    select 'urn:vcloud:vm:deleted-' || i, 'x', 'v', 'vm-' || i, 'vdc-scale-' || (i % ${NAMESPACES}), now()
                      from generate_series(0, 499) i`);

    const events = [];
    for (let i = 0; i < VMS; i++) {
      const s = spec(i);
      events.push(ev('ADDED', vm({ namespace: s.namespace, name: s.name, cores: s.cores, memory: `${s.memoryMi}Mi`,
        printableStatus: s.running ? 'Running' : 'Stopped', runStrategy: s.running ? 'Always' : 'Halted' })));
      if (s.running) {
        events.push(ev('ADDED', vmi({ namespace: s.namespace, name: s.name, cores: s.cores, sockets: s.sockets,
          memory: `${s.memoryMi}Mi`, guestCurrent: `${s.guestMi}Mi`, guestOSInfo: { prettyName: `Fedora ${i % 3 + 39}` } })));
      }
    }
    // The VMIs of the first half arrive before their VMs, like two independent watch streams.
    events.sort((a, b) => (a.object as any).metadata.name.localeCompare((b.object as any).metadata.name));

    let updated = 0;
    for (let at = 0; at < events.length; at += BATCH) updated += (await ingest(db, events.slice(at, at + BATCH))).vms_updated;
    const rows = await db.query<{ id: string; status: string; cpu_count: number; memory_mb: number; guest_os: string | null }>(
      `select id, status, cpu_count, memory_mb, guest_os from public.vms where id not like '%unmanaged%' and deleted_at is null`);
    assert.equal(rows.length, VMS);
    let wrong = 0;
    for (const row of rows) {
      const i = Number(row.id.slice('urn:vcloud:vm:'.length));
      const s = spec(i);
      const expected = s.running
        ? { status: 'POWERED_ON', cpu_count: s.cores * s.sockets, memory_mb: s.guestMi, guest_os: `Fedora ${i % 3 + 39}` }
        : { status: 'POWERED_OFF', cpu_count: s.cores, memory_mb: s.memoryMi, guest_os: null };
      const actual = { status: row.status, cpu_count: row.cpu_count, memory_mb: row.memory_mb, guest_os: row.guest_os };
      if (JSON.stringify(actual) !== JSON.stringify(expected)) wrong += 1;
    }
    assert.equal(wrong, 0, 'every row holds the contract values');
    assert.ok(updated >= VMS, `at least one write per VM (${updated})`);
    const untouched = await db.query<{ n: number }>(
      `select count(*)::int as n from public.vms where (id like '%unmanaged%' or deleted_at is not null) and cpu_count is not null`);
    assert.equal(untouched[0]!.n, 0, 'unmanaged and soft-deleted rows are untouched');

    const before = await db.query<{ x: string }>(`select string_agg(xmin::text, ',' order by id) as x from public.vms`);
    const changesBefore = await db.query<{ n: number }>('select count(*)::int as n from vm_sync.changes');
    const listener = await listen(db.url);
    try {
      let replayUpdated = 0;
      let replayStaged = 0;
      for (let at = 0; at < events.length; at += BATCH) {
        const summary = await ingest(db, events.slice(at, at + BATCH));
        replayUpdated += summary.vms_updated;
        replayStaged += summary.staged;
      }
      await listener.drain();
      assert.equal(replayUpdated, 0, 'replay: zero rows written');
      assert.equal(replayStaged, 0, 'replay: zero snapshots rewritten');
      assert.equal(listener.payloads.length, 0, 'replay: zero notifications');
    } finally {
      await listener.close();
    }
    const afterRows = await db.query<{ x: string }>(`select string_agg(xmin::text, ',' order by id) as x from public.vms`);
    assert.equal(afterRows[0]!.x, before[0]!.x, 'no vms row has a new xmin');
    const changesAfter = await db.query<{ n: number }>('select count(*)::int as n from vm_sync.changes');
    assert.equal(changesAfter[0]!.n, changesBefore[0]!.n);
  });
});
