// Applies the numbered migrations in migrations/ with node-pg-migrate, serialised by its advisory lock.
import { runner } from 'node-pg-migrate';
import { connectClient } from './connect.js';
import type { Logger } from '../lib/log.js';
import { migrationsDir } from '../lib/paths.js';

export interface MigrateResult {
  applied: string[];
}

export async function migrate(databaseUrl: string, logger?: Logger): Promise<MigrateResult> {
  const client = await connectClient(databaseUrl, 'ssvirt-vm-sync migrate');
  try {
    // A migration waits for another migrator, but never sits forever behind an application lock.
    await client.query(`set lock_timeout = '60s'`);
    await client.query(`set client_min_messages = warning`);
    const ran = await runner({
      dbClient: client,
      dir: migrationsDir,
      migrationsTable: 'migrations',
      migrationsSchema: 'vm_sync',
      createMigrationsSchema: true,
      direction: 'up',
      checkOrder: true,
      singleTransaction: true,
      advisoryLockMode: 'wait',
      logger: {
        debug: () => undefined,
        info: (msg: string) => logger?.debug({ migration: true }, msg),
        warn: (msg: string) => logger?.warn({ migration: true }, msg),
        error: (msg: string) => logger?.error({ migration: true }, msg),
      },
    });
    const applied = ran.map((m) => m.name);
    logger?.info({ applied }, applied.length ? 'migrations applied' : 'database already up to date');
    return { applied };
  } finally {
    await client.end();
  }
}
