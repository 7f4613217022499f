-- =====================================================================
-- Leadership, fencing and writer serialisation for the watcher
-- =====================================================================
-- The leader holds a lease: the row vm_sync.leader names its writer
-- session (pid and backend_start), its term, and when the lease expires
-- in the database's clock. The watcher renews it from a session of its
-- own (vm_sync.renew_lease), so a renewal never queues behind a write.
-- Every write transaction first locks the one row of vm_sync.writer and
-- only then checks that its session is the leader with a current lease
-- (vm_sync.fence): a takeover also locks that row, so once a new leader
-- is recorded no write of the old one can commit after it.
-- Nothing here is an advisory lock: those are open to every role that can
-- connect. The tables are the owner's; a locking clause needs UPDATE
-- privilege, so no other role can lock these rows, and only
-- vm_sync_writer may call the functions that change them.

-- The recorded leader's own backend is alive: its pid is a live session of this database (and, when
-- this role may see it, one that started when the leader recorded it: a reused pid is not the leader).
create or replace function vm_sync.backend_alive(p_pid integer, p_backend_start timestamptz)
returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select p_pid is not null and exists (
    select 1 from pg_catalog.pg_stat_activity a
     where a.pid = p_pid and a.datname = pg_catalog.current_database()
       and (p_backend_start is null or a.backend_start is null or a.backend_start = p_backend_start))
$$;

comment on function vm_sync.backend_alive(integer, timestamptz) is
  'Internal: true when the session p_pid (started at p_backend_start) is connected to this database';


create or replace function vm_sync.lease_length()
returns interval
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select s.value::interval from vm_sync.settings s where s.name = 'leader_lease'), interval '15 seconds')
$$;

comment on function vm_sync.lease_length() is 'Internal: the leader lease (vm_sync.settings leader_lease)';


-- Serialises writers: every write transaction of the sync (the watcher's, a DBA's ingest or
-- reconcile) holds this row lock until it commits, so change-feed sequence numbers commit in order.
create or replace function vm_sync.lock_writer()
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
  select null::void from vm_sync.writer w where w.id = 1 for update
$$;

comment on function vm_sync.lock_writer() is 'Internal: the row lock that serialises every write to vm_sync and vms';


-- The fence of every watcher write: this session is the leader, its lease current. Taken after the
-- writer lock, so a takeover (which waits for that lock) is either seen here or after this commit.
create or replace function vm_sync.fence()
returns bigint
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  l record;
begin
  perform vm_sync.lock_writer();
  select * into l from vm_sync.leader where id = 1;
  if l.pid is distinct from pg_backend_pid() or l.lease_expires_at is null or l.lease_expires_at <= clock_timestamp() then
    raise exception 'vm_sync: this session is not the leader (or its lease expired); it may not write'
      using errcode = 'VS001', hint = 'Another watcher leads, or this one stopped renewing its lease. Campaign again.';
  end if;
  return l.term;
end;
$$;

comment on function vm_sync.fence() is
  'Internal: locks the writer row, then raises VS001 unless this session is the leader with a current lease; returns the term';


create or replace function vm_sync.try_lead(holder text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  l record;
  t bigint;
begin
  select * into l from vm_sync.leader where id = 1;
  if l.pid = pg_backend_pid() and l.lease_expires_at > clock_timestamp() then
    update vm_sync.leader set heartbeat_at = now(), lease_expires_at = clock_timestamp() + vm_sync.lease_length()
     where id = 1 returning term into t;
    return t;
  end if;
  if l.pid is not null and l.lease_expires_at > clock_timestamp() and vm_sync.backend_alive(l.pid, l.backend_start) then
    return null;
  end if;
  -- Free, expired, or its session is gone. Wait for a write of the old leader still in flight, then
  -- record this session; a rival standby that got here first changed the term, and this one yields.
  perform vm_sync.lock_writer();
  update vm_sync.leader
     set holder = left(try_lead.holder, 200), pid = pg_backend_pid(),
         backend_start = (select a.backend_start from pg_catalog.pg_stat_activity a where a.pid = pg_backend_pid()),
         term = term + 1, acquired_at = now(), heartbeat_at = now(),
         lease_expires_at = clock_timestamp() + vm_sync.lease_length()
   where id = 1 and term = l.term
  returning term into t;
  return t;
end;
$$;

comment on function vm_sync.try_lead(text) is
  'Takes the lease for this session when it is free, expired, or its holder''s session is gone; returns the new term, the current term if already leading (renewed), or NULL';


-- From any session of the leader (its heartbeat has one of its own): extends the lease of `term`
-- while the recorded writer session is alive. Raises VS001 otherwise.
create or replace function vm_sync.renew_lease(term bigint)
returns timestamptz
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  l record;
  expires timestamptz;
begin
  select * into l from vm_sync.leader where id = 1;
  if l.term is distinct from renew_lease.term or l.lease_expires_at <= clock_timestamp()
     or not vm_sync.backend_alive(l.pid, l.backend_start) then
    raise exception 'vm_sync: term % is not the current lease', renew_lease.term
      using errcode = 'VS001', hint = 'The lease expired or was taken over. Campaign again.';
  end if;
  update vm_sync.leader as x set heartbeat_at = now(), lease_expires_at = clock_timestamp() + vm_sync.lease_length()
   where x.id = 1 and x.term = renew_lease.term
  returning x.lease_expires_at into expires;
  if expires is null then
    raise exception 'vm_sync: term % was taken over', renew_lease.term using errcode = 'VS001';
  end if;
  return expires;
end;
$$;

comment on function vm_sync.renew_lease(bigint) is
  'Extends the lease of term (while its writer session is alive); returns the new expiry; raises VS001 when the term is no longer current';


create or replace function vm_sync.assert_leader()
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  l record;
begin
  select * into l from vm_sync.leader where id = 1;
  if l.pid is distinct from pg_backend_pid() or l.lease_expires_at is null or l.lease_expires_at <= clock_timestamp() then
    raise exception 'vm_sync: this session is not the leader (or its lease expired); it may not write'
      using errcode = 'VS001', hint = 'Another watcher leads, or this one stopped renewing its lease. Campaign again.';
  end if;
  return l.term;
end;
$$;

comment on function vm_sync.assert_leader() is 'Raises SQLSTATE VS001 unless this session is the leader with a current lease; returns the term (locks nothing)';


create or replace function vm_sync.resign()
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  update vm_sync.leader set holder = null, pid = null, backend_start = null, lease_expires_at = null
   where id = 1 and pid = pg_backend_pid();
end;
$$;

comment on function vm_sync.resign() is 'Ends this session''s lease (if it holds it), so a standby takes over at once';


create or replace function vm_sync.current_leader(out holder text, out pid integer, out term bigint, out connected boolean)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select l.holder, l.pid, l.term,
         coalesce(l.lease_expires_at > clock_timestamp() and vm_sync.backend_alive(l.pid, l.backend_start), false)
    from vm_sync.leader l where l.id = 1
$$;

comment on function vm_sync.current_leader() is
  'Who leads: the recorded holder, its writer session pid, the term, and whether that session is connected with a current lease';


-- checkpoints: [{"kind": "VirtualMachine", "scope": "", "resourceVersion": "123"}, ...]
create or replace function vm_sync.save_checkpoints(checkpoints jsonb)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform vm_sync.fence();
  if checkpoints is null or jsonb_typeof(checkpoints) <> 'array' then
    return;
  end if;
  insert into vm_sync.watch_state as w (kind, scope, resource_version, updated_at)
  select c ->> 'kind', coalesce(c ->> 'scope', ''), c ->> 'resourceVersion', now()
    from jsonb_array_elements(checkpoints) as c
   where jsonb_typeof(c) = 'object' and c ->> 'kind' is not null and c ->> 'resourceVersion' is not null
  on conflict (kind, scope) do update
     set resource_version = excluded.resource_version, updated_at = excluded.updated_at;
  -- The staging table these checkpoints describe (see staging_lost()).
  update vm_sync.writer set snapshots_filenode = pg_catalog.pg_relation_filenode('vm_sync.snapshots')
   where id = 1 and snapshots_filenode is distinct from pg_catalog.pg_relation_filenode('vm_sync.snapshots');
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
  perform vm_sync.fence();
  summary := case when merge then vm_sync.ingest(events) else vm_sync.stage(events) end;
  perform vm_sync.save_checkpoints(checkpoints);
  update vm_sync.writer as w
     set last_batch_at = now(), batches = w.batches + 1, events = w.events + coalesce((summary ->> 'events')::bigint, 0)
   where w.id = 1;
  return summary;
end;
$$;

comment on function vm_sync.apply_batch(jsonb, jsonb, boolean) is
  'The watcher''s write: fenced, then ingest (or stage when merge is false) and the checkpoints, in one transaction';


-- After a full list of kind in scope ('' = cluster-wide): what the list no longer has is deleted,
-- and the list's resourceVersion becomes the watch's checkpoint. Fenced, one transaction.
create or replace function vm_sync.finish_list(kind text, scope text, present_uids text[], resource_version text, merge boolean)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  summary jsonb;
begin
  perform vm_sync.fence();
  summary := vm_sync.sweep(finish_list.kind, case when coalesce(finish_list.scope, '') = '' then null else array[finish_list.scope] end,
                           present_uids, merge);
  perform vm_sync.save_checkpoints(jsonb_build_array(jsonb_build_object(
            'kind', finish_list.kind, 'scope', coalesce(finish_list.scope, ''), 'resourceVersion', resource_version)));
  return summary;
end;
$$;

comment on function vm_sync.finish_list(text, text, text[], text, boolean) is
  'The watcher''s end of a list: fenced, then sweep (merging what is gone unless merge is false) and the list''s checkpoint, in one transaction';


-- The watcher's periodic (and cold start's) reconcile: fenced.
create or replace function vm_sync.leader_reconcile()
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform vm_sync.fence();
  return vm_sync.reconcile_summary();
end;
$$;

comment on function vm_sync.leader_reconcile() is
  'The watcher''s reconcile: fenced, then reconcile_summary()';


-- Checkpoints present, snapshots gone: vm_sync.snapshots was truncated (a new relfilenode, and empty)
-- after the last checkpoint was saved. Resuming from those checkpoints would never stage the objects
-- again; the watcher relists instead. Cheap: a catalog lookup and two one-row probes.
create or replace function vm_sync.staging_lost()
returns boolean
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(w.snapshots_filenode is not null
                  and w.snapshots_filenode <> pg_catalog.pg_relation_filenode('vm_sync.snapshots')
                  and exists (select 1 from vm_sync.watch_state s where s.resource_version is not null)
                  and not exists (select 1 from vm_sync.snapshots), false)
    from vm_sync.writer w where w.id = 1
$$;

comment on function vm_sync.staging_lost() is
  'True when vm_sync.snapshots was emptied (TRUNCATE) after the saved checkpoints: they must not be resumed from';


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
