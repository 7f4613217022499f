// The convergence checker itself: its quantity grammar and rules on crafted cases, and proof that it
// sees a divergence when there is one. Then one differential run: events through vm_sync.ingest,
// rows compared by the checker.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ConvergenceChecker,
  EventFold,
  VMS_ROWS_SQL,
  cpuOfQuantity,
  describeDivergences,
  memoryMbOf,
  parseQuantity,
  type VmsRow,
} from '../helpers/convergence.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { ev, vm, vmi, vmsRowsSql } from './objects.js';

const exact = (s: string): string | null => {
  const v = parseQuantity(s);
  if (!v) return null;
  // num/den as a decimal string (den is a power of ten)
  const digits = v.den.toString().length - 1;
  const sign = v.num < 0n ? '-' : '';
  const abs = (v.num < 0n ? -v.num : v.num).toString().padStart(digits + 1, '0');
  const text = digits === 0 ? abs : `${abs.slice(0, -digits)}.${abs.slice(-digits)}`;
  return sign + text.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
};

describe('quantity grammar', () => {
  const cases: [string, string | null][] = [
    ['4Gi', '4294967296'],
    ['4096Mi', '4294967296'],
    ['2G', '2000000000'],
    ['1.5Gi', '1610612736'],
    ['1e9', '1000000000'],
    ['1E9', '1000000000'],
    ['4294967296', '4294967296'],
    ['500m', '0.5'],
    ['1E', '1000000000000000000'],
    ['1E3', '1000'],
    ['1e-3', '0.001'],
    ['.5Gi', '536870912'],
    ['5.', '5'],
    ['+1Ki', '1024'],
    ['-1', '-1'],
    ['100n', '0.0000001'],
    ['3u', '0.000003'],
    ['0e999999999', '0'],
    ['Gi', null],
    ['1gi', null],
    ['1K', null],
    ['1e1.5', null],
    ['1e', null],
    ['', null],
    ['.', null],
    ['1 Gi', null],
    [' 1Gi', null],
    ['1Gi ', null],
    ['0x10', null],
    ['1,5Gi', null],
    ['1GiB', null],
    ['--1', null],
    ['1' + '0'.repeat(200), null],
  ];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input.length > 20 ? input.slice(0, 20) + '...' : input)} -> ${want}`, () => {
      assert.equal(exact(input), want);
    });
  }

  test('memory and cpu rounding and ranges', () => {
    assert.deepEqual(memoryMbOf('1.5Gi'), { mb: 1536 });
    assert.deepEqual(memoryMbOf('2G'), { mb: 1907 });
    assert.deepEqual(memoryMbOf(1073741824), { mb: 1024 });
    assert.deepEqual(memoryMbOf('1048575'), { problem: 'less than 1 MiB' });
    assert.deepEqual(memoryMbOf('1048575.5'), { mb: 1 }); // whole bytes round up first
    assert.deepEqual(memoryMbOf('0'), { problem: 'zero memory' });
    assert.deepEqual(memoryMbOf('-1Gi'), { problem: 'negative memory' });
    assert.deepEqual(memoryMbOf('2048Pi'), { problem: 'out of integer range' });
    assert.deepEqual(memoryMbOf(true), { problem: 'not a quantity' });
    assert.deepEqual(memoryMbOf(null), {});
    assert.deepEqual(cpuOfQuantity('500m'), { n: 1 });
    assert.deepEqual(cpuOfQuantity('2.1'), { n: 3 });
    assert.deepEqual(cpuOfQuantity('0'), { problem: 'zero or negative CPU' });
    assert.deepEqual(cpuOfQuantity('3e9'), { problem: 'out of integer range' });
  });
});

function row(name: string, v: Partial<VmsRow> = {}): VmsRow {
  return { id: `urn:${name}`, namespace: 'default', vm_name: name, status: null, cpu_count: null, memory_mb: null, guest_os: null, ...v };
}

describe('checker rules', () => {
  const runningVm = vm({ name: 'a', cpu: { sockets: 2 }, memory: '4Gi', printableStatus: 'Running', osHint: 'fedora' });
  const runningVmi = vmi({ name: 'a', cpu: { sockets: 2, cores: 2 }, memory: '8Gi', guestOS: { name: 'Fedora Linux', version: '41' } });

  test('a row with the prescribed values passes', () => {
    const r = new ConvergenceChecker().check({ vms: [runningVm], vmis: [runningVmi] }, [
      row('a', { status: 'POWERED_ON', cpu_count: 4, memory_mb: 8192, guest_os: 'Fedora Linux 41' }),
    ]);
    assert.equal(r.divergences.length, 0, describeDivergences(r));
    assert.equal(r.rowsChecked, 1);
    assert.equal(r.valuesDetermined, 4);
  });

  test('detects each wrong value', () => {
    const r = new ConvergenceChecker().check({ vms: [runningVm], vmis: [runningVmi] }, [
      row('a', { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 4096, guest_os: 'fedora' }),
    ]);
    assert.deepEqual(
      r.divergences.map((d) => [d.field, d.actual, d.expected]),
      [
        ['status', 'POWERED_OFF', 'POWERED_ON'],
        ['cpu_count', 2, 4],
        ['memory_mb', 4096, 8192],
        ['guest_os', 'fedora', 'Fedora Linux 41'],
      ],
    );
  });

  test('without a VMI the VM spec rules, and the hint fills an empty guest_os only', () => {
    const checker = new ConvergenceChecker();
    checker.recordInitial([row('a')]);
    checker.observe(runningVmi); // it ran once and reported Fedora
    const stopped = vm({ name: 'a', cpu: { sockets: 2 }, memory: '4Gi', printableStatus: 'Stopped', osHint: 'fedora' });
    const ok = checker.check({ vms: [stopped], vmis: [] }, [
      row('a', { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 4096, guest_os: 'Fedora Linux 41' }),
    ]);
    assert.equal(ok.divergences.length, 0, describeDivergences(ok));
    const hinted = checker.check({ vms: [stopped], vmis: [] }, [row('a', { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 4096, guest_os: 'fedora' })]);
    assert.equal(hinted.divergences.length, 0, describeDivergences(hinted));
    const empty = checker.check({ vms: [stopped], vmis: [] }, [row('a', { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 4096, guest_os: null })]);
    assert.deepEqual(empty.divergences.map((d) => [d.field, d.expected]), [['guest_os', 'fedora']]);
    const invented = checker.check({ vms: [stopped], vmis: [] }, [row('a', { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 4096, guest_os: 'Windows' })]);
    assert.deepEqual(invented.divergences.map((d) => d.field), ['guest_os']);
  });

  test('a kept value must be one some object gave, or the initial one', () => {
    const checker = new ConvergenceChecker();
    checker.recordInitial([row('b', { cpu_count: 16 })]);
    checker.observe(vmi({ name: 'b', cpu: { sockets: 3 } }));
    const bare = vm({ name: 'b', printableStatus: 'Stopped' });
    delete bare.spec.template.spec.domain.resources; // no cpu, no memory in the spec
    for (const cpu of [null, 16, 3]) {
      const r = checker.check({ vms: [bare], vmis: [] }, [row('b', { status: 'POWERED_OFF', cpu_count: cpu, memory_mb: cpu === 3 ? 2048 : null })]);
      assert.equal(r.divergences.length, 0, `${cpu}: ${describeDivergences(r)}`);
    }
    const r = checker.check({ vms: [bare], vmis: [] }, [row('b', { status: 'POWERED_OFF', cpu_count: 7 })]);
    assert.deepEqual(r.divergences.map((d) => [d.field, d.actual]), [['cpu_count', 7]]);
  });

  test('a VM gone from the cluster must read DELETED once it was seen', () => {
    const checker = new ConvergenceChecker();
    checker.recordInitial([row('a')]);
    checker.observe(runningVm);
    assert.equal(checker.check({ vms: [], vmis: [] }, [row('a', { status: 'DELETED' })]).divergences.length, 0);
    const stale = checker.check({ vms: [], vmis: [] }, [row('a', { status: 'POWERED_ON' })]);
    assert.deepEqual(stale.divergences.map((d) => [d.field, d.actual]), [['status', 'POWERED_ON']]);
    const fold = new EventFold();
    fold.apply(ev('DELETED', runningVm));
    const deleted = new ConvergenceChecker().check(fold.truth(), [row('a', { status: 'STOPPED' })]);
    assert.deepEqual(deleted.divergences.map((d) => [d.field, d.expected]), [['status', 'DELETED']]);
  });

  test('rows of other VMs, and retired rows, are not judged', () => {
    const r = new ConvergenceChecker().check({ vms: [runningVm], vmis: [] }, [
      row('zzz', { status: 'WHATEVER' }),
      row('a', { status: 'POWERED_OFF', deleted_at: new Date() }),
    ]);
    assert.equal(r.divergences.length, 0);
    assert.equal(r.rowsChecked, 1);
    assert.equal(r.rowsMatched, 0);
  });
});

describe('checker against the SQL engine', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('convergence');
  });
  after(async () => {
    await db?.drop();
  });

  test('the quantity grammar agrees with vm_sync.parse_quantity', async () => {
    const inputs = ['4Gi', '1.5Gi', '1e9', '500m', '1E', '1E3', '.5', '5.', '+1Ki', '-2Mi', 'Gi', '1gi', '1K', '1e1.5', '1e', '', '1 Gi', '12345678901234567890123456789Ei', '7e-5', '0.000001Ki', '1e-17', '1500000000000000000000e-21', '4294967296000000000000000e-17', '1e-999', '-3E-40'];
    const rows = await db.query<{ q: string; v: string | null }>(
      `select q, trim_scale(vm_sync.parse_quantity(q))::text as v from unnest($1::text[]) as q`,
      [inputs],
    );
    for (const r of rows) assert.equal(exact(r.q), r.v, `quantity ${JSON.stringify(r.q)}`);
  });

  test('a realistic batch ingested converges by the checker', async () => {
    const names = ['r1', 'r2', 'r3', 'r4', 'r5'];
    const ins = vmsRowsSql(names.map((name) => ({ namespace: 'default', name })));
    await db.query(ins.sql, ins.params);
    const events = [
      ev('ADDED', vm({ name: 'r1', cpu: { sockets: 2, threads: 2 }, memory: '3Gi', printableStatus: 'Running', osHint: 'rhel9', rv: 1 })),
      ev('ADDED', vmi({ name: 'r1', cpu: { sockets: 2, cores: 0, threads: 2 }, memory: '3Gi', guestOS: {}, rv: 2 })),
      ev('ADDED', vm({ name: 'r2', memory: '1500M', printableStatus: 'ErrImagePull', rv: 3 })),
      ev('ADDED', vm({ name: 'r3', cpu: { cores: 8 }, memory: '16Gi', printableStatus: 'Stopped', rv: 4 })),
      ev('ADDED', vmi({ name: 'r3-abcde', owner: 'r3', cpu: { sockets: 1, cores: 6 }, memory: '12Gi', guestOS: { id: 'ubuntu' }, rv: 5 })),
      ev('DELETED', vmi({ name: 'r3-abcde', owner: 'r3', cpu: { sockets: 1, cores: 6 }, memory: '12Gi', guestOS: { id: 'ubuntu' }, rv: 6 })),
      ev('ADDED', vm({ name: 'r4', memory: '2Gi', rv: 7 })),
      ev('DELETED', vm({ name: 'r4', memory: '2Gi', rv: 8 })),
      ev('ADDED', vm({ name: 'r5', memory: 'lots', printableStatus: 'Paused', rv: 9 })),
    ];
    const checker = new ConvergenceChecker();
    checker.recordInitial(await db.query<VmsRow>(VMS_ROWS_SQL));
    const fold = new EventFold();
    for (const e of events) {
      fold.apply(e);
      checker.observe(e.object);
    }
    await db.query('select vm_sync.ingest($1::jsonb)', [JSON.stringify(events)]);
    const report = checker.check(fold.truth(), await db.query<VmsRow>(VMS_ROWS_SQL));
    assert.equal(report.divergences.length, 0, describeDivergences(report));
    assert.equal(report.rowsMatched, 5);
    // And it is not vacuous: corrupt one row behind the sync's back.
    await db.query(`update public.vms set memory_mb = memory_mb + 1 where vm_name = 'r2'`);
    const after = checker.check(fold.truth(), await db.query<VmsRow>(VMS_ROWS_SQL));
    assert.deepEqual(after.divergences.map((d) => [d.vm_name, d.field]), [['r2', 'memory_mb']]);
  });
});
