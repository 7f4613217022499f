// Least privilege: vm_sync_writer (the watcher: entry functions only) and vm_sync_reader (consumers:
// read-only views and pure functions); no vm_sync function is executable by PUBLIC.
import { loadSqlFiles } from './lib/sql-files.js';

export const up = (pgm) => {
  loadSqlFiles(pgm, ['090_roles.sql', '095_views.sql']);
};

// Roles are cluster-wide and other databases may use them: never dropped by a migration.
export const down = false;
