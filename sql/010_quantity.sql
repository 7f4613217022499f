-- =====================================================================
-- Kubernetes quantities ("4Gi", "512Mi", "1.5Gi", "2G", "1e9", "500m")
-- =====================================================================
-- The grammar is the one the API server accepts for a resource.Quantity
-- (apimachinery pkg/api/resource/quantity.go and the OpenAPI pattern CRDs
-- validate against):
--
--   <quantity> ::= <sign>? <number> <suffix>?
--   <number>   ::= <digits> | <digits> "." <digits>? | "." <digits>
--   <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei                (binary SI)
--               |  n | u | m | k | M | G | T | P | E          (decimal SI)
--               |  (e | E) <sign>? <digits>                    (decimal exponent)
--
-- A number is required ("Gi" alone is malformed), suffixes are case
-- sensitive ("1gi", "1K" are malformed), and an exponent is an integer
-- (the Go parser rejects "1e1.5"). "1E" is one exa; "1E3" is one thousand.
-- Values are exact (numeric): no float rounding anywhere.

create or replace function vm_sync.parse_quantity(q text)
returns numeric
language plpgsql immutable strict parallel safe
as $$
declare
  m        text[];
  mantissa numeric;
  exponent integer;
begin
  -- A quantity longer than this is nothing a cluster produces; refuse it before the regex and the cast.
  if length(q) > 128 then
    return null;
  end if;
  m := regexp_match(q, '^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([numkMGTPE])|[eE]([+-]?[0-9]+))?$');
  if m is null then
    return null;
  end if;
  mantissa := m[1]::numeric;

  if m[2] is not null then
    return mantissa * case m[2]
      when 'Ki' then 1024::numeric
      when 'Mi' then 1048576::numeric
      when 'Gi' then 1073741824::numeric
      when 'Ti' then 1099511627776::numeric
      when 'Pi' then 1125899906842624::numeric
      when 'Ei' then 1152921504606846976::numeric
    end;
  end if;

  if m[3] is not null then
    return mantissa * case m[3]
      when 'n' then 0.000000001
      when 'u' then 0.000001
      when 'm' then 0.001
      when 'k' then 1000::numeric
      when 'M' then 1000000::numeric
      when 'G' then 1000000000::numeric
      when 'T' then 1000000000000::numeric
      when 'P' then 1000000000000000::numeric
      when 'E' then 1000000000000000000::numeric
    end;
  end if;

  if m[4] is not null then
    if mantissa = 0 then
      return 0;
    end if;
    -- Kubernetes keeps any exponent; we clamp to +-200, far past every range we store (and past the 1n to
    -- which Kubernetes rounds tiny values up), so numeric never overflows on "1e999999999".
    if length(ltrim(m[4], '+-0')) > 3 then
      exponent := case when m[4] like '-%' then -200 else 200 end;
    else
      exponent := greatest(-200, least(200, m[4]::integer));
    end if;
    -- Exact: power(10::numeric, e) keeps only 16 decimals for e < 0, so "1e-17" became 0 (and "15e-1"
    -- style values with long mantissas lost their digits). Numeric input reads an exponent exactly.
    return (m[1] || 'e' || exponent)::numeric;
  end if;

  return mantissa;
end;
$$;

comment on function vm_sync.parse_quantity(text) is
  'Exact value of a Kubernetes resource.Quantity string (bytes for memory, cores for CPU); NULL when malformed';


-- A quantity as it appears in JSON: a string, or (Kubernetes accepts it too) a bare number.
-- Returns the exact value, or the reason it cannot be used; both NULL when the field is absent.
create or replace function vm_sync.quantity_value(v jsonb, out value numeric, out problem text)
language plpgsql immutable parallel safe
as $$
begin
  if v is null or jsonb_typeof(v) = 'null' then
    return;
  end if;
  if jsonb_typeof(v) = 'string' then
    value := vm_sync.parse_quantity(v #>> '{}');
  elsif jsonb_typeof(v) = 'number' then
    value := vm_sync.parse_quantity(v::text);
  else
    problem := 'not a quantity (expected a string such as "4Gi")';
    return;
  end if;
  if value is null then
    problem := 'malformed quantity';
  end if;
end;
$$;

comment on function vm_sync.quantity_value(jsonb) is
  'Parses a JSON quantity (string or number): (value, NULL) when usable, (NULL, reason) when not, (NULL, NULL) when absent';


-- memory_mb from a memory quantity: floor(bytes / 1 MiB), where bytes is the quantity rounded up
-- to a whole byte (resource.Quantity.Value()). Must land in (0, 2^31-1].
create or replace function vm_sync.memory_mb_of(v jsonb, out mb integer, out problem text)
language plpgsql immutable parallel safe
as $$
declare
  q     record;
  whole numeric;
begin
  q := vm_sync.quantity_value(v);
  if q.problem is not null then
    problem := q.problem;
    return;
  end if;
  if q.value is null then
    return;
  end if;
  if q.value < 0 then
    problem := 'negative memory';
  elsif q.value = 0 then
    problem := 'zero memory';
  else
    whole := floor(ceil(q.value) / 1048576);
    if whole < 1 then
      problem := 'less than 1 MiB';
    elsif whole > 2147483647 then
      problem := 'out of integer range (MiB)';
    else
      mb := whole::integer;
    end if;
  end if;
end;
$$;

comment on function vm_sync.memory_mb_of(jsonb) is
  'MiB in a memory quantity (floor of whole bytes / 1048576), or the reason it cannot be used';


-- A CPU count from a cpu quantity ("2", "500m", "1.5"): whole sockets, rounded up.
create or replace function vm_sync.cpu_count_of_quantity(v jsonb, out n integer, out problem text)
language plpgsql immutable parallel safe
as $$
declare
  q     record;
  whole numeric;
begin
  q := vm_sync.quantity_value(v);
  if q.problem is not null then
    problem := q.problem;
    return;
  end if;
  if q.value is null then
    return;
  end if;
  if q.value <= 0 then
    problem := 'zero or negative CPU';
    return;
  end if;
  whole := ceil(q.value);
  if whole > 2147483647 then
    problem := 'out of integer range';
  else
    n := whole::integer;
  end if;
end;
$$;

comment on function vm_sync.cpu_count_of_quantity(jsonb) is
  'Whole CPUs in a cpu quantity, rounded up (500m -> 1), or the reason it cannot be used';
