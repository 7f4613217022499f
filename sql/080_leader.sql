-- =====================================================================
-- Leadership, fencing and checkpoints for the watcher
-- =====================================================================
-- The leader is the session that holds the session-level advisory lock
-- leader_lock_id(). The watcher writes only on that session, and every
-- write it makes starts with assert_leader(): a leader that lost its lock
-- or its session can write nothing more (fencing by construction).

create or replace function vm_sync.leader_lock_id()
returns bigint
language sql immutable parallel safe
as $$ select 7358200110000000001::bigint $$;

comment on function vm_sync.leader_lock_id() is 'Session advisory lock held by the leading watcher';


-- pg_locks splits a bigint advisory key into classid (high 32 bits) and objid (low 32 bits).
create or replace function vm_sync.holds_leader_lock()
returns boolean
language sql stable
as $$
  select exists (
    select 1 from pg_catalog.pg_locks l
     where l.locktype = 'advisory' and l.granted and l.objsubid = 1
       and l.pid = pg_backend_pid()
       and l.classid::bigint = (vm_sync.leader_lock_id() >> 32)
       and l.objid::bigint = (vm_sync.leader_lock_id() & 4294967295))
$$;

comment on function vm_sync.holds_leader_lock() is 'True when this session holds the leader lock';


create or replace function vm_sync.try_lead(holder text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  t bigint;
begin
  if vm_sync.holds_leader_lock() then
    update vm_sync.leader set heartbeat_at = now() where id = 1 returning term into t;
    return t;
  end if;
  if not pg_try_advisory_lock(vm_sync.leader_lock_id()) then
    return null;
  end if;
  update vm_sync.leader
     set holder = left(try_lead.holder, 200), pid = pg_backend_pid(), term = term + 1,
         acquired_at = now(), heartbeat_at = now()
   where id = 1
  returning term into t;
  return t;
end;
$$;

comment on function vm_sync.try_lead(text) is
  'Takes the leader lock for this session if free; returns the new term, the current term if already leading, or NULL';


create or replace function vm_sync.assert_leader()
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  t bigint;
begin
  if not vm_sync.holds_leader_lock() then
    raise exception 'vm_sync: this session does not hold the leader lock; it may not write'
      using errcode = 'VS001', hint = 'Another watcher leads, or this session lost its lock. Campaign again.';
  end if;
  update vm_sync.leader set heartbeat_at = now() where id = 1 returning term into t;
  return t;
end;
$$;

comment on function vm_sync.assert_leader() is 'Raises SQLSTATE VS001 unless this session holds the leader lock; returns the term';


create or replace function vm_sync.resign()
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if vm_sync.holds_leader_lock() then
    update vm_sync.leader set holder = null, pid = null where id = 1 and pid = pg_backend_pid();
  end if;
  -- Session advisory locks stack; release every level this session took.
  while pg_advisory_unlock(vm_sync.leader_lock_id()) loop
  end loop;
end;
$$;

comment on function vm_sync.resign() is 'Releases the leader lock held by this session';


-- checkpoints: [{"kind": "VirtualMachine", "scope": "", "resourceVersion": "123"}, ...]
create or replace function vm_sync.save_checkpoints(checkpoints jsonb)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform vm_sync.assert_leader();
  if checkpoints is null or jsonb_typeof(checkpoints) <> 'array' then
    return;
  end if;
  insert into vm_sync.watch_state as w (kind, scope, resource_version, updated_at)
  select c ->> 'kind', coalesce(c ->> 'scope', ''), c ->> 'resourceVersion', now()
    from jsonb_array_elements(checkpoints) as c
   where jsonb_typeof(c) = 'object' and c ->> 'kind' is not null and c ->> 'resourceVersion' is not null
  on conflict (kind, scope) do update
     set resource_version = excluded.resource_version, updated_at = excluded.updated_at;
end;
$$;

comment on function vm_sync.save_checkpoints(jsonb) is
  'Fenced: records the last committed resourceVersion per (kind, scope)';


create or replace function vm_sync.apply_batch(events jsonb, checkpoints jsonb, merge boolean default true)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  summary jsonb;
begin
  perform vm_sync.assert_leader();
  summary := case when merge then vm_sync.ingest(events) else vm_sync.stage(events) end;
  perform vm_sync.save_checkpoints(checkpoints);
  update vm_sync.leader as l
     set last_batch_at = now(), batches = l.batches + 1, events = l.events + coalesce((summary ->> 'events')::bigint, 0)
   where l.id = 1;
  return summary;
end;
$$;

comment on function vm_sync.apply_batch(jsonb, jsonb, boolean) is
  'The watcher''s write: fenced, then ingest (or stage when merge is false) and the checkpoints, in one transaction';


create or replace function vm_sync.checkpoints()
returns table (kind text, scope text, resource_version text, updated_at timestamptz)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select w.kind, w.scope, w.resource_version, w.updated_at from vm_sync.watch_state w order by 1, 2
$$;

comment on function vm_sync.checkpoints() is 'Saved resourceVersions, for a watcher resuming after a restart';


create or replace function vm_sync.populated_ratio()
returns table (field text, ratio double precision)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  with live as (
    select v.cpu_count, v.memory_mb, v.guest_os
      from public.vms v
     where v.deleted_at is null and v.vm_name is not null and v.namespace is not null
  )
  select f.field, f.ratio
    from (
      select 'cpu_count' as field, count(l.cpu_count)::float8 / nullif(count(*), 0) as ratio from live l
      union all
      select 'memory_mb', count(l.memory_mb)::float8 / nullif(count(*), 0) from live l
      union all
      select 'guest_os', count(nullif(l.guest_os, ''))::float8 / nullif(count(*), 0) from live l
    ) f
$$;

comment on function vm_sync.populated_ratio() is 'Share of live vms rows with cpu_count, memory_mb and guest_os filled (NULL ratio when there are none)';
