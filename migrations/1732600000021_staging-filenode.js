// Staging emptied under the watcher (issue 16): TRUNCATE gives vm_sync.snapshots a new relfilenode.
// The watcher records the one it wrote to with each checkpoint; vm_sync.staging_lost() compares.

export const up = (pgm) => {
  pgm.sql(`
    alter table vm_sync.writer add column if not exists snapshots_filenode oid;
    comment on column vm_sync.writer.snapshots_filenode is
      'pg_relation_filenode of vm_sync.snapshots when the last checkpoint was saved (a TRUNCATE changes it)';
  `);
};

export const down = false;
