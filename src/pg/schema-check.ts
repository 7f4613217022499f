// Is this database ready for this version of ssvirt-vm-sync, and may this role do its job? One
// read-only check, shared by `run` (before it starts) and `doctor` (its schema and privilege steps).
import fs from 'node:fs';
import type pg from 'pg';
import { migrationsDir } from '../lib/paths.js';
import { OperatorError, schemaMissing } from '../lib/operator-error.js';

export interface SchemaState {
  role: string;
  database: string;
  installed: boolean;
  /** Newest migration applied (vm_sync.schema_version()), null when unknown. */
  version: string | null;
  /** Newest migration of this code. */
  expected: string;
  owner: boolean;
  writer: boolean;
  reader: boolean;
}

/** The newest migration in migrations/, as node-pg-migrate names it (file name without .js). */
export function expectedSchemaVersion(dir: string = migrationsDir): string {
  const names = fs.readdirSync(dir).filter((f) => /^\d+_.*\.js$/.test(f)).sort();
  return names.length ? names[names.length - 1]!.replace(/\.js$/, '') : '';
}

export async function readSchemaState(client: pg.ClientBase): Promise<SchemaState> {
  const r = await client.query<{ role: string; database: string; installed: boolean; owner: boolean; has_version: boolean; writer: boolean; reader: boolean }>(`
    select current_user as role, current_database() as database,
           n.oid is not null as installed,
           coalesce(pg_catalog.pg_has_role(current_user, n.nspowner, 'USAGE'), false) as owner,
           coalesce(pg_catalog.has_function_privilege(current_user, to_regprocedure('vm_sync.schema_version()'), 'execute'), false) as has_version,
           coalesce(pg_catalog.has_function_privilege(current_user, to_regprocedure('vm_sync.apply_batch(jsonb,jsonb,boolean)'), 'execute')
                and pg_catalog.has_function_privilege(current_user, to_regprocedure('vm_sync.try_lead(text)'), 'execute'), false) as writer,
           coalesce(pg_catalog.has_function_privilege(current_user, to_regprocedure('vm_sync.status_report(integer)'), 'execute'), false) as reader
      from (select 1) one
      left join pg_catalog.pg_namespace n on n.nspname = 'vm_sync'`);
  const row = r.rows[0]!;
  let version: string | null = null;
  if (row.has_version) version = (await client.query<{ v: string | null }>('select vm_sync.schema_version() as v')).rows[0]?.v ?? null;
  return { role: row.role, database: row.database, installed: row.installed, version, expected: expectedSchemaVersion(), owner: row.owner, writer: row.writer, reader: row.reader };
}

/** What keeps this database from serving this version, or null. */
export function schemaProblem(s: SchemaState): OperatorError | null {
  if (!s.installed) return schemaMissing(`no schema vm_sync in database "${s.database}"`);
  if (s.version === null && !s.owner && !s.writer && !s.reader) {
    return new OperatorError(
      `role "${s.role}" may not use the vm_sync schema of database "${s.database}"`,
      `grant vm_sync_writer to ${s.role} (the watcher) or vm_sync_reader (status, listen), see docs/dba-guide.md`,
    );
  }
  if (s.version === null || s.version < s.expected) {
    return new OperatorError(
      `the vm_sync schema of database "${s.database}" is older than this ssvirt-vm-sync (at ${s.version ?? 'a version without vm_sync.schema_version()'}, needs ${s.expected})`,
      'run `ssvirt-vm-sync migrate` of this version as the database owner',
    );
  }
  if (s.version > s.expected) {
    return new OperatorError(
      `the vm_sync schema of database "${s.database}" is at ${s.version}, newer than this ssvirt-vm-sync (${s.expected})`,
      'run the ssvirt-vm-sync version that migrated it (or newer)',
    );
  }
  return null;
}

/** The watcher's role must call the entry functions (vm_sync_writer, or the owner). */
export function writerProblem(s: SchemaState): OperatorError | null {
  if (s.owner || s.writer) return null;
  return new OperatorError(
    `role "${s.role}" may not call the watcher's functions (vm_sync.try_lead, vm_sync.apply_batch) in database "${s.database}"`,
    `as the owner: grant vm_sync_writer to ${s.role}`,
  );
}
