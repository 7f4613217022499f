// Everything the sync adds lives in schema vm_sync: staged snapshots, rejects, the change feed,
// watch checkpoints, leadership and settings. public.vms is never altered.

export const up = (pgm) => {
  pgm.sql(`
    create schema if not exists vm_sync;
    comment on schema vm_sync is 'ssvirt-vm-sync: staged KubeVirt snapshots and the functions that merge them into public.vms';

    -- One row per (kind, namespace, name): the latest object seen, and the values derived from it.
    create table vm_sync.snapshots (
      kind             text not null check (kind in ('VirtualMachine', 'VirtualMachineInstance')),
      namespace        text not null,
      name             text not null,
      uid              text,
      resource_version text,
      deleted          boolean not null default false,
      object           jsonb not null,
      observed_at      timestamptz not null default now(),
      -- The VirtualMachine this object belongs to: its own name for a VM, the owner for a VMI.
      vm_name          text not null,
      cpu_count        integer,
      memory_mb        integer,
      guest_os         text,
      guest_os_hint    text,
      status           text,
      primary key (kind, namespace, name)
    );
    create index snapshots_vm_idx on vm_sync.snapshots (namespace, vm_name);
    comment on table vm_sync.snapshots is 'Latest VM/VMI object per (kind, namespace, name), without metadata.managedFields, with its derived values';

    -- Every value that could not be used, and why. Good values beside it still apply.
    create table vm_sync.rejects (
      id               bigint generated always as identity primary key,
      rejected_at      timestamptz not null default now(),
      kind             text,
      namespace        text,
      name             text,
      uid              text,
      resource_version text,
      field            text not null,
      value            jsonb,
      reason           text not null
    );
    create index rejects_rejected_at_idx on vm_sync.rejects (rejected_at);
    comment on table vm_sync.rejects is 'Values left out of the merge: object key, field, offending value (truncated past 1 KiB), reason';

    -- The durable change feed: NOTIFY is lost when nobody listens; this is not.
    create table vm_sync.changes (
      seq         bigint generated always as identity primary key,
      changed_at  timestamptz not null default now(),
      vm_id       varchar(255) not null,
      namespace   text,
      vm_name     text,
      changes     jsonb not null
    );
    create index changes_changed_at_idx on vm_sync.changes (changed_at);
    comment on table vm_sync.changes is 'One row per vms row change, in commit order; notifications carry its seq. Pruned by reconcile() after change_retention';

    -- Where each watch stands, so a restart resumes instead of relisting.
    create table vm_sync.watch_state (
      kind             text not null,
      scope            text not null default '',
      resource_version text,
      updated_at       timestamptz not null default now(),
      relists          bigint not null default 0,
      last_relist_at   timestamptz,
      primary key (kind, scope)
    );
    comment on table vm_sync.watch_state is 'Last committed resourceVersion per watched kind and scope (namespace, or empty for cluster-wide)';

    -- Who leads. The advisory lock is the truth; this row is for people and for status.
    create table vm_sync.leader (
      id            integer primary key default 1 check (id = 1),
      holder        text,
      pid           integer,
      term          bigint not null default 0,
      acquired_at   timestamptz,
      heartbeat_at  timestamptz,
      last_batch_at timestamptz,
      batches       bigint not null default 0,
      events        bigint not null default 0
    );
    insert into vm_sync.leader (id) values (1);
    comment on table vm_sync.leader is 'The current leader as last recorded; the advisory lock vm_sync.leader_lock_id() is authoritative';

    create table vm_sync.settings (
      name        text primary key,
      value       text not null,
      description text
    );
    insert into vm_sync.settings (name, value, description) values
      ('change_retention', '24 hours', 'How long vm_sync.changes keeps a change (an interval)'),
      ('reject_retention', '7 days', 'How long vm_sync.rejects keeps a reject (an interval)');
    comment on table vm_sync.settings is 'Tunables read by the sync functions';
  `);
};

export const down = false;
