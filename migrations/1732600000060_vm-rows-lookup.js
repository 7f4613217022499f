// The merge's own index of public.vms by (namespace, vm_name): the contract forbids adding one to
// vms, and without it every batch's merge scanned the whole table. Only ever a hint: every entry is
// checked against the row it names before use (sql/055_vm_rows.sql), the merge records what its
// fallback scan finds, and reconcile() makes it exact. Filled here so that the first batches after
// the upgrade find their rows.
export const up = (pgm) => {
  pgm.sql(`
    create table if not exists vm_sync.vm_rows (
      id        varchar(255) primary key,
      namespace text not null,
      vm_name   text not null
    );
    create index if not exists vm_rows_key on vm_sync.vm_rows (namespace, vm_name);
    comment on table vm_sync.vm_rows is 'Live public.vms rows by (namespace, vm_name), kept by the merge and reconcile; a hint each merge verifies against vms';
    insert into vm_sync.vm_rows (id, namespace, vm_name)
    select v.id, v.namespace, v.vm_name
      from public.vms v
     where v.deleted_at is null and v.namespace is not null and v.vm_name is not null
    on conflict (id) do nothing;
  `);
};

export const down = (pgm) => {
  pgm.sql(`drop table if exists vm_sync.vm_rows`);
};
