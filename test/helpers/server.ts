// Which PostgreSQL server the tests (and benchmarks) use: DATABASE_URL, else the local default, else an embedded one.
import pg from 'pg';

export const LOCAL_DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export async function answers(url: string, timeoutMs = 2000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Replaces the database name of a connection URL. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

/** The test server's admin URL (the runner sets VM_SYNC_TEST_SERVER; DATABASE_URL when run alone). */
export const serverUrl = (): string => process.env.VM_SYNC_TEST_SERVER ?? process.env.DATABASE_URL!;

/** Runs one statement as the server's admin (databases and roles are cluster-wide). */
export async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: serverUrl() });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
