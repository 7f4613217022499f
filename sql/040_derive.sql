-- =====================================================================
-- Derivation: everything one VM or VMI object contributes to its vms row
-- =====================================================================
-- Sources are tried in CONTRACT order; the first usable one wins. A value
-- that is present but unusable is reported and skipped, never stored.

-- A VirtualMachineInstance: runtime truth first, then its own spec.
create or replace function vm_sync.derive_vmi(vmi jsonb)
returns vm_sync.derived
language plpgsql immutable parallel safe
as $$
declare
  d    vm_sync.derived;
  cpu  record;
  mem  record;
  os   record;
  bad  jsonb := '[]';
begin
  d.vm_name := vm_sync.owner_vm_name(vmi);

  cpu := vm_sync.cpu_count_of_topology(vmi #> '{status,currentCPUTopology}', 'status.currentCPUTopology');
  bad := bad || coalesce(cpu.problems, '[]');
  if cpu.n is null then
    cpu := vm_sync.cpu_count_of_topology(vmi #> '{spec,domain,cpu}', 'spec.domain.cpu');
    bad := bad || coalesce(cpu.problems, '[]');
  end if;
  d.cpu_count := cpu.n;

  mem := vm_sync.memory_mb_of(vmi #> '{status,memory,guestCurrent}');
  if mem.problem is not null then
    bad := bad || vm_sync.problem('status.memory.guestCurrent', vmi #> '{status,memory,guestCurrent}', mem.problem);
  end if;
  if mem.mb is null then
    mem := vm_sync.memory_mb_of(vmi #> '{spec,domain,memory,guest}');
    if mem.problem is not null then
      bad := bad || vm_sync.problem('spec.domain.memory.guest', vmi #> '{spec,domain,memory,guest}', mem.problem);
    end if;
  end if;
  if mem.mb is null then
    mem := vm_sync.memory_mb_of(vmi #> '{spec,domain,resources,requests,memory}');
    if mem.problem is not null then
      bad := bad || vm_sync.problem('spec.domain.resources.requests.memory',
                                    vmi #> '{spec,domain,resources,requests,memory}', mem.problem);
    end if;
  end if;
  d.memory_mb := mem.mb;

  os := vm_sync.guest_os_of(vmi #> '{status,guestOSInfo}', 'status.guestOSInfo');
  bad := bad || coalesce(os.problems, '[]');
  d.guest_os := os.os;

  d.problems := nullif(bad, '[]');
  return d;
end;
$$;

comment on function vm_sync.derive_vmi(jsonb) is
  'cpu_count, memory_mb and guest_os a VirtualMachineInstance reports, its owning VM, and the values it could not use';


-- A VirtualMachine: its template's configured values, the OS hint, and its status.
create or replace function vm_sync.derive_vm(vm jsonb)
returns vm_sync.derived
language plpgsql immutable parallel safe
as $$
declare
  d      vm_sync.derived;
  domain jsonb := vm #> '{spec,template,spec,domain}';
  cpu    record;
  q      record;
  mem    record;
  hint   record;
  bad    jsonb := '[]';
  ps     jsonb := vm #> '{status,printableStatus}';
begin
  d.vm_name := vm -> 'metadata' ->> 'name';

  cpu := vm_sync.cpu_count_of_topology(domain -> 'cpu', 'spec.template.spec.domain.cpu');
  bad := bad || coalesce(cpu.problems, '[]');
  d.cpu_count := cpu.n;
  if d.cpu_count is null then
    q := vm_sync.cpu_count_of_quantity(domain #> '{resources,limits,cpu}');
    if q.problem is not null then
      bad := bad || vm_sync.problem('spec.template.spec.domain.resources.limits.cpu', domain #> '{resources,limits,cpu}', q.problem);
    end if;
    d.cpu_count := q.n;
  end if;
  if d.cpu_count is null then
    q := vm_sync.cpu_count_of_quantity(domain #> '{resources,requests,cpu}');
    if q.problem is not null then
      bad := bad || vm_sync.problem('spec.template.spec.domain.resources.requests.cpu', domain #> '{resources,requests,cpu}', q.problem);
    end if;
    d.cpu_count := q.n;
  end if;

  mem := vm_sync.memory_mb_of(domain #> '{memory,guest}');
  if mem.problem is not null then
    bad := bad || vm_sync.problem('spec.template.spec.domain.memory.guest', domain #> '{memory,guest}', mem.problem);
  end if;
  if mem.mb is null then
    mem := vm_sync.memory_mb_of(domain #> '{resources,requests,memory}');
    if mem.problem is not null then
      bad := bad || vm_sync.problem('spec.template.spec.domain.resources.requests.memory', domain #> '{resources,requests,memory}', mem.problem);
    end if;
  end if;
  if mem.mb is null then
    mem := vm_sync.memory_mb_of(domain #> '{resources,limits,memory}');
    if mem.problem is not null then
      bad := bad || vm_sync.problem('spec.template.spec.domain.resources.limits.memory', domain #> '{resources,limits,memory}', mem.problem);
    end if;
  end if;
  d.memory_mb := mem.mb;

  hint := vm_sync.display_text_of(vm #> '{metadata,annotations,vm.kubevirt.io/os}',
                                  'metadata.annotations.vm.kubevirt.io/os');
  bad := bad || coalesce(hint.problems, '[]');
  if hint.s is null then
    hint := vm_sync.display_text_of(vm #> '{spec,template,metadata,annotations,vm.kubevirt.io/os}',
                                    'spec.template.metadata.annotations.vm.kubevirt.io/os');
    bad := bad || coalesce(hint.problems, '[]');
  end if;
  d.guest_os_hint := hint.s;

  if ps is not null and jsonb_typeof(ps) not in ('string', 'null') then
    bad := bad || vm_sync.problem('status.printableStatus', ps, 'not a string');
  end if;
  d.status := vm_sync.vm_status(vm);

  d.problems := nullif(bad, '[]');
  return d;
end;
$$;

comment on function vm_sync.derive_vm(jsonb) is
  'cpu_count, memory_mb, OS hint and status a VirtualMachine''s spec and status imply, and the values it could not use';
