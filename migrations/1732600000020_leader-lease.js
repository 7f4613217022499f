// Leadership and writer serialisation that only the sync's own roles can take (issue 16).
// - vm_sync.leader becomes a lease: the leader's writer session (pid, backend_start), its term, and
//   when the lease expires in the database's clock. Advisory locks are gone: any role that can
//   connect could take them (their keys are in the source) and stop every write.
// - vm_sync.writer is the one row every write transaction locks FOR UPDATE (a locking clause needs
//   UPDATE privilege, which no role but the owner has); it also carries the batch counters that
//   used to be on the leader row, so a batch in flight never blocks the lease's renewal.
// - vm_sync.settings gains the lease length and the size limits of one vm_sync.ingest call.

export const up = (pgm) => {
  pgm.sql(`
    alter table vm_sync.leader
      add column if not exists backend_start    timestamptz,
      add column if not exists lease_expires_at timestamptz;
    comment on table vm_sync.leader is
      'The leader''s lease: holder, writer session (pid, backend_start), term, heartbeat and expiry; changed only by vm_sync.try_lead, renew_lease and resign';

    create table if not exists vm_sync.writer (
      id            integer primary key default 1 check (id = 1),
      last_batch_at timestamptz,
      batches       bigint not null default 0,
      events        bigint not null default 0
    );
    insert into vm_sync.writer (id) values (1) on conflict do nothing;
    comment on table vm_sync.writer is
      'One row, locked FOR UPDATE by every write transaction (writes are serialised on it), with the watcher''s batch counters';

    insert into vm_sync.settings (name, value, description) values
      ('leader_lease', '15 seconds', 'How long a leader''s lease lasts without a renewal (an interval); the watcher renews it every LEADER_POLL_MS'),
      ('ingest_max_events', '50000', 'Most events one vm_sync.ingest (or stage) call accepts'),
      ('ingest_max_bytes', '67108864', 'Most bytes of JSON one vm_sync.ingest (or stage) call accepts')
    on conflict (name) do nothing;

    drop function if exists vm_sync.holds_leader_lock();
    drop function if exists vm_sync.leader_lock_id();
    drop function if exists vm_sync.ingest_lock_id();
  `);
};

export const down = false;
