-- =====================================================================
-- Staging: watch events -> vm_sync.snapshots (and vm_sync.rejects)
-- =====================================================================
-- One set-based pass per batch. Events apply in array order and the last
-- one for an object wins, except that an event older (lower integer
-- resourceVersion) than the object's current state, for the same uid, is
-- ignored; a new uid under the same name replaces the old object.

-- The fold over one object's events, oldest first: the state is the event that currently stands.
-- Its state type vm_sync.event_state and the aggregate vm_sync.last_event below are created by
-- migration 1732600000006; this file keeps the transition function's current body.

-- plpgsql rather than SQL: an aggregate's transition function is never inlined, and a plpgsql call
-- is several times cheaper than a SQL-function call per row.
create or replace function vm_sync.event_step(state vm_sync.event_state, ord bigint, uid text, resource_version text)
returns vm_sync.event_state
language plpgsql immutable parallel safe
as $$
begin
  if state.ord is not null
     and state.uid is not distinct from uid
     and resource_version ~ '^[0-9]{1,30}$' and state.resource_version ~ '^[0-9]{1,30}$'
     and resource_version::numeric < state.resource_version::numeric then
    return state;
  end if;
  return row(ord, uid, resource_version)::vm_sync.event_state;
end;
$$;

comment on aggregate vm_sync.last_event(bigint, text, text) is
  'Applied in order over (ord, uid, resourceVersion): the event that stands at the end (a stale one never replaces a newer one of the same uid)';


-- The vms column a rejected field would have fed ("event" for a whole unusable event).
create or replace function vm_sync.column_of_field(field text)
returns text
language sql immutable parallel safe
as $$
  select case
    when field ~ 'printableStatus|deletionTimestamp|runStrategy|running' then 'status'
    when field ~ '\.cpu|CPUTopology' then 'cpu_count'
    when field ~ 'memory' then 'memory_mb'
    when field ~ 'guestOSInfo|vm\.kubevirt\.io/os|spec\.preference' then 'guest_os'
    else 'event'
  end
$$;

comment on function vm_sync.column_of_field(text) is 'The vms column a field of a VM/VMI object feeds, for reject metrics';


-- The kinds ingest stages, and the scope of each: VMs and VMIs (kubevirt.io), instancetypes and
-- preferences (instancetype.kubevirt.io, preferences staged but unused), and apps/v1
-- ControllerRevisions. Cluster-scoped kinds are staged under namespace ''.
create or replace function vm_sync.kind_api_ok(kind text, api_version text)
returns boolean
language sql immutable parallel safe
as $$
  select case
    when kind in ('VirtualMachine', 'VirtualMachineInstance') then api_version in ('kubevirt.io/v1', 'kubevirt.io/v1alpha3')
    when kind in ('VirtualMachineInstancetype', 'VirtualMachineClusterInstancetype',
                  'VirtualMachinePreference', 'VirtualMachineClusterPreference') then vm_sync.is_instancetype_api(api_version)
    when kind = 'ControllerRevision' then api_version = 'apps/v1'
    else false
  end
$$;

comment on function vm_sync.kind_api_ok(text, text) is 'True when ingest stages objects of this kind and apiVersion';


create or replace function vm_sync.cluster_scoped(kind text)
returns boolean
language sql immutable parallel safe
as $$
  select kind in ('VirtualMachineClusterInstancetype', 'VirtualMachineClusterPreference')
$$;

comment on function vm_sync.cluster_scoped(text) is 'True for the cluster-scoped kinds ingest stages (under namespace '''')';


-- Stages a batch. Returns the summary counts and the (namespace, vm_name) keys whose inputs changed,
-- for the merge: the VMs of staged VMs and VMIs, and every VM that names a staged instancetype or
-- revision (found through the snapshots_vm_* indexes, in this one statement). One statement: every step is a CTE, so a batch costs one pass and no temp tables.
-- Callers hold the ingest lock.
create or replace function vm_sync.stage_events(
  events jsonb,
  out summary jsonb,
  out affected_namespaces text[],
  out affected_vm_names text[])
language plpgsql volatile
as $$
begin
  if events is null then
    events := '[]';
  end if;
  if jsonb_typeof(events) <> 'array' then
    raise exception 'vm_sync: events must be a JSON array of watch events, got a JSON %', jsonb_typeof(events)
      using errcode = 'invalid_parameter_value',
            hint = 'Pass [{"type": "ADDED", "object": {...}}, ...] as the API server streams them.';
  end if;

  with raw as (
    select a.ord, a.ev,
           case when jsonb_typeof(a.ev) = 'object' and jsonb_typeof(a.ev -> 'type') = 'string' then a.ev ->> 'type' end as type,
           case when jsonb_typeof(a.ev) = 'object' then a.ev -> 'object' end as obj
      from jsonb_array_elements(events) with ordinality as a(ev, ord)
  ),
  -- 1. Classify every event: usable, a bookmark, or unusable with its reason.
  classified as materialized (
    select r.ord, r.type,
           r.obj ->> 'kind' as kind,
           case when vm_sync.cluster_scoped(r.obj ->> 'kind') then '' else r.obj #>> '{metadata,namespace}' end as ns,
           r.obj #>> '{metadata,name}' as name,
           r.obj #>> '{metadata,uid}' as uid,
           r.obj #>> '{metadata,resourceVersion}' as rv,
           r.obj,
           case
             when jsonb_typeof(r.ev) <> 'object'
               then vm_sync.problem('event', r.ev, 'not a JSON object')
             when r.type is null or r.type not in ('ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK')
               then vm_sync.problem('type', r.ev -> 'type', 'unknown event type')
             when r.type = 'BOOKMARK'
               then null
             when coalesce(jsonb_typeof(r.obj), 'null') <> 'object'
               then vm_sync.problem('object', r.obj, 'missing or not a JSON object')
             when coalesce(jsonb_typeof(r.obj -> 'kind'), 'null') <> 'string'
               or r.obj ->> 'kind' not in ('VirtualMachine', 'VirtualMachineInstance',
                                           'VirtualMachineInstancetype', 'VirtualMachineClusterInstancetype',
                                           'VirtualMachinePreference', 'VirtualMachineClusterPreference', 'ControllerRevision')
               then vm_sync.problem('kind', r.obj -> 'kind', 'unknown kind')
             -- kubevirt.io objects may come without apiVersion (older callers); the others must say theirs.
             when (r.obj ? 'apiVersion' or r.obj ->> 'kind' not in ('VirtualMachine', 'VirtualMachineInstance'))
                  and not vm_sync.kind_api_ok(r.obj ->> 'kind', coalesce(r.obj ->> 'apiVersion', ''))
               then vm_sync.problem('apiVersion', r.obj -> 'apiVersion', 'unknown kind')
             when coalesce(jsonb_typeof(r.obj #> '{metadata,name}'), 'null') <> 'string'
               or length(r.obj #>> '{metadata,name}') not between 1 and 253
               then vm_sync.problem('metadata.name', r.obj #> '{metadata,name}', 'missing, empty or longer than 253 characters')
             -- U+FFFD is what the watcher puts for a NUL or a lone surrogate (jsonb holds neither), and no
             -- Kubernetes name can hold any of the three: such a name is never taken for another one.
             when strpos(r.obj #>> '{metadata,name}', U&'\FFFD') > 0
               then vm_sync.problem('metadata.name', r.obj #> '{metadata,name}', 'holds a NUL, an unpaired surrogate or U+FFFD, which no Kubernetes name can')
             when strpos(coalesce(r.obj #>> '{metadata,namespace}', ''), U&'\FFFD') > 0
               then vm_sync.problem('metadata.namespace', r.obj #> '{metadata,namespace}', 'holds a NUL, an unpaired surrogate or U+FFFD, which no Kubernetes name can')
             when not vm_sync.cluster_scoped(r.obj ->> 'kind')
              and (coalesce(jsonb_typeof(r.obj #> '{metadata,namespace}'), 'null') <> 'string'
                   or length(r.obj #>> '{metadata,namespace}') not between 1 and 253)
               then vm_sync.problem('metadata.namespace', r.obj #> '{metadata,namespace}', 'missing, empty or longer than 253 characters')
             when coalesce(jsonb_typeof(r.obj #> '{metadata,uid}'), 'null') not in ('string', 'null')
               then vm_sync.problem('metadata.uid', r.obj #> '{metadata,uid}', 'not a string')
             when coalesce(jsonb_typeof(r.obj #> '{metadata,resourceVersion}'), 'null') not in ('string', 'null')
               then vm_sync.problem('metadata.resourceVersion', r.obj #> '{metadata,resourceVersion}', 'not a string')
           end as bad
      from raw r
  ),
  good as (
    -- #- rebuilds the whole object even when the path is absent, and the watcher has already
    -- dropped managedFields: only an object that still has them is rebuilt.
    select c.ord, c.type, c.kind, c.ns, c.name, c.uid, c.rv,
           case when c.obj -> 'metadata' ? 'managedFields' then c.obj #- '{metadata,managedFields}' else c.obj end as obj
      from classified c
     where c.bad is null and c.type <> 'BOOKMARK'
  ),
  keys as (
    select distinct g.kind, g.ns, g.name from good g
  ),
  staged as (
    select s.kind, s.namespace, s.name, s.uid, s.resource_version
      from keys k
      join vm_sync.snapshots s on s.kind = k.kind and s.namespace = k.ns and s.name = k.name
  ),
  -- 2. Per object, the event that stands after the batch (ord 0 is the staged state). The fold runs
  --    once per object as a window, so each event row learns the winner without a join back.
  decided as materialized (
    select t.*,
           (vm_sync.last_event(t.ord, t.uid, t.rv) over (
              partition by t.kind, t.ns, t.name order by t.ord
              rows between unbounded preceding and unbounded following)).ord as standing_ord
      from (
        select s.kind, s.namespace as ns, s.name, 0::bigint as ord, null::text as type, s.uid, s.resource_version as rv,
               null::jsonb as obj
          from staged s
        union all
        select g.kind, g.ns, g.name, g.ord, g.type, g.uid, g.rv, g.obj from good g
      ) t
  ),
  -- ... staged only when it differs from what is staged. Values are derived only for those.
  winners as materialized (
    select d.ord, d.type, d.kind, d.ns, d.name, d.uid, d.rv, d.obj, s.vm_name as old_vm_name
      from decided d
      left join vm_sync.snapshots s on s.kind = d.kind and s.namespace = d.ns and s.name = d.name
     where d.ord = d.standing_ord
       and d.ord > 0
       and (s.kind is null
            or s.uid is distinct from d.uid
            or s.deleted <> (d.type = 'DELETED')
            -- A new resourceVersion is a new object (metadata.resourceVersion is part of it), decided
            -- without reading the staged one back from TOAST. The same one is compared in full: an
            -- equal resourceVersion is not an older one, so different content under it still applies
            -- (docs/contract.md#order).
            or s.resource_version is distinct from d.rv
            or s.object <> d.obj)
  ),
  derived as materialized (
    select w.*,
           case w.kind
             -- The plain path (047_derive_fast.sql) when it answers, else the one that reports problems.
             when 'VirtualMachine' then coalesce(vm_sync.derive_vm_plain(w.obj), vm_sync.derive_vm(w.obj))
             when 'VirtualMachineInstance' then coalesce(vm_sync.derive_vmi_plain(w.obj), vm_sync.derive_vmi(w.obj))
             when 'ControllerRevision' then vm_sync.derive_revision(w.obj)
             when 'VirtualMachineInstancetype' then vm_sync.derive_instancetype(w.obj)
             when 'VirtualMachineClusterInstancetype' then vm_sync.derive_instancetype(w.obj)
             -- Preferences: staged, nothing derived.
           end as d
      from winners w
  ),
  upserted as (
    insert into vm_sync.snapshots as s (kind, namespace, name, uid, resource_version, deleted, object, observed_at,
                                        vm_name, cpu_count, memory_mb, guest_os, guest_os_hint, status,
                                        instancetype_kind, instancetype_name, instancetype_revision,
                                        instancetype_spec_revision)
    select d.kind, d.ns, d.name, d.uid, d.rv, d.type = 'DELETED', d.obj, now(),
           coalesce((d.d).vm_name, d.name), (d.d).cpu_count, (d.d).memory_mb, (d.d).guest_os,
           (d.d).guest_os_hint, (d.d).status, (d.d).instancetype_kind, (d.d).instancetype_name,
           (d.d).instancetype_revision, (d.d).instancetype_spec_revision
      from derived d
     order by d.kind, d.ns, d.name
    on conflict (kind, namespace, name) do update
       set uid = excluded.uid, resource_version = excluded.resource_version, deleted = excluded.deleted,
           object = excluded.object, observed_at = excluded.observed_at, vm_name = excluded.vm_name,
           cpu_count = excluded.cpu_count, memory_mb = excluded.memory_mb, guest_os = excluded.guest_os,
           guest_os_hint = excluded.guest_os_hint, status = excluded.status,
           instancetype_kind = excluded.instancetype_kind, instancetype_name = excluded.instancetype_name,
           instancetype_revision = excluded.instancetype_revision,
           instancetype_spec_revision = excluded.instancetype_spec_revision
    returning s.kind, s.namespace, s.name, s.vm_name
  ),
  -- 3. Every value that could not be used: whole events, and single fields of staged objects.
  rejected as (
    insert into vm_sync.rejects (kind, namespace, name, uid, resource_version, field, value, reason)
    select left(c.kind, 253), left(c.ns, 253), left(c.name, 253), left(c.uid, 253), left(c.rv, 253),
           p ->> 'field', p -> 'value', p ->> 'reason'
      from classified c
     cross join lateral jsonb_array_elements(c.bad) as p
     where c.bad is not null
    union all
    select d.kind, d.ns, d.name, d.uid, d.rv, p ->> 'field', p -> 'value', p ->> 'reason'
      from derived d
     cross join lateral jsonb_array_elements((d.d).problems) as p
     where d.type <> 'DELETED' and (d.d).problems is not null
    returning kind, namespace, name, uid, field, reason
  ),
  -- 4. The VMs to merge: those of staged VMs and VMIs, and every VM that names a staged instancetype
  --    or revision (as staged before this batch: a VM of this batch is merged as a VM anyway).
  sizers as (
    select u.kind, u.namespace, u.name from upserted u
     where u.kind in ('VirtualMachineInstancetype', 'VirtualMachineClusterInstancetype', 'ControllerRevision')
  ),
  touched as (
    select u.namespace, u.vm_name from upserted u where u.kind in ('VirtualMachine', 'VirtualMachineInstance')
    union
    select d.ns, d.old_vm_name from derived d
     where d.old_vm_name is not null and d.kind in ('VirtualMachine', 'VirtualMachineInstance')
    union
    select v.namespace, v.name
      from sizers z
      join vm_sync.snapshots v
        on v.kind = 'VirtualMachine' and v.instancetype_kind = z.kind and v.instancetype_name = z.name
       and v.instancetype_name is not null
     where z.kind = 'VirtualMachineClusterInstancetype'
    union
    select v.namespace, v.name
      from sizers z
      join vm_sync.snapshots v
        on v.kind = 'VirtualMachine' and v.instancetype_kind = z.kind and v.instancetype_name = z.name
       and v.namespace = z.namespace and v.instancetype_name is not null
     where z.kind = 'VirtualMachineInstancetype'
    union
    select v.namespace, v.name
      from sizers z
      join vm_sync.snapshots v
        on v.kind = 'VirtualMachine' and v.namespace = z.namespace and v.instancetype_revision = z.name
     where z.kind = 'ControllerRevision'
    union
    select v.namespace, v.name
      from sizers z
      join vm_sync.snapshots v
        on v.kind = 'VirtualMachine' and v.namespace = z.namespace and v.instancetype_spec_revision = z.name
     where z.kind = 'ControllerRevision'
  )
  select jsonb_build_object(
           'events',    (select count(*) from classified),
           'bookmarks', (select count(*) from classified c where c.type = 'BOOKMARK' and c.bad is null),
           'staged',    (select count(*) from upserted),
           'unchanged', (select count(*) from keys) - (select count(*) from winners),
           'ignored',   (select count(*) from good) - (select count(*) from winners),
           'rejected',  (select count(*) from rejected),
           -- For the seed's ssvirt_vmi_data_updates_total{namespace, field, result="rejected"}.
           'field_rejects', (select coalesce(jsonb_agg(jsonb_build_object(
                                      'namespace', x.namespace, 'field', x.col, 'result', 'rejected', 'count', x.n)
                                      order by x.namespace, x.col), '[]'::jsonb)
                               from (select r.namespace, vm_sync.column_of_field(r.field) as col, count(*) as n
                                       from rejected r group by 1, 2) x),
           -- Which objects, for the watcher's Kubernetes Events: one entry per object and field, capped.
           'rejected_objects', (select coalesce(jsonb_agg(x.o), '[]'::jsonb)
                                  from (select jsonb_build_object('kind', r.kind, 'namespace', r.namespace, 'name', r.name, 'uid', r.uid,
                                                                  'field', r.field, 'reason', left(r.reason, 300)) as o
                                          from rejected r
                                         group by r.kind, r.namespace, r.name, r.uid, r.field, left(r.reason, 300)
                                         order by r.namespace, r.name, r.field
                                         limit 100) x)),
         agg.namespaces, agg.vm_names
    into summary, affected_namespaces, affected_vm_names
    from (select array_agg(t.namespace) as namespaces, array_agg(t.vm_name) as vm_names from touched t) as agg;
end;
$$;

comment on function vm_sync.stage_events(jsonb) is
  'Internal: stages a batch of watch events into vm_sync.snapshots, records rejects, returns counts and the affected VM keys';
