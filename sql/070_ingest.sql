-- =====================================================================
-- Entry points: ingest, stage, sweep, reconcile
-- =====================================================================
-- Each call is one transaction's worth of work under the writer row lock
-- (vm_sync.lock_writer(), sql/080_leader.sql), so concurrent callers (the
-- watcher, a DBA replaying events) queue instead of deadlocking, and
-- change-feed sequence numbers commit in order. A call is bounded in size
-- (vm_sync.settings ingest_max_events, ingest_max_bytes).
-- These functions write, so they run as their owner (SECURITY DEFINER) with
-- a pinned search_path: callers need EXECUTE, not table privileges.

-- Refuses a call over the size limits, before any work: one call is one transaction holding the
-- writer lock, and an unbounded one holds it (and the backend's memory) without bound.
create or replace function vm_sync.check_call_size(events jsonb)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  max_events bigint := coalesce((select s.value::bigint from vm_sync.settings s where s.name = 'ingest_max_events'), 50000);
  max_bytes  bigint := coalesce((select s.value::bigint from vm_sync.settings s where s.name = 'ingest_max_bytes'), 67108864);
  n_events   bigint;
  n_bytes    bigint;
begin
  if events is null or jsonb_typeof(events) <> 'array' then
    return;  -- stage_events says what is wrong with it
  end if;
  n_events := jsonb_array_length(events);
  n_bytes := pg_column_size(events);
  if n_events > max_events or n_bytes > max_bytes then
    raise exception 'vm_sync: one call takes at most % events and % bytes; this one has % events, % bytes', max_events, max_bytes, n_events, n_bytes
      using errcode = 'VS002',
            hint = 'Split the events into smaller calls (each is one transaction), or raise ingest_max_events / ingest_max_bytes in vm_sync.settings.';
  end if;
end;
$$;

comment on function vm_sync.check_call_size(jsonb) is
  'Internal: raises SQLSTATE VS002 when events exceeds vm_sync.settings ingest_max_events or ingest_max_bytes (jsonb size)';


create or replace function vm_sync.ingest(events jsonb)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  staged record;
  merged jsonb;
begin
  perform vm_sync.check_call_size(events);
  perform vm_sync.lock_writer();
  staged := vm_sync.stage_events(events);
  merged := vm_sync.merge(staged.affected_namespaces, staged.affected_vm_names);
  return (staged.summary - 'field_rejects')
      || jsonb_build_object('vms_updated', merged -> 'vms_updated',
                            'notifications', merged -> 'vms_updated',
                            'field_updates', (merged -> 'field_updates') || (staged.summary -> 'field_rejects'));
end;
$$;

comment on function vm_sync.ingest(jsonb) is
  'Stages a JSON array of KubeVirt watch events, merges the affected VMs into public.vms, notifies vm_changed; returns a summary {events, staged, unchanged, ignored, bookmarks, rejected, vms_updated, notifications, field_updates}';


create or replace function vm_sync.stage(events jsonb)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  staged record;
begin
  perform vm_sync.check_call_size(events);
  perform vm_sync.lock_writer();
  staged := vm_sync.stage_events(events);
  return (staged.summary - 'field_rejects')
      || jsonb_build_object('vms_updated', 0, 'notifications', 0, 'field_updates', staged.summary -> 'field_rejects');
end;
$$;

comment on function vm_sync.stage(jsonb) is
  'Like ingest() but stages only: no merge, no notification (a cold start stages both kinds, then calls reconcile() once)';


create or replace function vm_sync.sweep(kind text, namespaces text[], present_uids text[], merge boolean default true)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p_kind   alias for kind;
  gone_ns  text[];
  gone_vm  text[];
  n_gone   integer;
  nestloop text;
  merged   jsonb := jsonb_build_object('vms_updated', 0, 'field_updates', '[]'::jsonb);
begin
  if p_kind is null or p_kind not in ('VirtualMachine', 'VirtualMachineInstance', 'ControllerRevision',
                                      'VirtualMachineInstancetype', 'VirtualMachineClusterInstancetype') then
    raise exception 'vm_sync.sweep: unknown kind %', p_kind using errcode = 'invalid_parameter_value';
  end if;
  perform vm_sync.lock_writer();

  -- The anti-join must never become a nested loop: with statistics saying the kind is empty (a cold
  -- start, autovacuum off or behind) one took 21 s for 10,000 objects. Hash or merge, whatever the
  -- estimates; only for this statement (the merge below keeps its index lookups).
  nestloop := current_setting('enable_nestloop');
  perform set_config('enable_nestloop', 'off', true);
  with present as (
    select distinct u as uid from unnest(coalesce(present_uids, '{}')) as u where u is not null
  ),
  gone as (
    update vm_sync.snapshots s
       set deleted = true, observed_at = now()
     where s.kind = p_kind
       and not s.deleted
       and (namespaces is null or s.namespace = any(namespaces))
       and not exists (select 1 from present p where p.uid = s.uid)
    returning s.namespace, s.vm_name
  )
  select array_agg(g.namespace), array_agg(g.vm_name), count(*) into gone_ns, gone_vm, n_gone from gone g;
  perform set_config('enable_nestloop', nestloop, true);

  -- A list after a watch was established is a relist; the first list of a scope is not.
  update vm_sync.watch_state w
     set relists = w.relists + 1, last_relist_at = now()
   where w.kind = p_kind
     and w.resource_version is not null
     and (case when namespaces is null then w.scope = '' else w.scope = any(namespaces) end);

  if merge and n_gone > 0 then
    merged := vm_sync.merge(gone_ns, gone_vm);
  end if;
  return jsonb_build_object('kind', p_kind, 'deleted', n_gone) || merged;
end;
$$;

comment on function vm_sync.sweep(text, text[], text[], boolean) is
  'After a full list of kind (within namespaces, all when NULL): staged objects whose uid is not in present_uids become deleted; merges them unless merge is false';


-- Plans must not depend on autovacuum having kept up: after a bulk load (a cold start, a relist)
-- the staging table is analyzed here when its statistics are missing or well behind its contents.
create or replace function vm_sync.analyze_if_stale()
returns boolean
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  st record;
begin
  select c.reltuples, coalesce(t.n_mod_since_analyze, 0) as modified, t.last_analyze, t.last_autoanalyze
    into st
    from pg_catalog.pg_class c
    left join pg_catalog.pg_stat_all_tables t on t.relid = c.oid
   where c.oid = 'vm_sync.snapshots'::regclass;
  if st.reltuples < 0 or (st.last_analyze is null and st.last_autoanalyze is null and st.modified > 0)
     or st.modified > 1000 + 0.2 * greatest(st.reltuples, 0) then
    analyze vm_sync.snapshots;
    return true;
  end if;
  return false;
end;
$$;

comment on function vm_sync.analyze_if_stale() is
  'Internal: analyzes vm_sync.snapshots when it never was, or when more than 1000 + 20% of its rows changed since';


-- Old changes and rejects go after their retention (vm_sync.settings).
create or replace function vm_sync.prune()
returns void
language plpgsql volatile
as $$
begin
  delete from vm_sync.changes
   where changed_at < now() - coalesce(
           (select value::interval from vm_sync.settings where name = 'change_retention'), interval '24 hours');
  delete from vm_sync.rejects
   where rejected_at < now() - coalesce(
           (select value::interval from vm_sync.settings where name = 'reject_retention'), interval '7 days');
end;
$$;

comment on function vm_sync.prune() is 'Internal: drops changes and rejects older than their retention settings';


create or replace function vm_sync.reconcile_summary()
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  merged  jsonb;
begin
  perform vm_sync.lock_writer();
  perform vm_sync.analyze_if_stale();
  merged := vm_sync.merge(null, null, true);
  perform vm_sync.prune();
  return jsonb_build_object('vms_updated', merged -> 'vms_updated', 'notifications', merged -> 'vms_updated',
                            'field_updates', merged -> 'field_updates');
end;
$$;

comment on function vm_sync.reconcile_summary() is
  'reconcile() with the ingest-style summary {vms_updated, notifications, field_updates}, for the watcher''s metrics';


create or replace function vm_sync.reconcile()
returns integer
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  select (vm_sync.reconcile_summary() ->> 'vms_updated')::integer
$$;

comment on function vm_sync.reconcile() is
  'Merges every staged snapshot again (fills vms rows created after their VM was seen); prunes old changes and rejects; returns rows changed';


-- Rejects the watcher itself decided: an object over its size or depth bounds (sent cut down to
-- the contract's fields), or an event PostgreSQL refused that was quarantined out of its batch.
-- rejects: [{"kind", "namespace", "name", "uid", "resourceVersion", "field", "value", "reason"}, ...].
-- Fenced like every write of the watcher. The same object version rejected again for the same field
-- (a restart replaying its event, a relist) is recorded once.
create or replace function vm_sync.record_rejects(rejects jsonb)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  summary jsonb;
begin
  perform vm_sync.fence();
  if rejects is null or jsonb_typeof(rejects) <> 'array' then
    rejects := '[]';
  end if;
  with given as (
    select left(r ->> 'kind', 253) as kind, left(r ->> 'namespace', 253) as namespace, left(r ->> 'name', 253) as name,
           left(r ->> 'uid', 253) as uid, left(r ->> 'resourceVersion', 253) as rv,
           coalesce(left(r ->> 'field', 253), 'event') as field, vm_sync.clip(r -> 'value') as value,
           coalesce(left(r ->> 'reason', 1000), 'rejected by the watcher') as reason
      from jsonb_array_elements(rejects) as r
     where jsonb_typeof(r) = 'object'
  ),
  inserted as (
    insert into vm_sync.rejects (kind, namespace, name, uid, resource_version, field, value, reason)
    select distinct on (g.kind, g.namespace, g.name, g.uid, g.rv, g.field) g.kind, g.namespace, g.name, g.uid, g.rv, g.field, g.value, g.reason
      from given g
     where g.rv is null
        or not exists (select 1 from vm_sync.rejects x
                        where x.namespace is not distinct from g.namespace and x.name is not distinct from g.name
                          and x.kind is not distinct from g.kind and x.uid is not distinct from g.uid
                          and x.resource_version = g.rv and x.field = g.field)
    returning kind, namespace, name, uid, field, reason
  )
  select jsonb_build_object(
           'rejected', (select count(*) from inserted),
           'field_rejects', (select coalesce(jsonb_agg(jsonb_build_object(
                                      'namespace', x.namespace, 'field', x.col, 'result', 'rejected', 'count', x.n)
                                      order by x.namespace, x.col), '[]'::jsonb)
                               from (select i.namespace, vm_sync.column_of_field(i.field) as col, count(*) as n
                                       from inserted i group by 1, 2) x),
           'rejected_objects', (select coalesce(jsonb_agg(jsonb_build_object('kind', i.kind, 'namespace', i.namespace, 'name', i.name, 'uid', i.uid,
                                                                            'field', i.field, 'reason', left(i.reason, 300))), '[]'::jsonb)
                                  from (select * from inserted limit 100) i))
    into summary;
  return summary;
end;
$$;

comment on function vm_sync.record_rejects(jsonb) is
  'Fenced: records rejects the watcher decided (an object over MAX_OBJECT_BYTES/MAX_OBJECT_DEPTH, an event quarantined out of a refused batch); the same object version and field once; returns {rejected, field_rejects, rejected_objects}';
