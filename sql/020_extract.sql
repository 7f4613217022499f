-- =====================================================================
-- Extraction: the four values a VM or VMI object contributes
-- =====================================================================
-- Pure functions from one object to its derived values plus the list of
-- values that could not be used (each {field, value, reason}). Precedence
-- per field is docs/contract.md#which-source; an unusable value is treated as absent,
-- so the next source in line is used, and it is reported as a reject.

-- What one object contributes. problems is a JSON array, or NULL when clean.
-- The composite type vm_sync.derived is created by migration 1732600000006 (types change only
-- through migrations: a function file cannot alter a type that exists).


-- An offending value as stored in a reject: kept whole up to 1 KiB, then cut, so that a hostile
-- 50 MB string does not become a 50 MB reject row.
create or replace function vm_sync.clip(v jsonb)
returns jsonb
language sql immutable parallel safe
as $$
  select case
    when v is null then null
    when jsonb_typeof(v) in ('object', 'array') and octet_length(v::text) > 1024
      then to_jsonb(left(v::text, 1024) || '...[truncated]')
    when jsonb_typeof(v) = 'string' and octet_length(v #>> '{}') > 1024
      then to_jsonb(left(v #>> '{}', 1024) || '...[truncated]')
    else v
  end
$$;

comment on function vm_sync.clip(jsonb) is 'A JSON value cut to about 1 KiB for storage in vm_sync.rejects';


create or replace function vm_sync.problem(field text, value jsonb, reason text)
returns jsonb
language sql immutable parallel safe
as $$
  select jsonb_build_array(jsonb_build_object('field', field, 'value', vm_sync.clip(value), 'reason', reason))
$$;

comment on function vm_sync.problem(text, jsonb, text) is 'One-element problem list: {field, value, reason}';


-- Why a display string (guest OS, OS hint) cannot be stored, or NULL when it can.
create or replace function vm_sync.display_text_problem(s text)
returns text
language sql immutable strict parallel safe
as $$
  select case
    when length(s) > 255 then 'longer than 255 characters'
    when s ~ '[[:cntrl:]]' then 'contains control characters'
    when s ~ E'\uFFFD' then 'contains an invalid character (U+FFFD)'
  end
$$;

comment on function vm_sync.display_text_problem(text) is 'Reason a guest OS string is unfit for vms.guest_os, or NULL';


-- A usable display string from a JSON field: (text, NULL), (NULL, problems), or (NULL, NULL) when absent or empty.
create or replace function vm_sync.display_text_of(v jsonb, field text, out s text, out problems jsonb)
language plpgsql immutable parallel safe
as $$
declare
  why text;
begin
  if v is null or jsonb_typeof(v) = 'null' then
    return;
  end if;
  if jsonb_typeof(v) <> 'string' then
    problems := vm_sync.problem(field, v, 'not a string');
    return;
  end if;
  s := nullif(btrim(v #>> '{}'), '');
  if s is null then
    return;
  end if;
  why := vm_sync.display_text_problem(s);
  if why is not null then
    problems := vm_sync.problem(field, v, why);
    s := null;
  end if;
end;
$$;


-- CPUs from a topology object {sockets, cores, threads}: the product, each missing or zero factor
-- counting as 1 (KubeVirt's defaulting). An object with no factor above zero (none of the three, or
-- {cores: 0, sockets: 0, threads: 0}) is no topology: it gives nothing, so the caller falls through
-- to the next source, as KubeVirt treats an all-zero topology as absent (docs/contract.md#zero-topology).
create or replace function vm_sync.cpu_count_of_topology(t jsonb, path text, out n integer, out problems jsonb)
language plpgsql immutable parallel safe
as $$
declare
  factor text;
  x      jsonb;
  num    numeric;
  total  numeric := 1;
  given  boolean := false;
begin
  if t is null or jsonb_typeof(t) = 'null' then
    return;
  end if;
  if jsonb_typeof(t) <> 'object' then
    problems := vm_sync.problem(path, t, 'not an object');
    return;
  end if;
  if not (t ?| array['sockets', 'cores', 'threads']) then
    return;
  end if;
  foreach factor in array array['sockets', 'cores', 'threads'] loop
    x := t -> factor;
    continue when x is null or jsonb_typeof(x) = 'null';
    if jsonb_typeof(x) <> 'number' then
      problems := coalesce(problems, '[]') || vm_sync.problem(path || '.' || factor, x, 'not a number');
      continue;
    end if;
    num := x::text::numeric;
    if num < 0 then
      problems := coalesce(problems, '[]') || vm_sync.problem(path || '.' || factor, x, 'negative count');
    elsif num <> trunc(num) then
      problems := coalesce(problems, '[]') || vm_sync.problem(path || '.' || factor, x, 'not a whole number');
    elsif num > 0 then
      total := total * num;
      given := true;
    end if;
  end loop;
  if problems is not null or not given then
    return;
  end if;
  if total > 2147483647 then
    problems := vm_sync.problem(path, t, 'CPU count out of integer range');
    return;
  end if;
  n := total::integer;
end;
$$;

comment on function vm_sync.cpu_count_of_topology(jsonb, text) is
  'sockets x cores x threads (missing or zero factors count as 1); NULL n when no factor is above zero or it is unusable';


-- guest_os from status.guestOSInfo: prettyName; else name + " " + version; else name; else id.
-- An empty object (no guest agent yet) gives nothing, so the row keeps its value.
create or replace function vm_sync.guest_os_of(info jsonb, path text, out os text, out problems jsonb)
language plpgsql immutable parallel safe
as $$
declare
  pretty  record;
  name    record;
  version record;
  id      record;
begin
  if info is null or jsonb_typeof(info) = 'null' then
    return;
  end if;
  if jsonb_typeof(info) <> 'object' then
    problems := vm_sync.problem(path, info, 'not an object');
    return;
  end if;
  pretty  := vm_sync.display_text_of(info -> 'prettyName', path || '.prettyName');
  name    := vm_sync.display_text_of(info -> 'name', path || '.name');
  version := vm_sync.display_text_of(info -> 'version', path || '.version');
  id      := vm_sync.display_text_of(info -> 'id', path || '.id');
  problems := nullif(coalesce(pretty.problems, '[]') || coalesce(name.problems, '[]')
                     || coalesce(version.problems, '[]') || coalesce(id.problems, '[]'), '[]');
  os := coalesce(pretty.s, name.s || ' ' || version.s, name.s, id.s);
  if os is not null and length(os) > 255 then
    problems := coalesce(problems, '[]') || vm_sync.problem(path, to_jsonb(os), 'longer than 255 characters');
    os := null;
  end if;
end;
$$;

comment on function vm_sync.guest_os_of(jsonb, text) is
  'Guest OS display name from a guestOSInfo object, as the SSVirt API shows it';


-- The VirtualMachine a VMI belongs to: its ownerReference (kind VirtualMachine, apiVersion
-- kubevirt.io/v1), else the VMI's own name.
create or replace function vm_sync.owner_vm_name(vmi jsonb)
returns text
language sql immutable parallel safe
as $$
  select coalesce(
    (select o ->> 'name'
       from jsonb_array_elements(case when jsonb_typeof(vmi -> 'metadata' -> 'ownerReferences') = 'array'
                                      then vmi -> 'metadata' -> 'ownerReferences' else '[]' end) as o
      where jsonb_typeof(o) = 'object'
        and o ->> 'kind' = 'VirtualMachine'
        and o ->> 'apiVersion' = 'kubevirt.io/v1'
        and jsonb_typeof(o -> 'name') = 'string'
        and length(o ->> 'name') between 1 and 253
      limit 1),
    vmi -> 'metadata' ->> 'name')
$$;

comment on function vm_sync.owner_vm_name(jsonb) is 'Name of the VirtualMachine owning a VMI (ownerReference, else the VMI name)';
