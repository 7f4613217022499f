// Staging derives a VM or VMI through vm_sync.derive_vm_plain / derive_vmi_plain when every value the
// object holds is plain, and through derive_vm / derive_vmi otherwise. The plain path must never give
// another answer: for any object it either gives up (NULL) or returns exactly what derive_vm /
// derive_vmi return, problems included. Checked on generated objects whose fields mix plain values
// with every shape the contract rejects or reads specially.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { CENTOS9, vm, vmi } from '../helpers/objects.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase('derive_plain');
});
after(async () => {
  await db.drop();
});

const quantity = fc.oneof(
  fc.constantFrom('4Gi', '4096Mi', '1Gi', '512Mi', '1Ki', '1048576', '1048575', '0', '0Gi', '2', '500m', '1500m', '0m',
    '1.5Gi', '2G', '1e9', '1E', '-1Gi', '+2Gi', 'Gi', '1gi', ' 1Gi', '1Gi\n', '9999999999999Ti', '2147483648Mi',
    '2147483647Mi', '3000000000', '999999999', '1000000000', '', '١Gi'),
  fc.integer({ min: -3, max: 5000 }).map((n) => `${n}Mi`),
  fc.integer({ min: -2, max: 64 }),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -10, max: 1e12 }),
  fc.constantFrom(null, true, [], {}, ['4Gi'], { value: '4Gi' }),
);
const factor = fc.oneof(
  fc.integer({ min: 0, max: 8 }),
  fc.constantFrom(-1, 1.5, 2.0000001, 1e9, 999999999, 2147483648, 65536, null, '2', true, [2], {}),
);
const topology = fc.oneof(
  fc.record({ sockets: factor, cores: factor, threads: factor }, { requiredKeys: [] }),
  fc.record({ cores: factor, maxSockets: factor, model: fc.constant('host-passthrough') }, { requiredKeys: ['cores'] }),
  fc.constantFrom(null, 4, '4', [], {}),
);
const text = fc.oneof(
  fc.constantFrom('rhel9', 'Red Hat Enterprise Linux 9.4 (Plow)', 'CentOS Stream', '9', 'centos', '', '   ', ' padded ',
    'tab\there', 'nul\u0001x', 'bad\uFFFDchar', 'x'.repeat(255), 'y'.repeat(256), ` ${'z'.repeat(254)} `, 'é'.repeat(200)),
  fc.string({ maxLength: 12 }),
  fc.constantFrom(null, 7, true, ['rhel'], { name: 'rhel' }),
);
const name = fc.oneof(
  fc.constantFrom('u1.medium', 'cx1.large', '', 'n'.repeat(253), 'n'.repeat(254), 'rev-1'),
  fc.constantFrom(null, 3, ['a'], {}),
);
const itKind = fc.constantFrom(undefined, null, '', 'VirtualMachineInstancetype', 'virtualmachineclusterinstancetypes',
  'VirtualMachineClusterInstancetype', 'Instancetype', 5);

/** A field at a path only when the generator chose to put one there. */
function maybe<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(arb, { nil: undefined, freq: 2 });
}

function put(target: Record<string, any>, path: string[], value: unknown): void {
  if (value === undefined) return;
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null || Array.isArray(node[key])) node[key] = {};
    node = node[key];
  }
  node[path[path.length - 1]!] = value;
}

const vmArb = fc.record({
  base: fc.record({ cores: fc.integer({ min: 1, max: 16 }), memory: fc.constantFrom('2Gi', '8Gi', '16384Mi'),
    printableStatus: fc.constantFrom('Running', 'Stopped', 'Migrating', undefined) }),
  cpu: maybe(topology), limitsCpu: maybe(quantity), requestsCpu: maybe(quantity),
  guest: maybe(quantity), requestsMemory: maybe(quantity), limitsMemory: maybe(quantity),
  osAnnotation: maybe(text), templateOs: maybe(text), preference: maybe(text),
  instancetype: maybe(fc.oneof(fc.record({ name, kind: itKind, revisionName: maybe(name) }, { requiredKeys: [] }),
    fc.constantFrom(null, 'u1.medium', []))),
  revisionRef: maybe(name), printable: maybe(fc.constantFrom('Running', 'Bogus', '', 3, null, {})),
  deleting: fc.boolean(), runStrategy: maybe(fc.constantFrom('Always', 'Halted', 'RerunOnFailure', 7)),
}).map((g) => {
  const o: Record<string, any> = vm({ namespace: 'vdc-plain', name: 'gen', cores: g.base.cores, memory: g.base.memory,
    printableStatus: g.base.printableStatus });
  const dom = ['spec', 'template', 'spec', 'domain'];
  put(o, [...dom, 'cpu'], g.cpu);
  put(o, [...dom, 'resources', 'limits', 'cpu'], g.limitsCpu);
  put(o, [...dom, 'resources', 'requests', 'cpu'], g.requestsCpu);
  put(o, [...dom, 'memory', 'guest'], g.guest);
  put(o, [...dom, 'resources', 'requests', 'memory'], g.requestsMemory);
  put(o, [...dom, 'resources', 'limits', 'memory'], g.limitsMemory);
  put(o, ['metadata', 'annotations', 'vm.kubevirt.io/os'], g.osAnnotation);
  put(o, ['spec', 'template', 'metadata', 'annotations', 'vm.kubevirt.io/os'], g.templateOs);
  put(o, ['spec', 'preference', 'name'], g.preference);
  put(o, ['spec', 'instancetype'], g.instancetype);
  put(o, ['status', 'instancetypeRef', 'controllerRevisionRef', 'name'], g.revisionRef);
  put(o, ['status', 'printableStatus'], g.printable);
  put(o, ['spec', 'runStrategy'], g.runStrategy);
  if (g.deleting) put(o, ['metadata', 'deletionTimestamp'], '2026-01-01T00:00:00Z');
  return o;
});

const vmiArb = fc.record({
  current: maybe(topology), cpu: maybe(topology),
  guestCurrent: maybe(quantity), guest: maybe(quantity), requests: maybe(quantity),
  info: maybe(fc.oneof(
    fc.record({ prettyName: maybe(text), name: maybe(text), version: maybe(text), id: maybe(text) }, { requiredKeys: [] }),
    fc.constantFrom(null, 'rhel', [], CENTOS9 as unknown))),
  owner: fc.constantFrom<unknown>(undefined, null, { name: 'gen-vm' }, 'x', [{ kind: 'VirtualMachine', apiVersion: 'kubevirt.io/v1', name: 5 }]),
}).map((g) => {
  const o: Record<string, any> = vmi({ namespace: 'vdc-plain', name: 'gen-vmi', cores: 2, memory: '2Gi' });
  put(o, ['status', 'currentCPUTopology'], g.current);
  put(o, ['spec', 'domain', 'cpu'], g.cpu);
  put(o, ['status', 'memory', 'guestCurrent'], g.guestCurrent);
  put(o, ['spec', 'domain', 'memory', 'guest'], g.guest);
  put(o, ['spec', 'domain', 'resources', 'requests', 'memory'], g.requests);
  put(o, ['status', 'guestOSInfo'], g.info);
  if (g.owner === null || typeof g.owner === 'string') put(o, ['metadata', 'ownerReferences'], g.owner);
  else if (Array.isArray(g.owner)) put(o, ['metadata', 'ownerReferences'], g.owner);
  else if (g.owner) put(o, ['metadata', 'ownerReferences'], [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', ...g.owner, uid: 'u' }]);
  return o;
});

/** Objects where the plain path answered differently from the full one, and how many it answered. */
async function compare(kind: 'vm' | 'vmi', objects: unknown[]): Promise<{ mismatches: unknown[]; plain: number }> {
  const [r] = await db.query<{ mismatches: unknown[] | null; plain: number }>(
    `select jsonb_agg(jsonb_build_object('object', o, 'plain', p, 'full', f)) filter (where p is not null and p <> f) as mismatches,
            count(p)::int as plain
       from jsonb_array_elements($1::jsonb) as o
      -- As jsonb: a composite IS NOT NULL only when every one of its fields is.
      cross join lateral (select to_jsonb(vm_sync.derive_${kind}_plain(o)) as p, to_jsonb(vm_sync.derive_${kind}(o)) as f) x`,
    [JSON.stringify(objects)]);
  return { mismatches: r!.mismatches ?? [], plain: r!.plain };
}

describe('the plain derivation', () => {
  it('takes the objects of a well-formed cluster (it is the path they go through)', async () => {
    const vms = [vm({ namespace: 'n', name: 'a', cores: 2, memory: '4Gi', printableStatus: 'Running', osHint: 'rhel9' }),
                 vm({ namespace: 'n', name: 'b', sockets: 2, cores: 1, threads: 2, memory: '8192Mi', runStrategy: 'Always' })];
    const vmis = [vmi({ namespace: 'n', name: 'a', cores: 4, memory: '4Gi', guestOSInfo: CENTOS9 }),
                  vmi({ namespace: 'n', name: 'b', owner: { name: 'b' }, cores: 2, memory: '1Gi' })];
    const a = await compare('vm', vms);
    const b = await compare('vmi', vmis);
    assert.deepEqual([a.mismatches, b.mismatches], [[], []]);
    assert.deepEqual([a.plain, b.plain], [2, 2]);
  });

  it('never gives a VM another result than derive_vm', async () => {
    let plain = 0;
    await fc.assert(fc.asyncProperty(fc.array(vmArb, { minLength: 20, maxLength: 60 }), async (objects) => {
      const r = await compare('vm', objects);
      plain += r.plain;
      assert.deepEqual(r.mismatches, []);
    }), { numRuns: 40 });
    assert.ok(plain > 0, 'some generated VMs were plain');
  });

  it('never gives a VMI another result than derive_vmi', async () => {
    let plain = 0;
    await fc.assert(fc.asyncProperty(fc.array(vmiArb, { minLength: 20, maxLength: 60 }), async (objects) => {
      const r = await compare('vmi', objects);
      plain += r.plain;
      assert.deepEqual(r.mismatches, []);
    }), { numRuns: 40 });
    assert.ok(plain > 0, 'some generated VMIs were plain');
  });
});
