// Loads function files from sql/ into a migration. Function files are `create or replace`,
// so a later migration that changed one simply loads it again.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const sqlDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'sql');

/** Queues the named sql/ files, in order, on a node-pg-migrate builder. */
export function loadSqlFiles(pgm, files) {
  // Bodies may name tables that a later migration of the same run creates: check them at call time.
  pgm.sql('set local check_function_bodies = off');
  for (const file of files) {
    pgm.sql(fs.readFileSync(path.join(sqlDir, file), 'utf8'));
  }
}
