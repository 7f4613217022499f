// `migrate`: the numbered migrations in migrations/ (node-pg-migrate), then the functions phase: the
// function, view and role files in sql/ are applied again whenever one of them changed. Both run
// under node-pg-migrate's advisory lock, so concurrent migrators serialise and the later one finds
// nothing to do.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PG_MIGRATE_LOCK_ID, runner } from 'node-pg-migrate';
import type pg from 'pg';
import { connectClient } from './connect.js';
import type { Logger } from '../lib/log.js';
import { migrationsDir, sqlDir } from '../lib/paths.js';

export interface MigrateResult {
  /** Migrations applied by this run, in order. */
  applied: string[];
  /** sql/ files whose sha256 differed from vm_sync.sql_files or was not recorded there. */
  changedSqlFiles: string[];
  /** sql/ files applied by this run: all of them when any changed, else none. */
  reappliedSqlFiles: string[];
}

export interface SqlFile {
  file: string;
  text: string;
  sha256: string;
}

/** The files of sql/, in the order they are applied (their names sort by their number). */
export function readSqlFiles(dir: string = sqlDir): SqlFile[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((file) => {
      const text = fs.readFileSync(path.join(dir, file), 'utf8');
      return { file, text, sha256: crypto.createHash('sha256').update(text).digest('hex') };
    });
}

/**
 * The sql/ files whose recorded hash differs from the file's (or is missing). Recorded files that no
 * longer exist do not count: what a removed file created is dropped by a migration.
 */
export async function changedSqlFiles(client: pg.ClientBase, files: SqlFile[]): Promise<string[]> {
  const recorded = await client.query<{ file: string; sha256: string }>('select file, sha256 from vm_sync.sql_files');
  const known = new Map(recorded.rows.map((r) => [r.file, r.sha256]));
  return files.filter((f) => known.get(f.file) !== f.sha256).map((f) => f.file);
}

/**
 * The functions phase, in one transaction. The files depend on each other (types, helpers, grants
 * over every function), so a change to any re-applies all of them in order, never one alone.
 */
async function applySqlFiles(client: pg.ClientBase): Promise<{ changed: string[]; reapplied: string[] }> {
  const files = readSqlFiles();
  await client.query('begin');
  try {
    await client.query(`set local lock_timeout = '60s'`);
    const changed = await changedSqlFiles(client, files);
    if (changed.length > 0) {
      // A body may call a function of a later file: check bodies when called, as the loader always has.
      await client.query('set local check_function_bodies = off');
      for (const f of files) {
        try {
          await client.query(f.text);
        } catch (err) {
          (err as Error).message = `sql/${f.file}: ${(err as Error).message}`;
          throw err;
        }
      }
      await client.query('delete from vm_sync.sql_files');
      await client.query(
        `insert into vm_sync.sql_files (file, sha256)
         select * from unnest($1::text[], $2::text[])`,
        [files.map((f) => f.file), files.map((f) => f.sha256)],
      );
    }
    await client.query('commit');
    return { changed, reapplied: changed.length > 0 ? files.map((f) => f.file) : [] };
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}

export async function migrate(databaseUrl: string, logger?: Logger): Promise<MigrateResult> {
  const client = await connectClient(databaseUrl, 'ssvirt-vm-sync migrate');
  try {
    // A migration waits for another migrator, but never sits forever behind an application lock.
    await client.query(`set lock_timeout = '60s'`);
    // A server-wide statement_timeout meant for interactive users must not cut a migration short.
    await client.query(`set statement_timeout = 0`);
    await client.query(`set client_min_messages = warning`);
    // node-pg-migrate's own lock, held across both phases: the runner takes it again (advisory locks
    // stack within a session) and releases its hold; ours is released after the functions phase.
    await client.query('select pg_advisory_lock($1)', [PG_MIGRATE_LOCK_ID]);
    try {
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
      const { changed, reapplied } = await applySqlFiles(client);
      logger?.info(
        { applied, changedSqlFiles: changed, reappliedSqlFiles: reapplied },
        applied.length || reapplied.length
          ? `migrations applied: ${applied.length}; sql files re-applied: ${reapplied.length} (changed: ${changed.join(', ') || 'none'})`
          : 'database already up to date',
      );
      return { applied, changedSqlFiles: changed, reappliedSqlFiles: reapplied };
    } finally {
      await client.query('select pg_advisory_unlock($1)', [PG_MIGRATE_LOCK_ID]).catch(() => undefined);
    }
  } finally {
    await client.end();
  }
}
