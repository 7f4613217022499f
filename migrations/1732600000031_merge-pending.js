// VMs a merge had to leave because the application held their vms row locked (the merge never
// waits for a row lock, so it is never part of a deadlock): the next merge takes them first.
export const up = (pgm) => {
  pgm.sql(`
    create table if not exists vm_sync.merge_pending (
      namespace text not null,
      vm_name   text not null,
      since     timestamptz not null default now(),
      primary key (namespace, vm_name)
    );
    comment on table vm_sync.merge_pending is 'VMs whose vms row was locked by another transaction at their merge: merged again by the next merge';
  `);
};

export const down = (pgm) => {
  pgm.sql(`drop table if exists vm_sync.merge_pending`);
};
