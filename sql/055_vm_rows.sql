-- =====================================================================
-- vm_sync.vm_rows: which public.vms rows hold a (namespace, vm_name)
-- =====================================================================
-- public.vms has only its primary key, and the contract forbids adding an
-- index, so finding the rows of a batch's VMs meant scanning all of vms on
-- every batch. vm_rows is the sync's own index of the live rows. The
-- application writes vms without telling us (no trigger may be added), so
-- an entry is a hint, never trusted: it is joined to vms by primary key
-- and used only while that row is live and still holds the same key. A key
-- with no such hit falls back to one scan of vms, and what the scan finds
-- is recorded. reconcile() makes the table exact (vm_sync.sync_vm_rows).
--
-- The one thing a hint can miss: a second live row that took a key which
-- already has a verified row (the application inserts a duplicate, or
-- renames another row onto it). That row is written from the next
-- reconcile() on, not by the batch (docs/contract.md#which-row).

-- The ids of the live vms rows of the given VMs. Callers hold the writer lock.
create or replace function vm_sync.vm_row_ids(p_namespaces text[], p_vm_names text[])
returns text[]
language plpgsql volatile
set plan_cache_mode = force_custom_plan
as $$
declare
  hit_ids  text[];
  miss_ns  text[];
  miss_vm  text[];
  found    record;
begin
  -- One row per (key, verified row), or one with a NULL id for a key without any: index lookups
  -- through vm_rows_key and vms_pkey per key, whatever the batch's size.
  with keys as (
    select distinct k.namespace, k.vm_name
      from unnest(p_namespaces, p_vm_names) as k(namespace, vm_name)
     where k.namespace is not null and k.vm_name is not null
  ),
  looked as (
    select k.namespace, k.vm_name, h.id
      from keys k
      left join lateral (
             select v.id
               from vm_sync.vm_rows r
               join public.vms v on v.id = r.id
              where r.namespace = k.namespace and r.vm_name = k.vm_name
                and v.deleted_at is null and v.namespace = k.namespace and v.vm_name = k.vm_name
           ) h on true
  )
  select array_agg(l.id) filter (where l.id is not null),
         array_agg(l.namespace) filter (where l.id is null),
         array_agg(l.vm_name) filter (where l.id is null)
    into hit_ids, miss_ns, miss_vm
    from looked l;

  if coalesce(cardinality(miss_ns), 0) = 0 then
    return coalesce(hit_ids, '{}');
  end if;

  -- One scan of vms for the keys without a verified row (a VM with no row yet, a row the
  -- application inserted, renamed or replaced since it was recorded).
  with misses as (
    select m.namespace, m.vm_name from unnest(miss_ns, miss_vm) as m(namespace, vm_name)
  ),
  scanned as (
    select v.id, v.namespace, v.vm_name
      from public.vms v
      join misses m on v.namespace = m.namespace and v.vm_name = m.vm_name
     where v.deleted_at is null
  ),
  -- Entries under these keys that failed the check (soft- or hard-deleted, renamed) go.
  dropped as (
    delete from vm_sync.vm_rows r
     using misses m
     where r.namespace = m.namespace and r.vm_name = m.vm_name
       and not exists (select 1 from scanned s where s.id = r.id)
  ),
  recorded as (
    insert into vm_sync.vm_rows (id, namespace, vm_name)
    select s.id, s.namespace, s.vm_name from scanned s
    on conflict (id) do update set namespace = excluded.namespace, vm_name = excluded.vm_name
  )
  select array_agg(s.id) as ids, count(*) as n into found from scanned s;

  -- A recorded row was missing from the lookup, so others may be too (the lookup was never filled,
  -- or the application added rows): the scan of vms is paid anyway, record every live row it lacks.
  if found.n > 0 then
    perform vm_sync.fill_vm_rows();
  end if;
  return coalesce(hit_ids, '{}') || coalesce(found.ids, '{}');
end;
$$;

comment on function vm_sync.vm_row_ids(text[], text[]) is
  'Internal: ids of the live vms rows of the given VMs, through vm_sync.vm_rows (verified) and one scan of vms for the rest';


-- Records every live vms row the lookup lacks or holds under another key; writes nothing when none.
create or replace function vm_sync.fill_vm_rows()
returns void
language sql volatile
as $$
  insert into vm_sync.vm_rows (id, namespace, vm_name)
  select v.id, v.namespace, v.vm_name
    from public.vms v
   where v.deleted_at is null and v.namespace is not null and v.vm_name is not null
     and not exists (select 1 from vm_sync.vm_rows r
                      where r.id = v.id and r.namespace = v.namespace and r.vm_name = v.vm_name)
  on conflict (id) do update set namespace = excluded.namespace, vm_name = excluded.vm_name
$$;

comment on function vm_sync.fill_vm_rows() is 'Internal: adds the live vms rows vm_sync.vm_rows lacks (or has under an old key)';


-- Makes the lookup exact: one entry per live vms row with a namespace and vm_name, under its key.
create or replace function vm_sync.sync_vm_rows()
returns void
language sql volatile
as $$
  delete from vm_sync.vm_rows r
   where not exists (select 1 from public.vms v
                      where v.id = r.id and v.deleted_at is null
                        and v.namespace = r.namespace and v.vm_name = r.vm_name);
  select vm_sync.fill_vm_rows();
$$;

comment on function vm_sync.sync_vm_rows() is 'Internal: rebuilds vm_sync.vm_rows from public.vms (reconcile), writing only what differs';
