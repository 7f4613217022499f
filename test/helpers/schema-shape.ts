// Everything migrate decides about a database, as one comparable map: each vm_sync function
// (pg_get_functiondef), aggregate, view, type, table, column, index, constraint, trigger, comment
// and grant, plus public.vms and the migrating role's default privileges. Two databases that should
// be identical (an upgraded one and a fresh one) are compared with diffShapes.
import pg from 'pg';

export type Shape = Map<string, string>;

/** Rows of (key, value): the key names an object, the value is everything about it that matters. */
const SHAPE_SQL = `
  with fns as (
    select p.oid, p.prokind, p.oid::regprocedure::text as sig
      from pg_catalog.pg_proc p
     where p.pronamespace = 'vm_sync'::regnamespace
  )
  select 'function ' || f.sig as key,
         pg_catalog.pg_get_functiondef(f.oid)
           || E'\\n-- acl: ' || coalesce((select string_agg(a::text, ' ' order by a::text) from unnest(p.proacl) a), '(default)')
           || E'\\n-- comment: ' || coalesce(obj_description(f.oid, 'pg_proc'), '(none)') as value
    from fns f join pg_catalog.pg_proc p on p.oid = f.oid
   where f.prokind <> 'a'
  union all
  select 'aggregate ' || f.sig,
         concat_ws(' ', 'sfunc', a.aggtransfn::regprocedure::text, 'stype', a.aggtranstype::regtype::text,
                   'final', a.aggfinalfn::text, 'combine', a.aggcombinefn::text, 'init', a.agginitval, 'kind', a.aggkind::text)
           || ' -- acl: ' || coalesce((select string_agg(x::text, ' ' order by x::text) from unnest(p.proacl) x), '(default)')
           || ' -- comment: ' || coalesce(obj_description(f.oid, 'pg_proc'), '(none)')
    from fns f join pg_catalog.pg_aggregate a on a.aggfnoid = f.oid join pg_catalog.pg_proc p on p.oid = f.oid
  union all
  select 'type ' || t.oid::regtype::text,
         t.typtype::text || ' ' || coalesce((select string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' order by a.attnum)
                                         from pg_catalog.pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped), '')
           || coalesce((select ' enum ' || string_agg(e.enumlabel, ', ' order by e.enumsortorder) from pg_catalog.pg_enum e where e.enumtypid = t.oid), '')
    from pg_catalog.pg_type t
   where t.typnamespace = 'vm_sync'::regnamespace
     and t.typelem = 0
     and (t.typrelid = 0 or (select c.relkind from pg_catalog.pg_class c where c.oid = t.typrelid) = 'c')
  union all
  select 'relation ' || c.oid::regclass::text,
         c.relkind::text || ' ' || coalesce(pg_catalog.pg_get_viewdef(c.oid), '')
           || ' options ' || coalesce(array_to_string(c.reloptions, ','), '')
           || ' -- acl: ' || coalesce((select string_agg(x::text, ' ' order by x::text) from unnest(c.relacl) x), '(default)')
           || ' -- comment: ' || coalesce(obj_description(c.oid, 'pg_class'), '(none)')
    from pg_catalog.pg_class c
   where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
     and (c.relnamespace = 'vm_sync'::regnamespace or c.oid = 'public.vms'::regclass)
  union all
  select 'column ' || c.oid::regclass::text || '.' || a.attname,
         concat_ws(' ', format_type(a.atttypid, a.atttypmod), case when a.attnotnull then 'not null' end,
                   'default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), 'identity ' || nullif(a.attidentity::text, ''),
                   'generated ' || nullif(a.attgenerated::text, ''), 'compression ' || nullif(a.attcompression::text, ''),
                   'position ' || a.attnum, '-- comment: ' || col_description(c.oid, a.attnum),
                   '-- acl: ' || (select string_agg(x::text, ' ' order by x::text) from unnest(a.attacl) x))
    from pg_catalog.pg_class c
    join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    left join pg_catalog.pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
   where c.relkind in ('r', 'p', 'v', 'm', 'f')
     and (c.relnamespace = 'vm_sync'::regnamespace or c.oid = 'public.vms'::regclass)
  union all
  select 'index ' || i.indexrelid::regclass::text, pg_catalog.pg_get_indexdef(i.indexrelid)
    from pg_catalog.pg_index i join pg_catalog.pg_class c on c.oid = i.indrelid
   where c.relnamespace = 'vm_sync'::regnamespace or c.oid = 'public.vms'::regclass
  union all
  select 'constraint ' || coalesce(k.conrelid::regclass::text, k.contypid::regtype::text) || ' ' || k.conname,
         pg_catalog.pg_get_constraintdef(k.oid)
    from pg_catalog.pg_constraint k
   where k.connamespace = 'vm_sync'::regnamespace or k.conrelid = 'public.vms'::regclass
  union all
  select 'trigger ' || t.tgrelid::regclass::text || ' ' || t.tgname, pg_catalog.pg_get_triggerdef(t.oid)
    from pg_catalog.pg_trigger t join pg_catalog.pg_class c on c.oid = t.tgrelid
   where not t.tgisinternal and (c.relnamespace = 'vm_sync'::regnamespace or c.oid = 'public.vms'::regclass)
  union all
  select 'schema vm_sync',
         coalesce((select string_agg(x::text, ' ' order by x::text) from unnest(n.nspacl) x), '(default)')
           || ' -- comment: ' || coalesce(obj_description(n.oid, 'pg_namespace'), '(none)')
    from pg_catalog.pg_namespace n where n.nspname = 'vm_sync'
  union all
  select 'default privileges ' || d.defaclrole::regrole::text || ' ' || coalesce(d.defaclnamespace::regnamespace::text, '(all schemas)')
           || ' ' || d.defaclobjtype::text,
         (select string_agg(x::text, ' ' order by x::text) from unnest(d.defaclacl) x)
    from pg_catalog.pg_default_acl d
`;

/** The shape of the database at url. */
export async function schemaShape(url: string): Promise<Shape> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const rows = (await client.query<{ key: string; value: string | null }>(SHAPE_SQL)).rows;
    const shape: Shape = new Map();
    for (const r of rows) {
      if (shape.has(r.key)) throw new Error(`schemaShape: ${r.key} appears twice`);
      shape.set(r.key, r.value ?? '');
    }
    return shape;
  } finally {
    await client.end();
  }
}

/** Every difference between two shapes, one line each ("only in", "differs"); empty when identical. */
export function diffShapes(actual: Shape, expected: Shape, actualName = 'upgraded', expectedName = 'fresh'): string[] {
  const out: string[] = [];
  for (const [key, value] of expected) {
    if (!actual.has(key)) out.push(`only in ${expectedName}: ${key}`);
    else if (actual.get(key) !== value) {
      out.push(`differs: ${key}\n  ${actualName}: ${actual.get(key)}\n  ${expectedName}: ${value}`);
    }
  }
  for (const key of actual.keys()) if (!expected.has(key)) out.push(`only in ${actualName}: ${key}`);
  return out.sort();
}
