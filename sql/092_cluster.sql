-- =====================================================================
-- The cluster the checkpoints belong to, the term's watches, list progress
-- =====================================================================
-- A resourceVersion is only meaningful on the API server that issued it.
-- At the start of every term the watcher states which cluster it talks to
-- (server URL, kube-system namespace uid when it may read it); when that is
-- not the cluster whose checkpoints are saved, the checkpoints are dropped
-- and the watcher relists.

create or replace function vm_sync.begin_term(server text, kube_system_uid text, watching jsonb)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  saved vm_sync.cluster_identity;
  other boolean;
  dropped integer := 0;
begin
  perform vm_sync.fence();  -- the writer row, then the lease: no old leader writes after this
  select * into saved from vm_sync.cluster_identity where id = 1 for update;
  -- The namespace uid identifies a cluster across URLs (a load balancer, a renamed route); without
  -- it on either side, the server URL is all there is.
  other := saved.id is not null and case
    when saved.kube_system_uid is not null and begin_term.kube_system_uid is not null
      then saved.kube_system_uid <> begin_term.kube_system_uid
    else saved.server <> begin_term.server
  end;
  if other or saved.id is null then
    if other or exists (select 1 from vm_sync.watch_state) then
      -- Checkpoints of an unknown or another cluster cannot be resumed from.
      delete from vm_sync.watch_state;
      get diagnostics dropped = row_count;
    end if;
    insert into vm_sync.cluster_identity as c (id, server, kube_system_uid, recorded_at)
    values (1, begin_term.server, begin_term.kube_system_uid, now())
    on conflict (id) do update set server = excluded.server, kube_system_uid = excluded.kube_system_uid, recorded_at = now();
  elsif saved.server is distinct from begin_term.server or saved.kube_system_uid is distinct from begin_term.kube_system_uid then
    -- Same cluster, reached another way (or its uid newly readable): remember the latest.
    update vm_sync.cluster_identity
       set server = begin_term.server, kube_system_uid = coalesce(begin_term.kube_system_uid, kube_system_uid), recorded_at = now()
     where id = 1;
  end if;
  update vm_sync.leader set watching = begin_term.watching where id = 1;
  return jsonb_build_object(
    'other_cluster', coalesce(other, false),
    'checkpoints_dropped', dropped,
    'previous_server', saved.server,
    'previous_kube_system_uid', saved.kube_system_uid);
end;
$$;

comment on function vm_sync.begin_term(text, text, jsonb) is
  'Fenced: records the API server of this term and its watches; drops the checkpoints when they belong to another cluster';


-- progress: [{"kind", "scope", "reason", "objects", "pages", "remaining", "done"}, ...]
create or replace function vm_sync.save_list_progress(progress jsonb)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform vm_sync.assert_leader();
  insert into vm_sync.list_progress as p (kind, scope, reason, started_at, updated_at, finished_at, objects, pages, remaining)
  select e ->> 'kind', coalesce(e ->> 'scope', ''), e ->> 'reason',
         coalesce((e ->> 'startedAt')::timestamptz, now()), now(),
         case when (e ->> 'done')::boolean then now() end,
         coalesce((e ->> 'objects')::bigint, 0), coalesce((e ->> 'pages')::integer, 0), (e ->> 'remaining')::bigint
    from jsonb_array_elements(coalesce(progress, '[]'::jsonb)) as e
   where jsonb_typeof(e) = 'object' and e ->> 'kind' is not null
  on conflict (kind, scope) do update
     set reason = excluded.reason, started_at = excluded.started_at, updated_at = excluded.updated_at,
         finished_at = excluded.finished_at, objects = excluded.objects, pages = excluded.pages,
         remaining = excluded.remaining;
end;
$$;

comment on function vm_sync.save_list_progress(jsonb) is 'Fenced: progress of the full lists in flight (or just finished), for status';


-- The last migration applied, for `run` and `doctor` to compare with the code's.
create or replace function vm_sync.schema_version()
returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select max(m.name) from vm_sync.migrations m
$$;

comment on function vm_sync.schema_version() is 'Name of the newest migration applied to this database';


do $grants$
begin
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'vm_sync_writer') then
    grant execute on function vm_sync.begin_term(text, text, jsonb), vm_sync.save_list_progress(jsonb),
                              vm_sync.schema_version()
       to vm_sync_writer;
  end if;
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'vm_sync_reader') then
    grant execute on function vm_sync.schema_version() to vm_sync_reader;
  end if;
end
$grants$;
