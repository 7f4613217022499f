// A fresh database per test file, cloned from the migrated template that test/run.ts prepared.
import crypto from 'node:crypto';
import pg from 'pg';
import { withDatabase } from './server.js';

export interface TestDatabase {
  /** Connection URL of this test's own database. */
  url: string;
  name: string;
  pool: pg.Pool;
  /** Runs one query on the pool and returns its rows. */
  query<R extends pg.QueryResultRow = any>(sql: string, params?: unknown[]): Promise<R[]>;
  drop(): Promise<void>;
}

function serverUrl(): string {
  const url = process.env.VM_SYNC_TEST_SERVER ?? process.env.DATABASE_URL;
  if (!url) throw new Error('VM_SYNC_TEST_SERVER is not set: run the tests through `npm test`');
  return url;
}

function templateName(): string {
  const name = process.env.VM_SYNC_TEST_TEMPLATE;
  if (!name) throw new Error('VM_SYNC_TEST_TEMPLATE is not set: run the tests through `npm test`');
  return name;
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(label = 'db'): Promise<TestDatabase> {
  const safe = label.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30);
  const name = `vmsync_t_${safe}_${crypto.randomBytes(4).toString('hex')}`;
  for (let attempt = 0; ; attempt++) {
    try {
      await adminQuery(`create database ${name} template ${templateName()}`);
      break;
    } catch (err) {
      // Two clones at the same instant can collide on the template; a moment later they do not.
      if (attempt < 20 && /being accessed by other users/.test(String((err as Error).message))) {
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
        continue;
      }
      throw err;
    }
  }
  const url = withDatabase(serverUrl(), name);
  const pool = new pg.Pool({ connectionString: url, max: 6 });
  pool.on('error', () => undefined);
  return {
    url,
    name,
    pool,
    async query(sql, params) {
      const result = await pool.query(sql, params as unknown[] | undefined);
      return result.rows;
    },
    async drop() {
      await pool.end();
      if (process.env.VM_SYNC_KEEP_TEST_DB) return;
      await adminQuery(`drop database if exists ${name} with (force)`);
    },
  };
}
