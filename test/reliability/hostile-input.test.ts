// Hostile input through vm_sync.ingest: generated VM and VMI objects and events with wrong types,
// missing parts, huge strings, unicode, negative and enormous numbers, malformed quantities and
// unknown kinds, mixed with good events in one batch. The call never throws, no constraint breaks,
// the rows are what the convergence checker's own rules say, and every unusable value is in
// vm_sync.rejects with a reason. Then size (50 MB, 100,000 events) and concurrency.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { toJsonb } from '../../src/watcher/events.js';
import {
  ConvergenceChecker,
  EventFold,
  VM,
  VMI,
  deriveVm,
  deriveVmi,
  describeDivergences,
  type Json,
  type VmsRow,
} from '../helpers/convergence.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { ev, vm, vmi, vmsRowsSql, type Obj } from './objects.js';

const SEED = Number(process.env.FC_SEED ?? 20241126);
const RUNS = Number(process.env.FC_RUNS ?? 150);

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase('hostile');
});
after(async () => {
  await db?.drop();
});

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const NAMES = ['a', 'b', 'c', 'd'];

const hugeString = fc.integer({ min: 256, max: 70_000 }).map((n) => 'x'.repeat(n));
const weirdText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('', ' ', '   ', 'Fedora\n41', 'tab\there', '\u0085next', 'bell\u0007', 'repl\uFFFDaced', 'null\u0000byte', '\u202Eevil', 'Ωmega 日本語 🚀', ' padded '),
  hugeString,
);
const anyJson: fc.Arbitrary<Json> = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>;
const enormous = fc.constantFrom(2 ** 31, 2 ** 31 - 1, 2 ** 53, -(2 ** 53), 1e21, 1e300, -1e300, Number.MAX_VALUE, 0.5, -0.5, 1e-7);

/** Quantities: good ones, malformed ones, and values of the wrong type. */
const quantity: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('4Gi', '4096Mi', '2G', '1.5Gi', '1e9', '4294967296', '512Mi', '1Ki', '100M', '.5Gi', '3E', '1e-3', '500m', '2', '7Ti') },
  {
    weight: 3,
    arbitrary: fc.constantFrom('Gi', '1gi', '1K', '1e1.5', '1e', '', ' 1Gi', '1 Gi', '-1Gi', '0', '0Mi', '1e999999999', '1e-999', '0x10', '1,5Gi', '∞', 'NaN', '1GiB', '9'.repeat(129), '1E20Ei'),
  },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: -10, max: 100_000 }), fc.constantFrom('', 'Ki', 'Mi', 'Gi', 'm', 'k', 'M', 'G', 'e3', 'E-2')).map(([n, s]) => `${n}${s}`) },
  { weight: 2, arbitrary: fc.oneof(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), enormous) },
  { weight: 1, arbitrary: fc.oneof(fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 })) },
  { weight: 1, arbitrary: weirdText },
);

/** A topology factor: usually a small count, sometimes anything. */
const factor: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 8 }) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.oneof(fc.integer({ min: -5, max: -1 }), fc.double({ min: 0.1, max: 7.9, noNaN: true }), enormous, fc.constant(65536)) },
  { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 3 }), fc.boolean(), fc.constant(null), fc.constant([2])) },
);
const topology: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ sockets: factor, cores: factor, threads: factor }, { requiredKeys: [] }).map(dropUndefined) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.oneof(fc.constant({ model: 'host-model' }), fc.constant('4'), fc.constant([1, 2]), fc.constant(null), fc.integer()) },
);
const guestOSInfo: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ prettyName: fc.option(weirdText, { nil: undefined }), name: fc.option(weirdText, { nil: undefined }), version: fc.option(weirdText, { nil: undefined }), id: fc.option(weirdText, { nil: undefined }) }, { requiredKeys: [] }).map(dropUndefined) },
  { weight: 2, arbitrary: fc.constantFrom({}, { prettyName: 'Fedora Linux 41 (Cloud Edition)' }, { name: 'Ubuntu', version: '24.04' }, { id: 'rhel' }) },
  { weight: 1, arbitrary: fc.oneof(fc.constant(undefined), fc.constant(null), fc.constant('Fedora'), fc.record({ prettyName: fc.oneof(fc.integer(), fc.boolean(), fc.constant(['x'])) })) },
);
const printableStatus: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom('Running', 'Stopped', 'Paused', 'Migrating', 'Starting', 'Stopping', 'Terminating', 'Provisioning', 'ErrImagePull', 'DataVolumeError', 'Unknown', 'WaitingForReceiver'),
  fc.constantFrom('', 'running', 'Exploded', '  '),
  fc.constant(undefined),
  fc.oneof(fc.integer(), fc.boolean(), fc.constant({ phase: 'Running' }), fc.constant(null)),
  weirdText,
);
const osHint: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.constantFrom('fedora', 'rhel9', 'windows2k22', 'ubuntu') },
  { weight: 1, arbitrary: fc.oneof(weirdText, fc.integer(), fc.constant(null), fc.constant({ os: 'x' })) },
);
/** metadata.name / namespace: usually from the fixed pool (so events meet rows), sometimes broken. */
const nameOf = (pool: fc.Arbitrary<string>): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 12, arbitrary: pool },
    { weight: 1, arbitrary: fc.oneof(fc.constant(undefined), fc.constant(''), fc.constant(null), fc.integer(), fc.constant('n'.repeat(254)), fc.constant(['a']), weirdText) },
  );

interface Knobs {
  ns: string;
}

function dropUndefined<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

function setPath(obj: Obj, path: string[], value: unknown): void {
  if (value === undefined) return;
  let cur: Obj = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null || Array.isArray(cur[k])) cur[k] = {};
    cur = cur[k];
  }
  cur[path.at(-1)!] = value;
}

/** A VirtualMachine, any part of which may be missing or wrong. */
const hostileVm = (k: Knobs): fc.Arbitrary<Obj> =>
  fc
    .record({
      name: nameOf(fc.constantFrom(...NAMES)),
      namespace: nameOf(fc.constant(k.ns)),
      uid: fc.oneof(fc.constantFrom('u1', 'u2'), fc.constant(undefined), fc.integer()),
      rv: fc.oneof(fc.integer({ min: 1, max: 50 }).map(String), fc.constant(undefined), fc.constant('abc'), fc.integer()),
      apiVersion: fc.oneof({ weight: 8, arbitrary: fc.constant('kubevirt.io/v1') }, { weight: 1, arbitrary: fc.constantFrom('kubevirt.io/v1alpha3', 'kubevirt.io/v2', 'v1', null) }),
      cpu: topology,
      limitsCpu: fc.option(quantity, { nil: undefined }),
      requestsCpu: fc.option(quantity, { nil: undefined }),
      guest: fc.option(quantity, { nil: undefined }),
      requestsMemory: fc.option(quantity, { nil: undefined }),
      limitsMemory: fc.option(quantity, { nil: undefined }),
      hint: osHint,
      templateHint: osHint,
      printableStatus,
      runStrategy: fc.oneof(fc.constantFrom('Always', 'Halted', 'Manual', 'RerunOnFailure', 'Once'), fc.constant(undefined), fc.integer()),
      running: fc.oneof(fc.boolean(), fc.constant(undefined), fc.constant('true')),
      deletionTimestamp: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('2024-11-26T10:00:00Z', null, 0) }),
      mangle: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('spec', 'template', 'domain', 'resources', 'metadata', 'status') }),
      junk: fc.option(anyJson, { nil: undefined }),
    })
    .map((r) => {
      const o: Obj = { kind: VM, metadata: {} };
      if (r.apiVersion !== null) o.apiVersion = r.apiVersion;
      setPath(o, ['metadata', 'name'], r.name);
      setPath(o, ['metadata', 'namespace'], r.namespace);
      setPath(o, ['metadata', 'uid'], r.uid);
      setPath(o, ['metadata', 'resourceVersion'], r.rv);
      setPath(o, ['metadata', 'annotations', 'vm.kubevirt.io/os'], r.hint);
      setPath(o, ['metadata', 'deletionTimestamp'], r.deletionTimestamp);
      setPath(o, ['spec', 'runStrategy'], r.runStrategy);
      setPath(o, ['spec', 'running'], r.running);
      setPath(o, ['spec', 'template', 'metadata', 'annotations', 'vm.kubevirt.io/os'], r.templateHint);
      const d = ['spec', 'template', 'spec', 'domain'];
      setPath(o, [...d, 'cpu'], r.cpu);
      setPath(o, [...d, 'resources', 'limits', 'cpu'], r.limitsCpu);
      setPath(o, [...d, 'resources', 'requests', 'cpu'], r.requestsCpu);
      setPath(o, [...d, 'memory', 'guest'], r.guest);
      setPath(o, [...d, 'resources', 'requests', 'memory'], r.requestsMemory);
      setPath(o, [...d, 'resources', 'limits', 'memory'], r.limitsMemory);
      setPath(o, ['status', 'printableStatus'], r.printableStatus);
      setPath(o, ['spec', 'template', 'spec', 'junk'], r.junk);
      mangle(o, r.mangle);
      return o;
    });

/** A VirtualMachineInstance, any part of which may be missing or wrong. */
const hostileVmi = (k: Knobs): fc.Arbitrary<Obj> =>
  fc
    .record({
      name: nameOf(fc.constantFrom(...NAMES, 'a-x1y2z', 'orphan')),
      namespace: nameOf(fc.constant(k.ns)),
      owner: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...NAMES).map((n) => [{ apiVersion: 'kubevirt.io/v1', kind: VM, name: n, uid: 'u1' }]) },
        { weight: 2, arbitrary: fc.constant(undefined) },
        {
          weight: 2,
          arbitrary: fc.constantFrom<Json>(
            [{ apiVersion: 'kubevirt.io/v1', kind: 'ReplicaSet', name: 'b' }],
            [{ apiVersion: 'kubevirt.io/v2', kind: VM, name: 'c' }],
            [{ apiVersion: 'kubevirt.io/v1', kind: VM, name: '' }],
            [{ apiVersion: 'kubevirt.io/v1', kind: VM, name: 42 }],
            [null, 'x', { apiVersion: 'kubevirt.io/v1', kind: VM, name: 'd' }],
            { apiVersion: 'kubevirt.io/v1', kind: VM, name: 'a' },
            'a',
          ),
        },
      ),
      uid: fc.oneof(fc.constantFrom('i1', 'i2'), fc.constant(undefined)),
      rv: fc.oneof(fc.integer({ min: 1, max: 50 }).map(String), fc.constant(undefined)),
      current: topology,
      specCpu: topology,
      guestCurrent: fc.option(quantity, { nil: undefined }),
      guest: fc.option(quantity, { nil: undefined }),
      requestsMemory: fc.option(quantity, { nil: undefined }),
      guestOSInfo,
      mangle: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('spec', 'status', 'domain', 'metadata') }),
    })
    .map((r) => {
      const o: Obj = { apiVersion: 'kubevirt.io/v1', kind: VMI, metadata: {} };
      setPath(o, ['metadata', 'name'], r.name);
      setPath(o, ['metadata', 'namespace'], r.namespace);
      setPath(o, ['metadata', 'uid'], r.uid);
      setPath(o, ['metadata', 'resourceVersion'], r.rv);
      setPath(o, ['metadata', 'ownerReferences'], r.owner);
      setPath(o, ['status', 'currentCPUTopology'], r.current);
      setPath(o, ['spec', 'domain', 'cpu'], r.specCpu);
      setPath(o, ['status', 'memory', 'guestCurrent'], r.guestCurrent);
      setPath(o, ['spec', 'domain', 'memory', 'guest'], r.guest);
      setPath(o, ['spec', 'domain', 'resources', 'requests', 'memory'], r.requestsMemory);
      setPath(o, ['status', 'guestOSInfo'], r.guestOSInfo);
      mangle(o, r.mangle);
      return o;
    });

/** Replaces one subtree with something of the wrong type. */
function mangle(o: Obj, where: string | undefined): void {
  const wrong = ['a string', 42, [1, 2, 3], true];
  const pick = wrong[(where?.length ?? 0) % wrong.length];
  if (where === 'spec') o.spec = pick;
  else if (where === 'template' && o.spec && typeof o.spec === 'object') o.spec.template = pick;
  else if (where === 'domain') {
    if (o.spec?.template?.spec) o.spec.template.spec.domain = pick;
    else if (o.spec?.domain) o.spec.domain = pick;
  } else if (where === 'resources' && o.spec?.template?.spec?.domain) o.spec.template.spec.domain.resources = pick;
  else if (where === 'metadata') o.metadata = pick;
  else if (where === 'status') o.status = pick;
}

/** Any event: good-typed, bad-typed, bookmarks, non-objects, unknown kinds. */
const hostileEvent = (k: Knobs): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom('ADDED', 'MODIFIED', 'DELETED'), fc.oneof(hostileVm(k), hostileVmi(k))).map(([type, object]) => ({ type, object })) },
    { weight: 1, arbitrary: fc.constantFrom('added', 'ERROR', '', 'BOOKMARK', 7, null).map((type) => ({ type, object: { kind: VM, apiVersion: 'kubevirt.io/v1', metadata: { name: 'a', namespace: k.ns, resourceVersion: '9' } } })) },
    { weight: 1, arbitrary: fc.constantFrom(VM, 'Pod', 'virtualmachine', 'VirtualMachineInstanceMigration', '').map((kind) => ({ type: 'ADDED', object: { kind, apiVersion: 'kubevirt.io/v1', metadata: { name: 'b', namespace: k.ns } } })) },
    { weight: 1, arbitrary: fc.oneof(anyJson, fc.record({ type: fc.constant('ADDED'), object: anyJson })) },
  );

/** Good events: well-formed objects with valid values, by the builders real tests use. */
const goodEvent = (k: Knobs): fc.Arbitrary<unknown> =>
  fc
    .record({
      vmi: fc.boolean(),
      name: fc.constantFrom(...NAMES),
      rv: fc.integer({ min: 1, max: 50 }),
      sockets: fc.integer({ min: 1, max: 4 }),
      cores: fc.integer({ min: 1, max: 4 }),
      mem: fc.constantFrom('1Gi', '2Gi', '3072Mi', '4G', '1.5Gi'),
      status: fc.constantFrom('Running', 'Stopped', 'Paused'),
      os: fc.constantFrom('Fedora Linux 41', 'Ubuntu 24.04', 'Windows Server 2022'),
      deleted: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    })
    .map((r) =>
      r.vmi
        ? ev(r.deleted ? 'DELETED' : 'MODIFIED', vmi({ namespace: k.ns, name: r.name, uid: 'i1', rv: r.rv, cpu: { sockets: r.sockets, cores: r.cores }, memory: r.mem, guestOS: { prettyName: r.os } }))
        : ev('MODIFIED', vm({ namespace: k.ns, name: r.name, uid: 'u1', rv: r.rv, cpu: { sockets: r.sockets }, memory: r.mem, printableStatus: r.status })),
    );

// ---------------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------------

const EVENT_FIELDS = new Set(['event', 'type', 'object', 'kind', 'apiVersion', 'metadata.name', 'metadata.namespace', 'metadata.uid', 'metadata.resourceVersion']);

let runCounter = 0;

async function rowsIn(ns: string): Promise<VmsRow[]> {
  return db.query<VmsRow>(
    `select id, namespace, vm_name, status, cpu_count, memory_mb, guest_os, deleted_at from public.vms where namespace = $1 order by id`,
    [ns],
  );
}

/** One batch: ingest, then compare rows and rejects with what the TypeScript rules predict. */
async function checkBatch(ns: string, rawEvents: unknown[]): Promise<{ rejects: number; applied: number }> {
  // What the watcher sends: NULs become U+FFFD (jsonb cannot hold them). The SQL sees exactly this.
  const payload = toJsonb(rawEvents);
  const events = JSON.parse(payload) as unknown[];

  const ins = vmsRowsSql(NAMES.map((name) => ({ namespace: ns, name })));
  await db.query(ins.sql, ins.params);
  const checker = new ConvergenceChecker();
  checker.recordInitial(await rowsIn(ns));
  const fold = new EventFold();
  const expectedEventRejects: string[] = [];
  for (const e of events) {
    const { problem } = fold.apply(e);
    if (problem) expectedEventRejects.push(problem.field);
    else if (typeof e === 'object' && e && (e as Obj).type !== 'BOOKMARK') checker.observe((e as Obj).object);
  }
  // Value rejects are recorded for the objects that stand at the end of the batch (and are not deleted).
  const expectedValueRejects: string[] = [];
  for (const s of fold.staged.values()) {
    if (s.deleted) continue;
    const d = s.kind === VM ? deriveVm(s.object) : deriveVmi(s.object);
    for (const p of d.problems) expectedValueRejects.push(`${s.kind}/${s.namespace}/${s.name} ${p.field}`);
  }

  const [{ max }] = await db.query<{ max: string | null }>('select max(id)::text as max from vm_sync.rejects');
  const summary = (await db.query('select vm_sync.ingest($1::jsonb) as s', [payload]))[0].s;
  assert.equal(summary.events, events.length);

  const report = checker.check(fold.truth(), await rowsIn(ns));
  assert.equal(report.divergences.length, 0, describeDivergences(report));

  const rejects = await db.query<{ kind: string; namespace: string; name: string; field: string; reason: string; value: unknown }>(
    'select kind, namespace, name, field, reason, value from vm_sync.rejects where id > $1 order by id',
    [max ?? '0'],
  );
  for (const r of rejects) {
    assert.ok(r.reason && r.reason.length > 0, `reject without reason: ${JSON.stringify(r)}`);
    assert.ok(JSON.stringify(r.value ?? null).length < 1200 * 6, 'a stored offending value is clipped');
  }
  const gotEvent = rejects.filter((r) => EVENT_FIELDS.has(r.field)).map((r) => r.field).sort();
  const gotValue = rejects.filter((r) => !EVENT_FIELDS.has(r.field)).map((r) => `${r.kind}/${r.namespace}/${r.name} ${r.field}`).sort();
  assert.deepEqual(gotEvent, expectedEventRejects.sort(), 'event rejects');
  assert.deepEqual(gotValue, expectedValueRejects.sort(), 'value rejects');
  return { rejects: rejects.length, applied: report.valuesDetermined };
}

describe('generated hostile batches', () => {
  test(`never abort, converge, and record every unusable value (seed ${SEED}, ${RUNS} runs)`, async () => {
    let rejects = 0;
    let applied = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 2 ** 30 }).chain(() => {
          const k = { ns: `hostile-${process.pid}-${++runCounter}` };
          return fc.tuple(fc.constant(k.ns), fc.array(fc.oneof({ weight: 3, arbitrary: hostileEvent(k) }, { weight: 2, arbitrary: goodEvent(k) }), { minLength: 1, maxLength: 40 }));
        }),
        async ([ns, events]) => {
          const r = await checkBatch(ns, events);
          rejects += r.rejects;
          applied += r.applied;
        },
      ),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true },
    );
    assert.ok(rejects > RUNS, `the generators produce rejects (${rejects})`);
    assert.ok(applied > RUNS, `and values that apply (${applied})`);
  });

  test('a good event still applies beside every kind of garbage', async () => {
    const ns = `hostile-fixed-${process.pid}`;
    await checkBatch(ns, [
      42,
      'ADDED',
      null,
      [],
      { type: 'ADDED' },
      { type: 'ADDED', object: { kind: 'Pod', metadata: { name: 'a', namespace: ns } } },
      { type: 'ADDED', object: { kind: VM, metadata: { name: 'a' } } },
      { type: 'ADDED', object: { kind: VM, metadata: { name: 'b'.repeat(300), namespace: ns } } },
      ev('ADDED', vm({ namespace: ns, name: 'a', cpu: { sockets: 2, cores: 2 }, memory: '4Gi', printableStatus: 'Running', rv: 5 })),
      ev('ADDED', { ...vmi({ namespace: ns, name: 'a', memory: '2Gi' }), status: { currentCPUTopology: { sockets: -1 }, memory: { guestCurrent: '2 Gi' }, guestOSInfo: { prettyName: 'x'.repeat(5000) } } }),
      ev('ADDED', vm({ namespace: ns, name: 'b', memory: '1e999999999', printableStatus: 'Stopped', rv: 6 })),
    ]);
    const rows = await rowsIn(ns);
    const a = rows.find((r) => r.vm_name === 'a')!;
    assert.deepEqual([a.status, a.cpu_count, a.memory_mb, a.guest_os], ['POWERED_ON', 1, 2048, null]);
  });
});

// ---------------------------------------------------------------------------------------------
// Size and concurrency
// ---------------------------------------------------------------------------------------------

describe('size', () => {
  test('one 50 MB event: applies, and the giant value is rejected and clipped', async () => {
    const ns = 'huge';
    const ins = vmsRowsSql([{ namespace: ns, name: 'big' }]);
    await db.query(ins.sql, ins.params);
    const giant = 'A'.repeat(50 * 1024 * 1024);
    const events = [
      ev('ADDED', vm({ namespace: ns, name: 'big', cpu: { sockets: 3 }, memory: '6Gi', printableStatus: 'Running', rv: 1 })),
      ev('ADDED', vmi({ namespace: ns, name: 'big', cpu: { sockets: 4 }, memory: '8Gi', guestOS: { prettyName: giant, id: 'fedora' } })),
    ];
    const payload = JSON.stringify(events);
    assert.ok(payload.length > 50 * 1024 * 1024);
    const summary = (await db.query('select vm_sync.ingest($1::jsonb) as s', [payload]))[0].s;
    assert.equal(summary.staged, 2);
    const [row] = await rowsIn(ns);
    assert.deepEqual([row.status, row.cpu_count, row.memory_mb, row.guest_os], ['POWERED_ON', 4, 8192, 'fedora']);
    const [reject] = await db.query(`select field, octet_length(value::text) as size from vm_sync.rejects where namespace = $1`, [ns]);
    assert.equal(reject.field, 'status.guestOSInfo.prettyName');
    assert.ok(reject.size < 1100, `clipped to about 1 KiB (${reject.size})`);
    // The notification (under 8000 bytes) was sent: the change is in the feed.
    const [feed] = await db.query(`select changes from vm_sync.changes where namespace = $1`, [ns]);
    assert.equal(feed.changes.guest_os.new, 'fedora');
  });

  test('100,000 events in one call', { timeout: 300_000 }, async () => {
    const ns = 'many';
    const n = 25_000;
    const names = Array.from({ length: n }, (_, i) => `vm-${String(i).padStart(5, '0')}`);
    const ins = vmsRowsSql(names.map((name) => ({ namespace: ns, name })));
    await db.query(ins.sql, ins.params);
    const checker = new ConvergenceChecker();
    checker.recordInitial(await rowsIn(ns));
    const fold = new EventFold();
    const events: unknown[] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < n; i++) {
        const name = names[i]!;
        const e =
          round % 2 === 0
            ? ev(round === 0 ? 'ADDED' : 'MODIFIED', vm({ namespace: ns, name, rv: round * n + i + 1, cpu: { sockets: 1 + ((i + round) % 4) }, memory: `${1 + (i % 8)}Gi`, printableStatus: round === 0 ? 'Starting' : 'Running' }))
            : ev(round === 1 ? 'ADDED' : 'MODIFIED', vmi({ namespace: ns, name, rv: round * n + i + 1, cpu: { cores: 1 + (i % 3) }, memory: `${1 + ((i + round) % 8)}Gi`, guestOS: round === 3 ? { prettyName: `OS ${i % 7}` } : {} }));
        events.push(e);
        fold.apply(e);
        checker.observe(e.object);
      }
    }
    assert.equal(events.length, 100_000);
    // One call is bounded (vm_sync.settings ingest_max_events, 50,000 by default): a DBA who raises
    // the bound gets a call this big through.
    await db.query(`update vm_sync.settings set value = '100000' where name = 'ingest_max_events'`);
    // How fast is the benchmark's question; here only that it completes (the test's timeout guards a hang).
    const summary = (await db.query('select vm_sync.ingest($1::jsonb) as s', [JSON.stringify(events)]))[0].s;
    assert.equal(summary.events, 100_000);
    assert.equal(summary.vms_updated, n);
    const report = checker.check(fold.truth(), await rowsIn(ns));
    assert.equal(report.divergences.length, 0, describeDivergences(report));
    assert.equal(report.rowsMatched, n);
  });
});

describe('concurrency', () => {
  test('several sessions ingesting overlapping objects at once: no error, no deadlock, newest wins', async () => {
    const ns = 'concurrent';
    const names = Array.from({ length: 200 }, (_, i) => `c-${i}`);
    const ins = vmsRowsSql(names.map((name) => ({ namespace: ns, name })));
    await db.query(ins.sql, ins.params);
    const checker = new ConvergenceChecker();
    checker.recordInitial(await rowsIn(ns));
    const sessions = 6;
    const batchesPerSession = 8;
    // Every (session, batch) touches every VM and VMI with a resourceVersion unique across all of them.
    const newest = new Map<string, { rv: number; obj: Obj }>();
    const batches: unknown[][][] = [];
    for (let s = 0; s < sessions; s++) {
      batches.push([]);
      for (let b = 0; b < batchesPerSession; b++) {
        const events = names.flatMap((name, i) => {
          const rv = 1 + ((b * sessions + s) * names.length + i) * 2;
          const v = vm({ namespace: ns, name, uid: 'u', rv, cpu: { sockets: 1 + ((s + b + i) % 5) }, memory: `${1 + ((s * b + i) % 9)}Gi`, printableStatus: ['Running', 'Stopped', 'Paused'][(s + i) % 3] });
          const m = vmi({ namespace: ns, name, uid: 'i', rv: rv + 1, cpu: { cores: 1 + ((s + i) % 6) }, memory: `${1 + ((b + i) % 7)}Gi`, guestOS: { prettyName: `os-${s}-${b}` } });
          for (const o of [v, m]) {
            checker.observe(o);
            const key = `${o.kind}/${name}`;
            const r = Number(o.metadata.resourceVersion);
            if ((newest.get(key)?.rv ?? 0) < r) newest.set(key, { rv: r, obj: o });
          }
          return [ev('MODIFIED', v), ev('MODIFIED', m)];
        });
        batches[s]!.push(events);
      }
    }
    const pool = db.pool;
    await Promise.all(
      batches.map(async (mine) => {
        const client = await pool.connect();
        try {
          for (const events of mine) await client.query('select vm_sync.ingest($1::jsonb)', [JSON.stringify(events)]);
        } finally {
          client.release();
        }
      }),
    );
    const truth = { vms: [...newest.values()].filter((x) => x.obj.kind === VM).map((x) => x.obj), vmis: [...newest.values()].filter((x) => x.obj.kind === VMI).map((x) => x.obj) };
    const report = checker.check(truth, await rowsIn(ns));
    assert.equal(report.divergences.length, 0, describeDivergences(report));
    assert.equal(report.rowsMatched, names.length);
  });
});
