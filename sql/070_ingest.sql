-- =====================================================================
-- Entry points: ingest, stage, sweep, reconcile
-- =====================================================================
-- Each call is one transaction's worth of work under one advisory lock, so
-- concurrent callers (the watcher, a DBA replaying events) queue instead of
-- deadlocking, and change-feed sequence numbers commit in order.
-- These functions write, so they run as their owner (SECURITY DEFINER) with
-- a pinned search_path: callers need EXECUTE, not table privileges.

create or replace function vm_sync.ingest_lock_id()
returns bigint
language sql immutable parallel safe
as $$ select 7358200110000000002::bigint $$;

comment on function vm_sync.ingest_lock_id() is 'Transaction advisory lock serialising every write to vm_sync and vms';


create or replace function vm_sync.ingest(events jsonb)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  staged record;
  merged jsonb;
begin
  perform pg_advisory_xact_lock(vm_sync.ingest_lock_id());
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
  perform pg_advisory_xact_lock(vm_sync.ingest_lock_id());
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
  merged   jsonb := jsonb_build_object('vms_updated', 0, 'field_updates', '[]'::jsonb);
begin
  if p_kind is null or p_kind not in ('VirtualMachine', 'VirtualMachineInstance', 'ControllerRevision',
                                      'VirtualMachineInstancetype', 'VirtualMachineClusterInstancetype') then
    raise exception 'vm_sync.sweep: unknown kind %', p_kind using errcode = 'invalid_parameter_value';
  end if;
  perform pg_advisory_xact_lock(vm_sync.ingest_lock_id());

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
  perform pg_advisory_xact_lock(vm_sync.ingest_lock_id());
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
