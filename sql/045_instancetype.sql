-- =====================================================================
-- Instancetypes: what an instancetype, a ControllerRevision or a VM's
-- spec.instancetype contributes (docs/contract.md#3b-instancetypes)
-- =====================================================================
-- KubeVirt (kubevirt/kubevirt, instancetype API and pkg/instancetype):
-- - the group instancetype.kubevirt.io serves VirtualMachineInstancetype
--   (namespaced) and VirtualMachineClusterInstancetype (cluster-scoped);
--   v1beta1 is the storage and preferred version in 1.6, older releases
--   also served v1alpha1 and v1alpha2, and a v1 package exists. The size
--   is spec.cpu.guest (an integer vCPU count) and spec.memory.guest (a
--   quantity).
-- - a VM's spec.instancetype is a matcher {kind, name, revisionName}. The
--   finder (pkg/instancetype/find/spec.go) lower-cases the kind and takes
--   the singular or plural resource name; an empty kind means the
--   cluster-scoped kind.
-- - the VM controller snapshots the instancetype into an apps/v1
--   ControllerRevision in the VM's namespace (pkg/instancetype/revision/
--   store.go): named <vm>-<instancetype>-<version>-<uid>-<generation>,
--   owned by the VM, labelled instancetype.kubevirt.io/object-kind,
--   -object-name, -object-uid, -object-generation, -object-version, its
--   data the whole object with apiVersion and kind, and it records the
--   name in status.instancetypeRef.controllerRevisionRef.name.
-- Cluster-scoped objects are staged under namespace ''.

-- KubeVirt's Kind for a matcher's kind: case-insensitive, singular or plural; empty means cluster.
-- NULL for anything else.
create or replace function vm_sync.instancetype_kind_of(matcher_kind text)
returns text
language sql immutable parallel safe
as $$
  select case lower(coalesce(matcher_kind, ''))
    when 'virtualmachineinstancetype' then 'VirtualMachineInstancetype'
    when 'virtualmachineinstancetypes' then 'VirtualMachineInstancetype'
    when 'virtualmachineclusterinstancetype' then 'VirtualMachineClusterInstancetype'
    when 'virtualmachineclusterinstancetypes' then 'VirtualMachineClusterInstancetype'
    when '' then 'VirtualMachineClusterInstancetype'
  end
$$;

comment on function vm_sync.instancetype_kind_of(text) is
  'The instancetype Kind a VM''s spec.instancetype.kind names, matched as KubeVirt does (case-insensitive, singular or plural, empty = cluster); NULL when unknown';


-- True for an apiVersion of the instancetype API (any version KubeVirt has served).
create or replace function vm_sync.is_instancetype_api(api_version text)
returns boolean
language sql immutable parallel safe
as $$
  select coalesce(api_version ~ '^instancetype\.kubevirt\.io/(v1alpha1|v1alpha2|v1beta1|v1)$', false)
$$;

comment on function vm_sync.is_instancetype_api(text) is 'True for instancetype.kubevirt.io/v1alpha1, v1alpha2, v1beta1 and v1';


-- A vCPU count (spec.cpu.guest): a whole number above zero, within integer range.
create or replace function vm_sync.guest_cpus_of(v jsonb, out n integer, out problem text)
language plpgsql immutable parallel safe
as $$
declare
  num numeric;
begin
  if v is null or jsonb_typeof(v) = 'null' then
    return;
  end if;
  if jsonb_typeof(v) <> 'number' then
    problem := 'not a number';
    return;
  end if;
  num := v::text::numeric;
  if num <= 0 then
    problem := 'zero or negative CPU';
  elsif num <> trunc(num) then
    problem := 'not a whole number';
  elsif num > 2147483647 then
    problem := 'out of integer range';
  else
    n := num::integer;
  end if;
end;
$$;

comment on function vm_sync.guest_cpus_of(jsonb) is
  'vCPUs in an instancetype''s spec.cpu.guest, or the reason it cannot be used';


-- The size an instancetype object gives (spec.cpu.guest, spec.memory.guest). `prefix` names where
-- the object sits in what was ingested ('' for the object itself, 'data.' inside a revision).
create or replace function vm_sync.derive_instancetype(obj jsonb, prefix text default '')
returns vm_sync.derived
language plpgsql immutable parallel safe
as $$
declare
  d   vm_sync.derived;
  cpu record;
  mem record;
  bad jsonb := '[]';
begin
  d.vm_name := obj -> 'metadata' ->> 'name';
  cpu := vm_sync.guest_cpus_of(obj #> '{spec,cpu,guest}');
  if cpu.problem is not null then
    bad := bad || vm_sync.problem(prefix || 'spec.cpu.guest', obj #> '{spec,cpu,guest}', cpu.problem);
  end if;
  mem := vm_sync.memory_mb_of(obj #> '{spec,memory,guest}');
  if mem.problem is not null then
    bad := bad || vm_sync.problem(prefix || 'spec.memory.guest', obj #> '{spec,memory,guest}', mem.problem);
  end if;
  d.cpu_count := cpu.n;
  d.memory_mb := mem.mb;
  d.problems := nullif(bad, '[]');
  return d;
end;
$$;

comment on function vm_sync.derive_instancetype(jsonb, text) is
  'cpu_count and memory_mb an instancetype''s spec.cpu.guest and spec.memory.guest give, and the values it could not use';


-- A ControllerRevision: when its data is an instancetype, that instancetype's size and which
-- instancetype it snapshots (the object-name label, else the name inside data). Anything else (a
-- preference's revision, data of another shape) is staged and contributes nothing, without a reject.
create or replace function vm_sync.derive_revision(cr jsonb)
returns vm_sync.derived
language plpgsql immutable parallel safe
as $$
declare
  d    vm_sync.derived;
  data jsonb := cr -> 'data';
  name text;
begin
  if jsonb_typeof(data) = 'object'
     and data ->> 'kind' in ('VirtualMachineInstancetype', 'VirtualMachineClusterInstancetype')
     and vm_sync.is_instancetype_api(data ->> 'apiVersion') then
    d := vm_sync.derive_instancetype(data, 'data.');
    d.instancetype_kind := data ->> 'kind';
    name := coalesce(cr #>> '{metadata,labels,instancetype.kubevirt.io/object-name}', data #>> '{metadata,name}');
    d.instancetype_name := case when length(name) between 1 and 253 then name end;
  end if;
  -- The VM that owns it, for people reading vm_sync.snapshots.
  d.vm_name := vm_sync.owner_vm_name(cr);
  return d;
end;
$$;

comment on function vm_sync.derive_revision(jsonb) is
  'For a ControllerRevision holding an instancetype: its size, the instancetype kind and name, the owning VM; nothing for other revisions';


-- What a VM's spec.instancetype and status.instancetypeRef name: the instancetype (KubeVirt Kind,
-- name) and the revisions that may pin its size.
create or replace function vm_sync.instancetype_matcher(vm jsonb,
  out kind text, out name text, out revision text, out spec_revision text, out problems jsonb)
language plpgsql immutable parallel safe
as $$
declare
  m   jsonb := vm #> '{spec,instancetype}';
  ref jsonb := vm #> '{status,instancetypeRef,controllerRevisionRef,name}';
  v   jsonb;
begin
  if m is null or jsonb_typeof(m) = 'null' then
    return;
  end if;
  if jsonb_typeof(m) <> 'object' then
    problems := vm_sync.problem('spec.instancetype', m, 'not an object');
    return;
  end if;
  v := m -> 'name';
  if jsonb_typeof(v) = 'string' and length(v #>> '{}') between 1 and 253 then
    name := v #>> '{}';
  elsif v is not null then
    problems := coalesce(problems, '[]') || vm_sync.problem('spec.instancetype.name', v, 'not a name (a string of 1 to 253 characters)');
  end if;
  v := m -> 'kind';
  if v is null or jsonb_typeof(v) = 'null' then
    kind := vm_sync.instancetype_kind_of(null);
  elsif jsonb_typeof(v) = 'string' and vm_sync.instancetype_kind_of(v #>> '{}') is not null then
    kind := vm_sync.instancetype_kind_of(v #>> '{}');
  else
    problems := coalesce(problems, '[]') || vm_sync.problem('spec.instancetype.kind', v, 'unknown instancetype kind');
  end if;
  v := m -> 'revisionName';
  if jsonb_typeof(v) = 'string' and length(v #>> '{}') between 1 and 253 then
    spec_revision := v #>> '{}';
  elsif v is not null and jsonb_typeof(v) <> 'null' and v <> '""' then
    problems := coalesce(problems, '[]') || vm_sync.problem('spec.instancetype.revisionName', v, 'not a name (a string of 1 to 253 characters)');
  end if;
  if jsonb_typeof(ref) = 'string' and length(ref #>> '{}') between 1 and 253 then
    revision := ref #>> '{}';
  elsif ref is not null and jsonb_typeof(ref) <> 'null' and ref <> '""' then
    problems := coalesce(problems, '[]') || vm_sync.problem('status.instancetypeRef.controllerRevisionRef.name', ref, 'not a name (a string of 1 to 253 characters)');
  end if;
  if name is null then
    kind := null;
  end if;
end;
$$;

comment on function vm_sync.instancetype_matcher(jsonb) is
  'The instancetype a VM names (KubeVirt Kind and name) and its revisions (status.instancetypeRef, spec.instancetype.revisionName), and the values it could not use';


-- The instancetype that sizes a VM, in the order of docs/contract.md#3b-instancetypes: the revision named by
-- status.instancetypeRef.controllerRevisionRef.name, else the one named by
-- spec.instancetype.revisionName (both in the VM's namespace), else the live instancetype by kind
-- and name (namespaced in the VM's namespace, cluster-scoped under ''). Like KubeVirt's revision
-- finder (pkg/instancetype/find/revision.go), the status reference counts only while its revision
-- snapshots the instancetype the VM names now: right after a resize the status still points at the
-- old revision, and the new name must win. A revision holding no instancetype is never a source. A
-- deleted object's last staged values still count: a deletion blanks nothing.
-- A SQL function the planner inlines into the merge's join.
create or replace function vm_sync.instancetype_size(p_namespace text, p_kind text, p_name text,
                                                     p_revision text, p_spec_revision text)
returns table (cpu_count integer, memory_mb integer, source_kind text, source_namespace text, source_name text)
language sql stable parallel safe
as $$
  select c.cpu_count, c.memory_mb, c.kind, c.namespace, c.name
    from (
      select 1 as pri, r.cpu_count, r.memory_mb, r.kind, r.namespace, r.name
        from vm_sync.snapshots r
       where r.kind = 'ControllerRevision' and r.namespace = p_namespace and r.name = p_revision
         and r.instancetype_kind is not null and r.instancetype_name = p_name
      union all
      select 2, r.cpu_count, r.memory_mb, r.kind, r.namespace, r.name
        from vm_sync.snapshots r
       where r.kind = 'ControllerRevision' and r.namespace = p_namespace and r.name = p_spec_revision
         and r.instancetype_kind is not null
      union all
      select 3, i.cpu_count, i.memory_mb, i.kind, i.namespace, i.name
        from vm_sync.snapshots i
       where i.kind = p_kind and i.name = p_name
         and i.namespace = case when p_kind = 'VirtualMachineClusterInstancetype' then '' else p_namespace end
    ) c
   order by c.pri
   limit 1
$$;

comment on function vm_sync.instancetype_size(text, text, text, text, text) is
  'The staged instancetype (revision, else live object) that sizes a VM, with its cpu_count and memory_mb; no row when none is staged';
