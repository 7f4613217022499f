// What the leader reports of its watches, for `ssvirt-vm-sync status` (sql/085_watch_health.sql
// writes these columns through vm_sync.report_watches()). DDL only.
export const up = (pgm) => {
  pgm.sql(`
    alter table vm_sync.leader
      add column if not exists watches_term bigint,
      add column if not exists watches_down text[],
      add column if not exists watches_down_since timestamptz,
      add column if not exists watches_reported_at timestamptz;
    comment on column vm_sync.leader.watches_term is 'Term of the leader that last reported its watches (vm_sync.report_watches)';
    comment on column vm_sync.leader.watches_down is 'Watches (kind/scope) that leader had not established; NULL when all were';
    comment on column vm_sync.leader.watches_down_since is 'Since when a watch of that leader has not been established';
    comment on column vm_sync.leader.watches_reported_at is 'When that leader last reported its watches';
  `);
};

export const down = false;
