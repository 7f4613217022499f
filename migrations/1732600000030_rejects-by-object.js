// Rejects looked up by object: vm_sync.record_rejects() records one object version's reject once
// (a restart replaying a quarantined event adds nothing), and operators list an object's rejects.
export const up = (pgm) => {
  pgm.sql(`create index if not exists rejects_object_idx on vm_sync.rejects (namespace, name)`);
};

export const down = (pgm) => {
  pgm.sql(`drop index if exists vm_sync.rejects_object_idx`);
};
