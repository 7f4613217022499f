-- =====================================================================
-- Merge: staged snapshots -> public.vms, with change detection and NOTIFY
-- =====================================================================
-- Per VM (namespace, vm_name): a live VMI first, else the VM's spec, else
-- what the row has; a source that lacks a field never blanks it. A row is
-- written only when status, cpu_count, memory_mb or guest_os changes; each
-- write is appended to vm_sync.changes and announced on channel vm_changed.

-- The vm_changed payload. NOTIFY refuses payloads of 8000 bytes or more, so an oversized one is cut
-- down (long strings clipped, then the changes dropped) and marked "truncated"; the full change is
-- always in vm_sync.changes under the same seq.
create or replace function vm_sync.notification_payload(
  seq bigint, vm_id text, namespace text, vm_name text, changes jsonb, changed_at timestamptz)
returns text
language plpgsql immutable parallel safe
as $$
declare
  payload text;
begin
  payload := jsonb_build_object('seq', seq, 'id', vm_id, 'namespace', namespace, 'vm_name', vm_name,
                                'changes', changes, 'changed_at', changed_at)::text;
  if octet_length(payload) < 7900 then
    return payload;
  end if;
  payload := jsonb_build_object(
    'seq', seq, 'id', left(vm_id, 255), 'namespace', left(namespace, 253), 'vm_name', left(vm_name, 253),
    'changes', (select jsonb_object_agg(c.key, jsonb_build_object(
                         'old', case when jsonb_typeof(c.value -> 'old') = 'string'
                                     then to_jsonb(left(c.value ->> 'old', 256)) else c.value -> 'old' end,
                         'new', case when jsonb_typeof(c.value -> 'new') = 'string'
                                     then to_jsonb(left(c.value ->> 'new', 256)) else c.value -> 'new' end))
                  from jsonb_each(changes) as c),
    'changed_at', changed_at, 'truncated', true)::text;
  if octet_length(payload) < 7900 then
    return payload;
  end if;
  return jsonb_build_object('seq', seq, 'id', left(vm_id, 255), 'changed_at', changed_at, 'truncated', true)::text;
end;
$$;

comment on function vm_sync.notification_payload(bigint, text, text, text, jsonb, timestamptz) is
  'JSON text for a vm_changed notification, always under 8000 bytes (marked "truncated" when cut)';


-- What the staged snapshots say about each VM: the VM's values and the chosen live VMI's, side by
-- side, before any rule combines them. A VM's values are its instancetype's when one is staged
-- (vm_sync.instancetype_size, docs/contract.md#3b-instancetypes), else its template's. Two plans for two shapes of work: a batch's few VMs are looked
-- up one by one through the indexes of vm_sync.snapshots (linear whatever the planner guesses about
-- the batch); everything (reconcile) is one pass over the table with hash joins.
create or replace function vm_sync.merge_inputs(p_namespaces text[], p_vm_names text[], p_all boolean)
returns table (namespace text, vm_name text,
               vm_deleted boolean, vm_status text, vm_cpu_count integer, vm_memory_mb integer, vm_hint text,
               vmi_cpu_count integer, vmi_memory_mb integer, vmi_guest_os text)
language plpgsql stable
set plan_cache_mode = force_custom_plan
as $$
begin
  if p_all then
    return query
      with vm as (
        select s.namespace, s.name as vm_name, s.deleted, s.status,
               coalesce(it.cpu_count, s.cpu_count) as cpu_count, coalesce(it.memory_mb, s.memory_mb) as memory_mb,
               s.guest_os_hint
          from vm_sync.snapshots s
          left join lateral vm_sync.instancetype_size(s.namespace, s.instancetype_kind, s.instancetype_name,
                                                      s.instancetype_revision, s.instancetype_spec_revision) it on true
         where s.kind = 'VirtualMachine'
      ),
      -- Normally one VMI per VM; should there be more, prefer the one named like the VM, then the newest.
      vmi as (
        select distinct on (s.namespace, s.vm_name) s.namespace, s.vm_name, s.cpu_count, s.memory_mb, s.guest_os
          from vm_sync.snapshots s
         where s.kind = 'VirtualMachineInstance' and not s.deleted
         order by s.namespace, s.vm_name, (s.name = s.vm_name) desc, s.observed_at desc, s.name
      )
      select coalesce(vm.namespace, vmi.namespace), coalesce(vm.vm_name, vmi.vm_name),
             vm.deleted, vm.status, vm.cpu_count, vm.memory_mb, vm.guest_os_hint,
             vmi.cpu_count, vmi.memory_mb, vmi.guest_os
        from vm
        full join vmi on vmi.namespace = vm.namespace and vmi.vm_name = vm.vm_name;
  else
    return query
      with affected as (
        select distinct a.namespace, a.vm_name
          from unnest(p_namespaces, p_vm_names) as a(namespace, vm_name)
         where a.namespace is not null and a.vm_name is not null
      )
      select a.namespace, a.vm_name,
             vm.deleted, vm.status, vm.cpu_count, vm.memory_mb, vm.guest_os_hint,
             vmi.cpu_count, vmi.memory_mb, vmi.guest_os
        from affected a
        left join lateral (
               select s.deleted, s.status, coalesce(it.cpu_count, s.cpu_count) as cpu_count,
                      coalesce(it.memory_mb, s.memory_mb) as memory_mb, s.guest_os_hint
                 from vm_sync.snapshots s
                 left join lateral vm_sync.instancetype_size(s.namespace, s.instancetype_kind, s.instancetype_name,
                                                             s.instancetype_revision, s.instancetype_spec_revision) it on true
                where s.kind = 'VirtualMachine' and s.namespace = a.namespace and s.name = a.vm_name
             ) vm on true
        left join lateral (
               select s.cpu_count, s.memory_mb, s.guest_os
                 from vm_sync.snapshots s
                where s.namespace = a.namespace and s.vm_name = a.vm_name
                  and s.kind = 'VirtualMachineInstance' and not s.deleted
                order by (s.name = s.vm_name) desc, s.observed_at desc, s.name
                limit 1
             ) vmi on true;
  end if;
end;
$$;

comment on function vm_sync.merge_inputs(text[], text[], boolean) is
  'Internal: per VM, the staged VM''s values and its chosen live VMI''s (for the given VMs, or all)';


-- Merges the given VMs (or, with p_all, every staged one). Returns
-- {"vms_updated": n, "field_updates": [{namespace, field, result, count}]}.
-- Callers hold the ingest lock, so change-feed sequence numbers commit in order.
drop function if exists vm_sync.merge(text[], text[]);
create or replace function vm_sync.merge(p_namespaces text[], p_vm_names text[], p_all boolean default false)
returns jsonb
language plpgsql volatile
-- Plan every call with its actual arrays: a batch reaches public.vms (which has no index of ours on
-- namespace, vm_name) by primary key through the ids vm_row_ids found, reconcile by a hash join,
-- and only the real values tell the planner which.
set plan_cache_mode = force_custom_plan
as $$
declare
  seqs bigint[];
  ids  text[];
begin
  -- VMs a previous merge had to leave (their row was locked) are merged with this call's.
  if p_all then
    delete from vm_sync.merge_pending;
  else
    with taken as (delete from vm_sync.merge_pending returning namespace, vm_name)
    select coalesce(p_namespaces, '{}') || array_agg(t.namespace), coalesce(p_vm_names, '{}') || array_agg(t.vm_name)
      into p_namespaces, p_vm_names
      from taken t;
  end if;
  if not p_all and coalesce(cardinality(p_namespaces), 0) = 0 then
    return jsonb_build_object('vms_updated', 0, 'field_updates', '[]'::jsonb);
  end if;
  -- The rows to consider: a batch's through vm_sync.vm_rows (sql/055_vm_rows.sql), by primary key;
  -- everything (reconcile) by one hash join, after which the lookup is made exact.
  if p_all then
    perform vm_sync.sync_vm_rows();
  else
    ids := vm_sync.vm_row_ids(p_namespaces, p_vm_names);
    if cardinality(ids) = 0 then
      return jsonb_build_object('vms_updated', 0, 'field_updates', '[]'::jsonb);
    end if;
  end if;

  with desired as (
    select i.namespace, i.vm_name,
           case when i.vm_deleted then 'DELETED' else i.vm_status end                       as status,
           coalesce(i.vmi_cpu_count, case when not i.vm_deleted then i.vm_cpu_count end) as cpu_count,
           coalesce(i.vmi_memory_mb, case when not i.vm_deleted then i.vm_memory_mb end) as memory_mb,
           i.vmi_guest_os                                                                as agent_os,
           case when not i.vm_deleted then i.vm_hint end                                 as hint
      from vm_sync.merge_inputs(p_namespaces, p_vm_names, p_all) as i
  ),
  -- No FOR UPDATE here: locking every matched row would write to rows that do not change. Only
  -- the rows that differ are locked (below), and the UPDATE re-checks that they still hold the old values.
  target as (
    select v.id, v.namespace, v.vm_name,
           v.status, v.cpu_count, v.memory_mb, v.guest_os,
           coalesce(d.status, v.status)       as new_status,
           coalesce(d.cpu_count, v.cpu_count) as new_cpu_count,
           coalesce(d.memory_mb, v.memory_mb) as new_memory_mb,
           -- A guest agent's word wins; a hint only fills an empty guest_os.
           case when d.agent_os is not null then d.agent_os
                when coalesce(v.guest_os, '') <> '' then v.guest_os
                else coalesce(d.hint, v.guest_os)
           end                                as new_guest_os
      from public.vms v
      join desired d on v.namespace = d.namespace and v.vm_name = d.vm_name
     where v.deleted_at is null
       and (p_all or v.id = any(ids))
  ),
  diff as (
    select t.*,
           coalesce(case when t.status is distinct from t.new_status then jsonb_build_object(
                      'status', jsonb_build_object('old', t.status, 'new', t.new_status)) end, '{}')
        || coalesce(case when t.cpu_count is distinct from t.new_cpu_count then jsonb_build_object(
                      'cpu_count', jsonb_build_object('old', t.cpu_count, 'new', t.new_cpu_count)) end, '{}')
        || coalesce(case when t.memory_mb is distinct from t.new_memory_mb then jsonb_build_object(
                      'memory_mb', jsonb_build_object('old', t.memory_mb, 'new', t.new_memory_mb)) end, '{}')
        || coalesce(case when t.guest_os is distinct from t.new_guest_os then jsonb_build_object(
                      'guest_os', jsonb_build_object('old', t.guest_os, 'new', t.new_guest_os)) end, '{}')
           as changes
      from target t
     where (t.status, t.cpu_count, t.memory_mb, t.guest_os)
           is distinct from (t.new_status, t.new_cpu_count, t.new_memory_mb, t.new_guest_os)
  ),
  -- The rows to change are locked in one order (id) and never waited for: a row the application
  -- holds locked is skipped and left in vm_sync.merge_pending for the next merge. So the merge is
  -- never part of a deadlock, and an application transaction left open cannot stall the sync.
  -- (Each CTE below joins a table, never another CTE: the planner guesses CTE scans at one row, and
  -- a join of two of them is a nested loop, quadratic in the rows changed.)
  locked as (
    select d.*
      from diff d
      join public.vms v on v.id = d.id
     order by d.id
       for update of v skip locked
  ),
  updated as (
    update public.vms v
       set status = d.new_status, cpu_count = d.new_cpu_count, memory_mb = d.new_memory_mb,
           guest_os = d.new_guest_os, updated_at = now()
      from locked d
     where v.id = d.id
       -- Re-checked on the latest row version if the application changed it meanwhile: then this
       -- row is left for the next merge, and the change feed never records a wrong "old" value.
       and v.deleted_at is null
       and (v.status, v.cpu_count, v.memory_mb, v.guest_os) is not distinct from (d.status, d.cpu_count, d.memory_mb, d.guest_os)
    -- The change rides along: joining diff to updated again would be a nested loop over two CTE
    -- scans the planner guesses at one row each (quadratic: 12,500 rows took 15 s).
    returning v.id, d.namespace, d.vm_name, d.changes
  ),
  feed as (
    insert into vm_sync.changes (vm_id, namespace, vm_name, changes)
    select u.id, u.namespace, u.vm_name, u.changes
      from updated u
     order by u.id
    returning seq
  ),
  -- Skipped (locked by someone else) or changed meanwhile: merged again by the next call.
  deferred as (
    insert into vm_sync.merge_pending (namespace, vm_name)
    select x.namespace, x.vm_name
      from (select d.namespace, d.vm_name from diff d
            except
            select u.namespace, u.vm_name from updated u) x
    on conflict do nothing
  )
  select array_agg(f.seq order by f.seq) into seqs from feed f;

  if seqs is null then
    return jsonb_build_object('vms_updated', 0, 'field_updates', '[]'::jsonb);
  end if;

  -- Sent on commit, in seq order; one per changed row.
  perform pg_notify('vm_changed', vm_sync.notification_payload(c.seq, c.vm_id, c.namespace, c.vm_name, c.changes, c.changed_at))
     from vm_sync.changes c
    where c.seq = any(seqs)
    order by c.seq;

  return jsonb_build_object(
    'vms_updated', cardinality(seqs),
    'field_updates', coalesce((
      select jsonb_agg(jsonb_build_object('namespace', x.namespace, 'field', x.field, 'result', 'updated', 'count', x.n)
                       order by x.namespace, x.field)
        from (select c.namespace, k.field, count(*) as n
                from vm_sync.changes c
               cross join lateral jsonb_object_keys(c.changes) as k(field)
               where c.seq = any(seqs)
               group by c.namespace, k.field) x), '[]'::jsonb));
end;
$$;

comment on function vm_sync.merge(text[], text[], boolean) is
  'Internal: writes the contract''s values into the live vms rows of the given VMs (or all) when they changed; notifies vm_changed';
