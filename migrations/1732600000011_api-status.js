// Which optional Kubernetes APIs the leader found (the instancetype API, CONTRACT 3b), so that
// `ssvirt-vm-sync status`, which reads only the database, can say whether instancetypes are synced.
// DDL only: vm_sync.record_api() lives in sql/085_api_status.sql.
export const up = (pgm) => {
  pgm.sql(`
    create table if not exists vm_sync.api_status (
      api_group  text primary key,
      version    text,
      available  boolean not null,
      checked_at timestamptz not null default now()
    );
    comment on table vm_sync.api_status is
      'Optional API groups the watcher looked for (instancetype.kubevirt.io): served or not, at which version, when last checked';
  `);
};

export const down = false;
