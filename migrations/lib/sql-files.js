// Kept so that the landed migrations 004 and 005 keep their frozen text: they call loadSqlFiles().
//
// It is a no-op now. The function, view and role files under sql/ are applied by `migrate` itself,
// after every migration has run (src/pg/migrate.ts, "the functions phase"): whenever the sha256 of
// any sql/ file differs from the one recorded in vm_sync.sql_files, all of them are applied again in
// order, in one transaction. A database migrated before this change gets them on its next migrate.

/** Formerly queued sql/ files on a migration; does nothing (see above). */
export function loadSqlFiles(_pgm, _files) {}
