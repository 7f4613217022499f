// Instancetypes (CONTRACT section 3b): vm_sync.snapshots also stages KubeVirt's instancetype objects,
// their ControllerRevisions and (staged, unused) preferences. Cluster-scoped objects are stored
// under namespace '' (no VM or VMI can have that namespace: ingest refuses it for them).
// DDL only: the functions (sql/045_instancetype.sql and the files it touches) are applied by migrate.
export const up = (pgm) => {
  pgm.sql(`
    alter table vm_sync.snapshots drop constraint if exists snapshots_kind_check;
    alter table vm_sync.snapshots add constraint snapshots_kind_check check (kind in (
      'VirtualMachine', 'VirtualMachineInstance',
      'VirtualMachineInstancetype', 'VirtualMachineClusterInstancetype',
      'VirtualMachinePreference', 'VirtualMachineClusterPreference',
      'ControllerRevision'));

    -- For a VirtualMachine: the instancetype it names (kind normalised to KubeVirt's Kind, name) and
    -- the revisions that may pin it (status.instancetypeRef.controllerRevisionRef.name, then
    -- spec.instancetype.revisionName). For a ControllerRevision: the kind and name of the
    -- instancetype whose snapshot it holds. cpu_count and memory_mb of an instancetype (or of a
    -- revision holding one) are its spec.cpu.guest and spec.memory.guest.
    alter table vm_sync.snapshots
      add column if not exists instancetype_kind text,
      add column if not exists instancetype_name text,
      add column if not exists instancetype_revision text,
      add column if not exists instancetype_spec_revision text;

    -- "Which VMs name this instancetype / this revision": an instancetype or revision event re-merges
    -- them in one statement, through these.
    create index if not exists snapshots_vm_instancetype_idx
      on vm_sync.snapshots (instancetype_kind, instancetype_name, namespace)
      where kind = 'VirtualMachine' and instancetype_name is not null;
    create index if not exists snapshots_vm_revision_idx
      on vm_sync.snapshots (namespace, instancetype_revision)
      where kind = 'VirtualMachine' and instancetype_revision is not null;
    create index if not exists snapshots_vm_spec_revision_idx
      on vm_sync.snapshots (namespace, instancetype_spec_revision)
      where kind = 'VirtualMachine' and instancetype_spec_revision is not null;

    -- What derivation returns grows by the same four values.
    alter type vm_sync.derived
      add attribute instancetype_kind text,
      add attribute instancetype_name text,
      add attribute instancetype_revision text,
      add attribute instancetype_spec_revision text;
  `);
};

export const down = false;
