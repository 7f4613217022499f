-- =====================================================================
-- status_report(): everything `ssvirt-vm-sync status` shows, for readers
-- =====================================================================
-- SECURITY DEFINER, so an on-call person with vm_sync_reader only gets the
-- whole health picture: counts, ages, names and checkpoints, never a raw
-- object (which may carry cloud-init secrets) nor a rejected value.
-- Problems are judged here too, so every client shows the same ones.

create or replace function vm_sync.status_report(stale_after_seconds integer default 60)
returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  l record;
  r jsonb;
  watching jsonb;
  problems jsonb := '[]'::jsonb;
  lacking bigint;
begin
  select le.holder, le.pid, le.term, le.acquired_at, le.heartbeat_at, w.last_batch_at, w.batches, w.events, le.watching,
         case when le.watches_term = le.term and cardinality(le.watches_down) > 0 then le.watches_down end as watches_down,
         extract(epoch from now() - le.watches_down_since)::float8 as watches_down_seconds,
         extract(epoch from now() - le.heartbeat_at)::float8 as heartbeat_age,
         a.pid as lock_pid, a.application_name, host(a.client_addr) as client_addr
    into l
    from vm_sync.leader le
   cross join vm_sync.writer w
    -- The lease is held when it is current and the recorded writer session is connected.
    left join pg_catalog.pg_stat_activity a
      on a.pid = le.pid and a.datname = current_database() and le.lease_expires_at > clock_timestamp()
   where le.id = 1;
  watching := l.watching;

  r := jsonb_build_object(
    'database', current_database(),
    'now', now(),
    'schemaVersion', (select max(m.name) from vm_sync.migrations m),
    'cluster', (select jsonb_build_object('server', c.server, 'kubeSystemUid', c.kube_system_uid, 'recordedAt', c.recorded_at)
                  from vm_sync.cluster_identity c where c.id = 1),
    'leader', jsonb_build_object(
      'holder', l.holder, 'backendPid', l.pid, 'term', coalesce(l.term, 0), 'acquiredAt', l.acquired_at,
      'heartbeatAt', l.heartbeat_at, 'heartbeatAgeSeconds', l.heartbeat_age, 'lastBatchAt', l.last_batch_at,
      'batches', coalesce(l.batches, 0), 'events', coalesce(l.events, 0), 'lockHeld', l.lock_pid is not null,
      'lockHolderPid', l.lock_pid, 'lockHolderApplication', l.application_name, 'lockHolderAddress', l.client_addr,
      'watching', watching,
      'watchesDown', case when l.watches_down is not null
                          then jsonb_build_object('watches', to_jsonb(l.watches_down), 'seconds', coalesce(l.watches_down_seconds, 0)) end),
    'watches', (select coalesce(jsonb_agg(jsonb_build_object(
                  'kind', w.kind, 'scope', w.scope, 'resourceVersion', w.resource_version, 'updatedAt', w.updated_at,
                  'ageSeconds', extract(epoch from now() - w.updated_at)::float8, 'relists', w.relists,
                  'lastRelistAt', w.last_relist_at,
                  'watched', watching is null or watching ? (w.kind || '/' || w.scope))
                  order by w.kind, w.scope), '[]'::jsonb)
                  from vm_sync.watch_state w),
    'lists', (select coalesce(jsonb_agg(jsonb_build_object(
                  'kind', p.kind, 'scope', p.scope, 'reason', p.reason, 'startedAt', p.started_at, 'updatedAt', p.updated_at,
                  'finishedAt', p.finished_at, 'objects', p.objects, 'pages', p.pages, 'remaining', p.remaining,
                  'seconds', extract(epoch from coalesce(p.finished_at, p.updated_at) - p.started_at)::float8,
                  -- What is left at the rate so far, as of the last save; null when done or not known.
                  'etaSeconds', case when p.finished_at is null and p.remaining is not null and p.objects > 0
                                          and p.updated_at > p.started_at
                                     then round(p.remaining / (p.objects / extract(epoch from p.updated_at - p.started_at)))::float8 end,
                  'savedSecondsAgo', extract(epoch from now() - p.updated_at)::float8)
                  order by p.kind, p.scope), '[]'::jsonb)
                  from vm_sync.list_progress p),
    'apis', (select coalesce(jsonb_agg(jsonb_build_object('group', x.api_group, 'version', x.version, 'available', x.available, 'checkedAt', x.checked_at)
                                  order by x.api_group), '[]'::jsonb)
               from vm_sync.api_status x),
    'staged', (select coalesce(jsonb_agg(jsonb_build_object('kind', s.kind, 'live', s.live, 'deleted', s.deleted) order by s.kind), '[]'::jsonb)
                 from (select sn.kind, count(*) filter (where not sn.deleted) as live, count(*) filter (where sn.deleted) as deleted
                         from vm_sync.snapshots sn group by sn.kind) s),
    'vms', (with v as (
              select v.cpu_count, v.memory_mb, v.guest_os,
                     exists (select 1 from vm_sync.snapshots s where s.namespace = v.namespace and s.vm_name = v.vm_name) as managed
                from public.vms v where v.deleted_at is null)
            select jsonb_build_object(
              'live', count(*),
              'managed', count(*) filter (where managed),
              'managedWithCpu', count(*) filter (where managed and cpu_count is not null),
              'managedWithMemory', count(*) filter (where managed and memory_mb is not null),
              'managedWithGuestOs', count(*) filter (where managed and guest_os is not null),
              'managedComplete', count(*) filter (where managed and cpu_count is not null and memory_mb is not null and guest_os is not null),
              'unmanaged', count(*) filter (where not managed),
              'unmanagedWithData', count(*) filter (where not managed and (cpu_count is not null or memory_mb is not null or guest_os is not null)))
              from v),
    'rejectsLastHour', (select jsonb_build_object(
                          'total', coalesce(sum(x.count), 0),
                          'byReason', coalesce(jsonb_agg(jsonb_build_object('reason', x.reason, 'count', x.count, 'last', x.last)
                                                         order by x.count desc, x.reason), '[]'::jsonb))
                          from (select rj.reason, count(*) as count, max(rj.rejected_at) as last
                                  from vm_sync.rejects rj where rj.rejected_at > now() - interval '1 hour'
                                 group by rj.reason order by count(*) desc, rj.reason limit 20) x),
    'changes', (select jsonb_build_object('rows', count(*), 'firstSeq', min(c.seq), 'lastSeq', max(c.seq), 'lastAt', max(c.changed_at))
                  from vm_sync.changes c));

  -- Problems, in the order an on-call person should look at them.
  if l.lock_pid is null then
    problems := problems || to_jsonb(case when l.holder is not null
      then format('no watcher holds the leader lease (last leader %s is gone or its lease expired)', l.holder)
      else 'no watcher leads: is `ssvirt-vm-sync run` running?' end);
  elsif l.pid is distinct from l.lock_pid then
    problems := problems || to_jsonb(format('the leader row names backend pid %s but backend %s holds the lease', l.pid, l.lock_pid));
  end if;
  if l.lock_pid is not null and l.heartbeat_age > stale_after_seconds then
    problems := problems || to_jsonb(format('the leader''s last heartbeat is %ss old (more than %ss)', round(l.heartbeat_age::numeric), stale_after_seconds));
  end if;
  if l.lock_pid is not null and l.watches_down is not null then
    problems := problems || to_jsonb(format('the leader''s watches are not established: %s (for %ss); it steps down after STEP_DOWN_AFTER_MS',
                                            array_to_string(l.watches_down, ', '), round(coalesce(l.watches_down_seconds, 0)::numeric)));
  end if;
  if jsonb_array_length(r -> 'watches') = 0 then
    problems := problems || to_jsonb('no watch checkpoint yet: the watcher has not finished a first list'::text);
  end if;
  if watching is not null then
    problems := problems || coalesce((
      select jsonb_agg(to_jsonb(format('stale checkpoint %s/%s: no longer watched (saved %s ago); delete it when the namespace is gone for good',
                                       w.kind, case when w.scope = '' then '(cluster)' else w.scope end,
                                       date_trunc('second', now() - w.updated_at))) order by w.kind, w.scope)
        from vm_sync.watch_state w where not watching ? (w.kind || '/' || w.scope)), '[]'::jsonb);
  end if;
  lacking := (r -> 'vms' ->> 'managed')::bigint
           - least((r -> 'vms' ->> 'managedWithCpu')::bigint, (r -> 'vms' ->> 'managedWithMemory')::bigint);
  if lacking > 0 then
    problems := problems || to_jsonb(format('%s or more managed vms row(s) lack cpu_count or memory_mb (see vm_sync.recent_rejects)', lacking));
  end if;
  return r || jsonb_build_object('problems', problems);
end;
$$;

comment on function vm_sync.status_report(integer) is
  'The sync''s health as one JSON object (leader, cluster, checkpoints, list progress, staged, vms, rejects, changes, problems); for vm_sync_reader';


do $grants$
begin
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'vm_sync_reader') then
    grant execute on function vm_sync.status_report(integer) to vm_sync_reader;
  end if;
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'vm_sync_writer') then
    grant execute on function vm_sync.status_report(integer) to vm_sync_writer;
  end if;
end
$grants$;
