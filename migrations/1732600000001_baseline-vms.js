// SSVirt owns public.vms. On a standalone database (tests, demo, a fresh install) create it with
// SSVirt's shape; where it exists already, leave it exactly as it is.

export const up = (pgm) => {
  pgm.sql(`
    create table if not exists public.vms (
      id          varchar(255) primary key,
      name        text not null,
      description text,
      vapp_id     varchar(255) not null,
      vm_name     text,
      namespace   text,
      status      text,
      cpu_count   integer check (cpu_count > 0),
      memory_mb   integer check (memory_mb > 0),
      guest_os    text,
      created_at  timestamptz default now(),
      updated_at  timestamptz default now(),
      deleted_at  timestamptz
    )
  `);
};

// Never drop the application's table.
export const down = false;
