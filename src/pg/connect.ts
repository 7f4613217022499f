// Connections to PostgreSQL. What an error means is src/pg/errors.ts; how to retry, src/lib/retry.ts.
import pg from 'pg';

export type Pool = pg.Pool;
export type Client = pg.Client;

export function createPool(databaseUrl: string, options: { applicationName: string; max?: number }): Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    application_name: options.applicationName,
    max: options.max ?? 4,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener that kills the process.
  pool.on('error', () => undefined);
  return pool;
}

export async function connectClient(databaseUrl: string, applicationName: string): Promise<Client> {
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  await client.connect();
  return client;
}
