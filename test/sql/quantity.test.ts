// Kubernetes quantity grammar, exactly as the API server accepts it, as a table of cases.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase('quantity');
});
after(async () => {
  await db.drop();
});

async function parse(q: string): Promise<string | null> {
  const rows = await db.query<{ v: string | null }>('select vm_sync.parse_quantity($1)::text as v', [q]);
  return rows[0]!.v;
}

async function memory(json: unknown): Promise<{ mb: number | null; problem: string | null }> {
  const rows = await db.query('select * from vm_sync.memory_mb_of($1::jsonb)', [JSON.stringify(json)]);
  return rows[0];
}

async function cpu(json: unknown): Promise<{ n: number | null; problem: string | null }> {
  const rows = await db.query('select * from vm_sync.cpu_count_of_quantity($1::jsonb)', [JSON.stringify(json)]);
  return rows[0];
}

describe('parse_quantity: valid quantities give their exact value', () => {
  const cases: [string, string][] = [
    ['4Gi', '4294967296'],
    ['512Mi', '536870912'],
    ['1.5Gi', '1610612736'],
    ['2G', '2000000000'],
    ['100M', '100000000'],
    ['1e9', '1000000000'],
    ['1E9', '1000000000'],
    ['1e+9', '1000000000'],
    ['4294967296', '4294967296'],
    ['0.5Ki', '512'],
    ['1Ki', '1024'],
    ['1Ti', '1099511627776'],
    ['1Pi', '1125899906842624'],
    ['1Ei', '1152921504606846976'],
    ['1k', '1000'],
    ['1T', '1000000000000'],
    ['1P', '1000000000000000'],
    ['1E', '1000000000000000000'],
    ['500m', '0.5'],
    ['250u', '0.00025'],
    ['7n', '0.000000007'],
    ['0', '0'],
    ['+1Ki', '1024'],
    ['-1Gi', '-1073741824'],
    ['1.', '1'],
    ['.5', '0.5'],
    ['1.G', '1000000000'],
    ['00012Mi', '12582912'],
    ['1e-3', '0.001'],
  ];
  for (const [input, expected] of cases) {
    it(`"${input}" is ${expected}`, async () => {
      const value = await parse(input);
      assert.notEqual(value, null, `${input} should parse`);
      assert.equal(Number(value), Number(expected));
      // Exactness, not float closeness: compare as decimals.
      const rows = await db.query<{ eq: boolean }>('select vm_sync.parse_quantity($1) = $2::numeric as eq', [input, expected]);
      assert.equal(rows[0]!.eq, true);
    });
  }
});

describe('parse_quantity: malformed quantities give NULL', () => {
  const cases = ['1gi', 'Gi', '1.2.3', '', ' 1Gi', '1Gi ', '1K', '1KiB', '1e', '1e1.5', 'e3', '1 Gi', '--1', '1..2', 'abc', '1Mi1', '0x10', '1,5Gi', '∞', '١Gi', '1'.repeat(200)];
  for (const input of cases) {
    it(`"${input.length > 20 ? input.slice(0, 20) + '…' : input}" is malformed`, async () => {
      assert.equal(await parse(input), null);
    });
  }
  it('an enormous exponent neither overflows nor fits: it parses to a value beyond every range', async () => {
    const value = await parse('1e999999999');
    assert.ok(value !== null && value.length > 60);
  });
});

describe('memory_mb_of: MiB = floor(bytes / 1048576), only positive values within integer range', () => {
  const good: [unknown, number][] = [
    ['4Gi', 4096],
    ['4096Mi', 4096],
    ['2G', 1907],
    ['1.5Gi', 1536],
    ['1e9', 953],
    ['4294967296', 4096],
    [4294967296, 4096],
    ['1048577', 1],
    ['2047Ti', 2146435072],
  ];
  for (const [input, mb] of good) {
    it(`${JSON.stringify(input)} is ${mb} MiB`, async () => {
      assert.deepEqual(await memory(input), { mb, problem: null });
    });
  }
  const bad: [unknown, string][] = [
    ['-1Gi', 'negative memory'],
    ['0', 'zero memory'],
    ['100m', 'less than 1 MiB'],
    ['1023Ki', 'less than 1 MiB'],
    ['2048Ti', 'out of integer range (MiB)'],
    ['9999Pi', 'out of integer range (MiB)'],
    ['1gi', 'malformed quantity'],
    ['', 'malformed quantity'],
    [true, 'not a quantity (expected a string such as "4Gi")'],
    [{ value: '4Gi' }, 'not a quantity (expected a string such as "4Gi")'],
  ];
  for (const [input, problem] of bad) {
    it(`${JSON.stringify(input)} is rejected: ${problem}`, async () => {
      assert.deepEqual(await memory(input), { mb: null, problem });
    });
  }
  it('an absent value is neither a value nor a problem', async () => {
    assert.deepEqual(await memory(null), { mb: null, problem: null });
  });
});

describe('cpu_count_of_quantity: whole CPUs, rounded up', () => {
  const good: [unknown, number][] = [['2', 2], ['500m', 1], ['1.5', 2], ['1001m', 2], [4, 4], ['2k', 2000]];
  for (const [input, n] of good) {
    it(`${JSON.stringify(input)} is ${n}`, async () => {
      assert.deepEqual(await cpu(input), { n, problem: null });
    });
  }
  const bad: [unknown, string][] = [['0', 'zero or negative CPU'], ['-2', 'zero or negative CPU'], ['3E', 'out of integer range'], ['two', 'malformed quantity']];
  for (const [input, problem] of bad) {
    it(`${JSON.stringify(input)} is rejected: ${problem}`, async () => {
      assert.deepEqual(await cpu(input), { n: null, problem });
    });
  }
});
