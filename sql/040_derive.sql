-- =====================================================================
-- Derivation: everything one VM or VMI object contributes to its vms row
-- =====================================================================
-- Sources are tried in the order of docs/contract.md#3-merge-rules; the first usable one wins. A value
-- that is present but unusable is reported and skipped, never stored.

-- The first usable memory quantity among `paths` (dotted JSON paths, in precedence order). Present but
-- unusable values are reported under their path and skipped.
create or replace function vm_sync.first_memory_mb(obj jsonb, paths text[], out mb integer, out problems jsonb)
language plpgsql immutable parallel safe
as $$
declare
  path text;
  v    jsonb;
  m    record;
begin
  foreach path in array paths loop
    v := obj #> string_to_array(path, '.');
    m := vm_sync.memory_mb_of(v);
    if m.problem is not null then
      problems := coalesce(problems, '[]') || vm_sync.problem(path, v, m.problem);
    end if;
    if m.mb is not null then
      mb := m.mb;
      return;
    end if;
  end loop;
end;
$$;

comment on function vm_sync.first_memory_mb(jsonb, text[]) is
  'MiB from the first usable memory quantity among the dotted paths, and the problems met on the way';


-- The first usable CPU count: topology objects (sockets x cores x threads) first, in order, then cpu
-- quantities, in order.
create or replace function vm_sync.first_cpu_count(obj jsonb, topologies text[], quantities text[],
                                                   out n integer, out problems jsonb)
language plpgsql immutable parallel safe
as $$
declare
  path text;
  v    jsonb;
  t    record;
  q    record;
begin
  foreach path in array topologies loop
    t := vm_sync.cpu_count_of_topology(obj #> string_to_array(path, '.'), path);
    problems := nullif(coalesce(problems, '[]') || coalesce(t.problems, '[]'), '[]');
    if t.n is not null then
      n := t.n;
      return;
    end if;
  end loop;
  foreach path in array quantities loop
    v := obj #> string_to_array(path, '.');
    q := vm_sync.cpu_count_of_quantity(v);
    if q.problem is not null then
      problems := coalesce(problems, '[]') || vm_sync.problem(path, v, q.problem);
    end if;
    if q.n is not null then
      n := q.n;
      return;
    end if;
  end loop;
end;
$$;

comment on function vm_sync.first_cpu_count(jsonb, text[], text[]) is
  'CPUs from the first usable topology, else the first usable cpu quantity, among the dotted paths; and the problems met';


-- A VirtualMachineInstance: runtime truth first, then its own spec.
create or replace function vm_sync.derive_vmi(vmi jsonb)
returns vm_sync.derived
language plpgsql immutable parallel safe
as $$
declare
  d   vm_sync.derived;
  cpu record;
  mem record;
  os  record;
begin
  d.vm_name := vm_sync.owner_vm_name(vmi);
  cpu := vm_sync.first_cpu_count(vmi, array['status.currentCPUTopology', 'spec.domain.cpu'], '{}');
  mem := vm_sync.first_memory_mb(vmi, array['status.memory.guestCurrent', 'spec.domain.memory.guest',
                                            'spec.domain.resources.requests.memory']);
  os := vm_sync.guest_os_of(vmi #> '{status,guestOSInfo}', 'status.guestOSInfo');
  d.cpu_count := cpu.n;
  d.memory_mb := mem.mb;
  d.guest_os := os.os;
  d.problems := nullif(coalesce(cpu.problems, '[]') || coalesce(mem.problems, '[]') || coalesce(os.problems, '[]'), '[]');
  return d;
end;
$$;

comment on function vm_sync.derive_vmi(jsonb) is
  'cpu_count, memory_mb and guest_os a VirtualMachineInstance reports, its owning VM, and the values it could not use';


-- A VirtualMachine: its template's configured values, the OS hint, the instancetype it names, and
-- its status.
create or replace function vm_sync.derive_vm(vm jsonb)
returns vm_sync.derived
language plpgsql immutable parallel safe
as $$
declare
  d    vm_sync.derived;
  cpu  record;
  mem  record;
  hint record;
  it   record;
  bad  jsonb := '[]';
  ps   jsonb := vm #> '{status,printableStatus}';
begin
  d.vm_name := vm -> 'metadata' ->> 'name';
  cpu := vm_sync.first_cpu_count(vm, array['spec.template.spec.domain.cpu'],
                                 array['spec.template.spec.domain.resources.limits.cpu',
                                       'spec.template.spec.domain.resources.requests.cpu']);
  mem := vm_sync.first_memory_mb(vm, array['spec.template.spec.domain.memory.guest',
                                           'spec.template.spec.domain.resources.requests.memory',
                                           'spec.template.spec.domain.resources.limits.memory']);
  d.cpu_count := cpu.n;
  d.memory_mb := mem.mb;
  bad := bad || coalesce(cpu.problems, '[]') || coalesce(mem.problems, '[]');

  -- The annotation key holds dots, so these two paths are spelled out.
  hint := vm_sync.display_text_of(vm #> '{metadata,annotations,vm.kubevirt.io/os}',
                                  'metadata.annotations.vm.kubevirt.io/os');
  bad := bad || coalesce(hint.problems, '[]');
  if hint.s is null then
    hint := vm_sync.display_text_of(vm #> '{spec,template,metadata,annotations,vm.kubevirt.io/os}',
                                    'spec.template.metadata.annotations.vm.kubevirt.io/os');
    bad := bad || coalesce(hint.problems, '[]');
  end if;
  -- Then the preference a VM names (for example rhel.9), below both annotations (docs/contract.md#3b-instancetypes).
  if hint.s is null then
    hint := vm_sync.display_text_of(vm #> '{spec,preference,name}', 'spec.preference.name');
    bad := bad || coalesce(hint.problems, '[]');
  end if;
  d.guest_os_hint := hint.s;

  -- The instancetype it names, which sizes it when no VMI runs (resolved by the merge).
  it := vm_sync.instancetype_matcher(vm);
  d.instancetype_kind := it.kind;
  d.instancetype_name := it.name;
  d.instancetype_revision := it.revision;
  d.instancetype_spec_revision := it.spec_revision;
  bad := bad || coalesce(it.problems, '[]');

  if ps is not null and jsonb_typeof(ps) not in ('string', 'null') then
    bad := bad || vm_sync.problem('status.printableStatus', ps, 'not a string');
  end if;
  d.status := vm_sync.vm_status(vm);

  d.problems := nullif(bad, '[]');
  return d;
end;
$$;

comment on function vm_sync.derive_vm(jsonb) is
  'cpu_count, memory_mb, OS hint, instancetype and status a VirtualMachine''s spec and status imply, and the values it could not use';
