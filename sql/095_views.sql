-- =====================================================================
-- Read-only views for consumers (role vm_sync_reader)
-- =====================================================================
-- A view reads with its owner's privileges, so the reader gets these rows
-- and nothing else: no table, no raw object. Staged objects are left out on
-- purpose: a VirtualMachine spec may carry cloud-init user data, and with
-- it passwords and keys. Views call no vm_sync function (a view's caller
-- needs EXECUTE on every function it calls).

-- What each staged object contributes, without the object itself.
create or replace view vm_sync.snapshot_overview as
  select s.kind, s.namespace, s.name, s.uid, s.resource_version, s.deleted, s.observed_at,
         s.vm_name, s.cpu_count, s.memory_mb, s.guest_os, s.guest_os_hint, s.status
    from vm_sync.snapshots s;

comment on view vm_sync.snapshot_overview is
  'Staged VM/VMI objects and their derived values, without the raw object (which may hold cloud-init secrets)';


-- Rejected values, newest first in practice (order by id desc). A rejected whole event or object
-- is shown as its JSON type only: its body may be a spec with secrets in it.
create or replace view vm_sync.recent_rejects as
  select r.id, r.rejected_at, r.kind, r.namespace, r.name, r.uid, r.resource_version, r.field,
         case when jsonb_typeof(r.value) in ('object', 'array')
              then to_jsonb('(a JSON ' || jsonb_typeof(r.value) || ')')
              else r.value end as value,
         r.reason
    from vm_sync.rejects r;

comment on view vm_sync.recent_rejects is
  'Values the sync could not use and why (retained for vm_sync.settings reject_retention); objects shown by type only';


-- The durable change feed: catch up with `where seq > $last order by seq`.
create or replace view vm_sync.change_feed as
  select c.seq, c.changed_at, c.vm_id, c.namespace, c.vm_name, c.changes
    from vm_sync.changes c;

comment on view vm_sync.change_feed is
  'One row per vms row change, in commit order; vm_changed notifications carry its seq. Catch up with where seq > $last';


-- The sync's health in one row: who leads (and whether that leader's own session is connected with
-- a current lease), where each watch stands, how much is staged, rejected and changed.
create or replace view vm_sync.sync_status as
  select l.holder, l.pid, l.term, l.acquired_at, l.heartbeat_at, wr.last_batch_at, wr.batches, wr.events,
         -- The recorded leader's writer session is connected to this database and its lease is
         -- current (pid and datname are visible to every role in pg_stat_activity).
         coalesce(l.lease_expires_at > pg_catalog.clock_timestamp()
          and exists (select 1 from pg_catalog.pg_stat_activity a
                       where a.pid = l.pid and a.datname = pg_catalog.current_database()), false) as leader_connected,
         (select coalesce(jsonb_agg(jsonb_build_object('kind', w.kind, 'scope', w.scope,
                                                        'resource_version', w.resource_version,
                                                        'updated_at', w.updated_at, 'relists', w.relists,
                                                        'last_relist_at', w.last_relist_at)
                                    order by w.kind, w.scope), '[]'::jsonb)
            from vm_sync.watch_state w) as watches,
         (select count(*) from vm_sync.snapshots s where s.kind = 'VirtualMachine' and not s.deleted) as vms_staged,
         (select count(*) from vm_sync.snapshots s where s.kind = 'VirtualMachineInstance' and not s.deleted) as vmis_staged,
         (select count(*) from vm_sync.rejects r where r.rejected_at > now() - interval '1 hour') as rejects_last_hour,
         (select max(c.seq) from vm_sync.changes c) as last_change_seq,
         (select max(c.changed_at) from vm_sync.changes c) as last_change_at,
         l.lease_expires_at
    from vm_sync.leader l
    cross join vm_sync.writer wr
   where l.id = 1;

comment on view vm_sync.sync_status is
  'One row: leader (and whether its session is connected with a current lease), watch checkpoints, staged objects, recent rejects, last change';


do $grants$
begin
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'vm_sync_reader') then
    grant select on vm_sync.snapshot_overview, vm_sync.recent_rejects, vm_sync.change_feed, vm_sync.sync_status
       to vm_sync_reader;
  end if;
end
$grants$;
