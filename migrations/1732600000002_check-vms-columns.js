// The sync reads and writes a handful of vms columns. If an existing vms table lacks one,
// stop here with a message a DBA can act on, instead of failing later inside ingest().

export const up = (pgm) => {
  pgm.sql(`
    do $check$
    declare
      required constant text[] := array[
        'id', 'vm_name', 'namespace', 'status', 'cpu_count', 'memory_mb', 'guest_os', 'updated_at', 'deleted_at'];
      missing text[];
    begin
      if to_regclass('public.vms') is null then
        raise exception 'ssvirt-vm-sync: table public.vms does not exist';
      end if;
      select array_agg(r order by r) into missing
        from unnest(required) as r
       where not exists (
             select 1 from information_schema.columns c
              where c.table_schema = 'public' and c.table_name = 'vms' and c.column_name = r);
      if missing is not null then
        raise exception 'ssvirt-vm-sync: public.vms lacks column(s) %', array_to_string(missing, ', ')
          using hint = 'The sync needs SSVirt''s vms shape: id, vm_name, namespace, status, cpu_count, '
                    || 'memory_mb, guest_os, updated_at, deleted_at. Migrate the SSVirt application first.',
                errcode = 'undefined_column';
      end if;
    end
    $check$;
  `);
};

export const down = false;
