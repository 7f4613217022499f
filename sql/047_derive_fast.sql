-- =====================================================================
-- Derivation, the plain case
-- =====================================================================
-- derive_vm/derive_vmi (040_derive.sql) are a dozen plpgsql calls per
-- object. Nearly every object a cluster sends holds only plain values:
-- quantities like "4Gi" or "2", topologies of small whole numbers, short
-- printable strings. For those the functions below compute the same
-- vm_sync.derived in one plpgsql body each, over SQL helpers the planner
-- inlines into its expressions; for anything else (a value
-- that would be rejected, a quantity with a fraction, an exponent or a
-- sign, a number where a string is expected...) they return NULL and the
-- caller takes the plpgsql path, so problems and rejects are those of
-- 040_derive.sql and nothing else. Each helper below answers NULL for
-- "absent, try the next source" and a sentinel for "not plain".

-- floor(bytes / 1 MiB) of a quantity plain_memory_mb has checked the form of.
create or replace function vm_sync.plain_mb_raw(v jsonb)
returns numeric
language sql immutable parallel safe
as $$
  select floor(rtrim(v #>> '{}', 'KMGTi')::numeric
               * case right(v #>> '{}', 2) when 'Ki' then 1024 when 'Mi' then 1048576
                   when 'Gi' then 1073741824 when 'Ti' then 1099511627776 else 1 end
               / 1048576)
$$;

-- MiB of a plain memory quantity: NULL when absent, 0 when not plain (or not a usable size).
create or replace function vm_sync.plain_memory_mb(v jsonb)
returns integer
language sql immutable parallel safe
as $$
  select case
    when v is null or v = 'null'::jsonb then null
    when jsonb_typeof(v) = 'string' and (v #>> '{}') ~ '^[1-9][0-9]{0,12}(Ki|Mi|Gi|Ti)?$'
         and vm_sync.plain_mb_raw(v) between 1 and 2147483647 then vm_sync.plain_mb_raw(v)::integer
    else 0
  end
$$;

comment on function vm_sync.plain_memory_mb(jsonb) is
  'Internal: MiB of a plain memory quantity ("4Gi", "4096Mi", "4294967296"); NULL when absent, 0 when it needs vm_sync.memory_mb_of';


-- Whole CPUs of a plain cpu quantity ("2", "500m", or the number 2): NULL when absent, 0 when not plain.
create or replace function vm_sync.plain_cpu_quantity(v jsonb)
returns integer
language sql immutable parallel safe
as $$
  select case
    when v is null or v = 'null'::jsonb then null
    when jsonb_typeof(v) in ('string', 'number') and (v #>> '{}') ~ '^[1-9][0-9]{0,8}$' then (v #>> '{}')::integer
    when jsonb_typeof(v) = 'string' and (v #>> '{}') ~ '^[1-9][0-9]{0,8}m$' then ceil(rtrim(v #>> '{}', 'm')::numeric / 1000)::integer
    else 0
  end
$$;

comment on function vm_sync.plain_cpu_quantity(jsonb) is
  'Internal: whole CPUs of a plain cpu quantity; NULL when absent, 0 when it needs vm_sync.cpu_count_of_quantity';


-- A topology factor: true when absent, null, or a whole number 0..999999999 written plainly.
create or replace function vm_sync.plain_factor_ok(x jsonb)
returns boolean
language sql immutable parallel safe
as $$
  select x is null or x = 'null'::jsonb or (jsonb_typeof(x) = 'number' and (x #>> '{}') ~ '^[0-9]{1,9}$')
$$;

-- A factor's value, missing or zero counting as 1.
create or replace function vm_sync.plain_factor(x jsonb)
returns numeric
language sql immutable parallel safe
as $$
  select case when jsonb_typeof(x) = 'number' and (x #>> '{}')::numeric > 0 then (x #>> '{}')::numeric else 1 end
$$;

-- sockets x cores x threads of a topology plain_topology has checked.
create or replace function vm_sync.plain_product(t jsonb)
returns numeric
language sql immutable parallel safe
as $$
  select vm_sync.plain_factor(t -> 'sockets') * vm_sync.plain_factor(t -> 'cores') * vm_sync.plain_factor(t -> 'threads')
$$;

-- CPUs of a plain topology: NULL when absent or no topology (no factor above zero: the next source
-- applies, docs/contract.md#zero-topology), 0 when not plain, else sockets x cores x threads.
create or replace function vm_sync.plain_topology(t jsonb)
returns integer
language sql immutable parallel safe
as $$
  select case
    when t is null or t = 'null'::jsonb then null
    when jsonb_typeof(t) <> 'object' then 0
    when not (vm_sync.plain_factor_ok(t -> 'sockets') and vm_sync.plain_factor_ok(t -> 'cores')
              and vm_sync.plain_factor_ok(t -> 'threads')) then 0
    when not (coalesce((t ->> 'sockets')::numeric, 0) > 0 or coalesce((t ->> 'cores')::numeric, 0) > 0
              or coalesce((t ->> 'threads')::numeric, 0) > 0) then null
    when vm_sync.plain_product(t) <= 2147483647 then vm_sync.plain_product(t)::integer
    else 0
  end
$$;

comment on function vm_sync.plain_topology(jsonb) is
  'Internal: CPUs of a plain topology object; NULL when absent or all-zero, 0 when it needs vm_sync.cpu_count_of_topology';


-- True when a display string field is absent, null or a string display_text_of takes as it is.
create or replace function vm_sync.plain_text_ok(v jsonb)
returns boolean
language sql immutable parallel safe
as $$
  select v is null or v = 'null'::jsonb
      or (jsonb_typeof(v) = 'string' and length(v #>> '{}') <= 255
          and (v #>> '{}') !~ '[[:cntrl:]]' and strpos(v #>> '{}', U&'\FFFD') = 0)
$$;

-- Its value as display_text_of gives it (trimmed; NULL when empty).
create or replace function vm_sync.plain_text(v jsonb)
returns text
language sql immutable parallel safe
as $$
  select nullif(btrim(v #>> '{}'), '')
$$;

-- A name field of spec.instancetype or status.instancetypeRef: absent, null, "" or 1..253 characters.
create or replace function vm_sync.plain_name_ok(v jsonb, empty_ok boolean)
returns boolean
language sql immutable parallel safe
as $$
  select v is null or v = 'null'::jsonb or (empty_ok and v = '""'::jsonb)
      or (jsonb_typeof(v) = 'string' and length(v #>> '{}') between 1 and 253)
$$;


-- derive_vmi's result when every value it reads is plain, else NULL. plpgsql, not SQL: an inlined
-- SQL body cannot keep a sub-value in a variable, so it walked the object again at every reference
-- to a path (measured slower than derive_vmi itself); here each source is read once.
create or replace function vm_sync.derive_vmi_plain(vmi jsonb)
returns vm_sync.derived
language plpgsql immutable parallel safe
as $$
declare
  d    vm_sync.derived;
  info jsonb;
  name text;
  os   text;
begin
  -- coalesce() reads the sources in order and stops at the first that is present: a value (or the
  -- 0 that says "not plain", which ends in NULL below).
  d.cpu_count := coalesce(vm_sync.plain_topology(vmi #> '{status,currentCPUTopology}'),
                          vm_sync.plain_topology(vmi #> '{spec,domain,cpu}'));
  d.memory_mb := coalesce(vm_sync.plain_memory_mb(vmi #> '{status,memory,guestCurrent}'),
                          vm_sync.plain_memory_mb(vmi #> '{spec,domain,memory,guest}'),
                          vm_sync.plain_memory_mb(vmi #> '{spec,domain,resources,requests,memory}'));
  if d.cpu_count = 0 or d.memory_mb = 0 then
    return null;
  end if;
  info := vmi #> '{status,guestOSInfo}';
  if info is not null and info <> 'null'::jsonb then
    if jsonb_typeof(info) <> 'object'
       or not (vm_sync.plain_text_ok(info -> 'prettyName') and vm_sync.plain_text_ok(info -> 'name')
               and vm_sync.plain_text_ok(info -> 'version') and vm_sync.plain_text_ok(info -> 'id')) then
      return null;
    end if;
    name := vm_sync.plain_text(info -> 'name');
    os := coalesce(vm_sync.plain_text(info -> 'prettyName'), name || ' ' || vm_sync.plain_text(info -> 'version'),
                   name, vm_sync.plain_text(info -> 'id'));
    if length(os) > 255 then
      return null;
    end if;
    d.guest_os := os;
  end if;
  d.vm_name := vm_sync.owner_vm_name(vmi);
  return d;
end;
$$;

comment on function vm_sync.derive_vmi_plain(jsonb) is
  'Internal: vm_sync.derive_vmi(vmi) when all the values it reads are plain; NULL when derive_vmi must decide';


-- derive_vm's result when every value it reads is plain, else NULL.
create or replace function vm_sync.derive_vm_plain(vm jsonb)
returns vm_sync.derived
language plpgsql immutable parallel safe
as $$
declare
  d   vm_sync.derived;
  dom jsonb := vm #> '{spec,template,spec,domain}';
  v   jsonb;
  m   jsonb;
begin
  -- In derive_vm's order, stopping at the first source present (as in derive_vmi_plain).
  d.cpu_count := coalesce(vm_sync.plain_topology(dom -> 'cpu'),
                          vm_sync.plain_cpu_quantity(dom #> '{resources,limits,cpu}'),
                          vm_sync.plain_cpu_quantity(dom #> '{resources,requests,cpu}'));
  d.memory_mb := coalesce(vm_sync.plain_memory_mb(dom #> '{memory,guest}'),
                          vm_sync.plain_memory_mb(dom #> '{resources,requests,memory}'),
                          vm_sync.plain_memory_mb(dom #> '{resources,limits,memory}'));
  if d.cpu_count = 0 or d.memory_mb = 0 then
    return null;
  end if;

  -- The hints in derive_vm's order, each read only when the ones before gave nothing.
  v := vm #> '{metadata,annotations,vm.kubevirt.io/os}';
  if not vm_sync.plain_text_ok(v) then return null; end if;
  d.guest_os_hint := vm_sync.plain_text(v);
  if d.guest_os_hint is null then
    v := vm #> '{spec,template,metadata,annotations,vm.kubevirt.io/os}';
    if not vm_sync.plain_text_ok(v) then return null; end if;
    d.guest_os_hint := vm_sync.plain_text(v);
    if d.guest_os_hint is null then
      v := vm #> '{spec,preference,name}';
      if not vm_sync.plain_text_ok(v) then return null; end if;
      d.guest_os_hint := vm_sync.plain_text(v);
    end if;
  end if;

  -- spec.instancetype as instancetype_matcher reads it, when it would find no problem.
  m := vm #> '{spec,instancetype}';
  if m is not null and m <> 'null'::jsonb then
    if jsonb_typeof(m) <> 'object' then return null; end if;
    v := m -> 'name';
    if v is not null and not (jsonb_typeof(v) = 'string' and length(v #>> '{}') between 1 and 253) then return null; end if;
    d.instancetype_name := v #>> '{}';
    v := m -> 'kind';
    if not (v is null or v = 'null'::jsonb
            or (jsonb_typeof(v) = 'string' and vm_sync.instancetype_kind_of(v #>> '{}') is not null)) then
      return null;
    end if;
    if d.instancetype_name is not null then
      d.instancetype_kind := vm_sync.instancetype_kind_of(v #>> '{}');
    end if;
    v := m -> 'revisionName';
    if not vm_sync.plain_name_ok(v, true) then return null; end if;
    d.instancetype_spec_revision := nullif(v #>> '{}', '');
    v := vm #> '{status,instancetypeRef,controllerRevisionRef,name}';
    if not vm_sync.plain_name_ok(v, true) then return null; end if;
    d.instancetype_revision := nullif(v #>> '{}', '');
  end if;

  if coalesce(jsonb_typeof(vm #> '{status,printableStatus}'), 'null') not in ('string', 'null') then
    return null;
  end if;
  d.status := vm_sync.vm_status(vm);
  d.vm_name := vm -> 'metadata' ->> 'name';
  return d;
end;
$$;

comment on function vm_sync.derive_vm_plain(jsonb) is
  'Internal: vm_sync.derive_vm(vm) when all the values it reads are plain; NULL when derive_vm must decide';
