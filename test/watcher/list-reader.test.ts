// The streaming list reader against JSON.parse: any list, cut into chunks anywhere, gives the same
// items and envelope; broken bodies are refused; reading waits for the item handler.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ListFormatError, readList } from '../../src/watcher/list-reader.js';

async function* chunks(text: string, cuts: number[]): AsyncGenerator<Buffer> {
  const buf = Buffer.from(text, 'utf8');
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    const end = Math.min(buf.length, Math.max(at, c));
    if (end > at) yield buf.subarray(at, end);
    at = end;
  }
  if (at < buf.length) yield buf.subarray(at);
}

async function read(text: string, cuts: number[] = []): Promise<{ items: unknown[]; bytes: number[]; envelope: unknown }> {
  const items: unknown[] = [];
  const bytes: number[] = [];
  const envelope = await readList(chunks(text, cuts), (item, n) => {
    items.push(item);
    bytes.push(n);
  });
  return { items, bytes, envelope };
}

const objectArb = fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 6 });

describe('list reader', () => {
  test('any list, cut anywhere, reads as JSON.parse reads it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(objectArb, { maxLength: 8 }),
        objectArb,
        fc.array(fc.nat(4000), { maxLength: 12 }),
        fc.boolean(),
        async (items, meta, cuts, pretty) => {
          const list = { apiVersion: 'kubevirt.io/v1', items, kind: 'VirtualMachineList', metadata: { continue: 'abc"\\]', resourceVersion: '42', extra: meta } };
          const text = pretty ? JSON.stringify(list, null, 2) : JSON.stringify(list);
          const got = await read(text, cuts);
          assert.deepEqual(got.items, JSON.parse(JSON.stringify(items)));
          const { items: _drop, ...rest } = JSON.parse(text) as Record<string, unknown>;
          assert.deepEqual(got.envelope, rest);
          assert.equal(got.bytes.reduce((a, b) => a + b, 0) <= Buffer.byteLength(text), true);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('items before or after metadata, kind first (as kube-apiserver orders them), and an empty list', async () => {
    const text = '{"kind":"VirtualMachineInstanceList","apiVersion":"kubevirt.io/v1","metadata":{"resourceVersion":"7","continue":"t"},"items":[{"a":"items"},{"b":["[",{"c":"}"}]}]}';
    const got = await read(text, [3, 60, 61, 90, 95]);
    assert.deepEqual(got.items, [{ a: 'items' }, { b: ['[', { c: '}' }] }]);
    assert.deepEqual(got.envelope, { kind: 'VirtualMachineInstanceList', apiVersion: 'kubevirt.io/v1', metadata: { resourceVersion: '7', continue: 't' } });
    assert.deepEqual((await read('{"items":[],"metadata":{"resourceVersion":"1"}}')).items, []);
    assert.deepEqual((await read('{"items":null,"metadata":{"resourceVersion":"1"}}')).envelope, { metadata: { resourceVersion: '1' } });
  });

  test('multi-byte characters split across chunks survive', async () => {
    const name = 'vm-ä-日本-😀';
    const text = JSON.stringify({ items: [{ metadata: { name } }], metadata: {} });
    const offsets = Array.from({ length: Buffer.byteLength(text) }, (_, i) => i);
    const got = await read(text, offsets);
    assert.deepEqual(got.items, [{ metadata: { name } }]);
  });

  test('a truncated body, a non-object item and a broken item are refused', async () => {
    await assert.rejects(read('{"items":[{"a":1},{"b":'), ListFormatError);
    await assert.rejects(read('{"items":[1,2],"metadata":{}}'), ListFormatError);
    await assert.rejects(read('{"items":[{"a":tru}],"metadata":{}}'), ListFormatError);
    await assert.rejects(
      readList(chunks(JSON.stringify({ items: [{ big: 'x'.repeat(2000) }] }), []), () => undefined, { maxItemBytes: 1000 }),
      /exceeds 1000 bytes/,
    );
  });

  test('the next chunk is not read while the handler is busy', async () => {
    let pulled = 0;
    async function* body(): AsyncGenerator<Buffer> {
      pulled++;
      yield Buffer.from('{"items":[{"i":1},');
      pulled++;
      yield Buffer.from('{"i":2}],"metadata":{}}');
    }
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: number[] = [];
    const done = readList(body(), async (item) => {
      seen.push((item as { i: number }).i);
      if (seen.length === 1) await gate;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(pulled, 1);
    assert.deepEqual(seen, [1]);
    release();
    await done;
    assert.equal(pulled, 2);
    assert.deepEqual(seen, [1, 2]);
  });
});
