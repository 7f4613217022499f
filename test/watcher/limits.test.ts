// Bounds on one object: depth and size measured without recursion, an object over them cut down to
// the contract's fields, and a watch line too large to hold skimmed as it streams.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stringifyDeep } from '../../src/lib/json.js';
import { prepareEvent } from '../../src/watcher/events.js';
import { LineSkimmer } from '../../src/watcher/line-skim.js';
import { DEFAULT_LIMITS, measure, trimToContract } from '../../src/watcher/limits.js';

function deep(n: number): unknown {
  return JSON.parse('['.repeat(n) + ']'.repeat(n));
}

function vm(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'web', namespace: 'ns', uid: 'u1', resourceVersion: '42', annotations: { 'vm.kubevirt.io/os': 'fedora', other: 'x' }, labels: { a: 'b' } },
    spec: {
      runStrategy: 'Always',
      instancetype: { kind: 'VirtualMachineClusterInstancetype', name: 'u1.medium' },
      template: { metadata: { annotations: { 'vm.kubevirt.io/os': 'rhel9' } }, spec: { domain: { cpu: { sockets: 2, cores: 2 }, memory: { guest: '4Gi' }, devices: { disks: [1, 2, 3] } } } },
      ...extra,
    },
    status: { printableStatus: 'Running', instancetypeRef: { controllerRevisionRef: { name: 'rev-1' } }, conditions: [{ type: 'Ready' }] },
  };
}

describe('object limits', () => {
  test('measure: depth and size of a normal object, and of a 100,000-deep one without a stack overflow', () => {
    const m = measure(vm(), DEFAULT_LIMITS);
    assert.equal(m.over, null);
    assert.ok(m.bytes > 300 && m.bytes < 2 * JSON.stringify(vm()).length, `bytes ${m.bytes}`);
    assert.equal(m.depth, 7);
    assert.equal(measure(deep(100_000), DEFAULT_LIMITS).over, 'depth');
    assert.equal(measure({ s: 'x'.repeat(3 * 1024 * 1024) }, DEFAULT_LIMITS).over, 'size');
    assert.equal(measure({ s: '\u00e9'.repeat(1024 * 1024 + 10) }, DEFAULT_LIMITS).over, 'size', 'size counts UTF-8 bytes');
  });

  test('trimToContract keeps exactly the fields the contract reads, and drops an oversized one', () => {
    const t = trimToContract(vm({ garbage: deep(6000) })) as ReturnType<typeof vm>;
    assert.deepEqual(t, {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'web', namespace: 'ns', uid: 'u1', resourceVersion: '42', annotations: { 'vm.kubevirt.io/os': 'fedora' } },
      spec: {
        runStrategy: 'Always',
        instancetype: { kind: 'VirtualMachineClusterInstancetype', name: 'u1.medium' },
        template: { metadata: { annotations: { 'vm.kubevirt.io/os': 'rhel9' } }, spec: { domain: { cpu: { sockets: 2, cores: 2 }, memory: { guest: '4Gi' } } } },
      },
      status: { printableStatus: 'Running', instancetypeRef: { controllerRevisionRef: { name: 'rev-1' } } },
    });
    const huge = vm();
    (huge.status as Record<string, unknown>).guestOSInfo = { prettyName: 'x'.repeat(100_000) };
    assert.equal((trimToContract(huge).status as Record<string, unknown>).guestOSInfo, undefined);
  });

  test('prepareEvent: a deep object becomes its contract fields plus a depth reject; a normal one passes untouched', () => {
    const e = prepareEvent('MODIFIED', vm({ garbage: deep(6000) }) as never, 'VirtualMachine');
    assert.ok(e.reject);
    assert.equal(e.reject.field, 'object');
    assert.equal(e.reject.name, 'web');
    assert.ok((e.reject.value as { depth: number }).depth > 100);
    assert.match(e.reject.reason, /deeper than 100/);
    assert.equal((e.object.spec as Record<string, unknown>).garbage, undefined);
    assert.doesNotThrow(() => JSON.stringify(e.object));
    const ok = prepareEvent('MODIFIED', vm() as never, 'VirtualMachine');
    assert.equal(ok.reject, undefined);
    assert.deepEqual(ok.object, vm());
  });
});

describe('line skimmer', () => {
  const cases: [string, unknown][] = [
    ['a normal VM', vm()],
    ['a VM with a 3 MB annotation', (() => { const o = vm(); (o.metadata as Record<string, Record<string, string>>).annotations!.big = 'y'.repeat(3 << 20); return o; })()],
    ['a 6,000-deep array in the template', vm({ template: { ...((vm().spec as Record<string, unknown>).template as object), metadata: { annotations: { 'vm.kubevirt.io/os': 'rhel9' }, deep: deep(6000) } } })],
    ['escapes, unicode and tricky keys', { ...vm(), metadata: { name: 'q"\\\u00e9\ud83d\ude00', namespace: 'n\\"s', uid: 'u', resourceVersion: '7', 'x"y': { '}': ']' } } }],
  ];
  for (const [what, object] of cases) {
    test(`keeps the contract's fields of ${what}, in any chunking`, () => {
      const line = `{"type":"MODIFIED","object":${stringifyDeep(object)}}`;
      const expected = trimToContract(object);
      for (const size of [1, 7, 4096, 65536, line.length]) {
        if (size === 1 && line.length > 100_000) continue;
        const s = new LineSkimmer();
        for (let i = 0; i < line.length; i += size) s.feed(line.slice(i, i + size));
        const r = s.finish();
        assert.equal(r.type, 'MODIFIED');
        assert.deepEqual(r.object, expected, `chunks of ${size}`);
        assert.equal(r.chars, line.length);
      }
    });
  }
});
