// The compact VMs and VMIs of the first simulator (size mode 'small'): one container disk, a
// two-line cloud-init, token managedFields; about 2.5 KB per VM and 4 KB per VMI. Kept for tests
// and benchmarks that want the old, light objects; the default is kubevirt-real.ts.
import type { VmModel, VmiModel } from './kubevirt.js';
import { API_VERSION, condition, cpuSpec, intern, macFor, OBSERVED, STANDALONE_FINALIZERS, VMI_FINALIZERS, vmMetadata } from './kubevirt-common.js';
import { renderVmiStatus, type VmiStatusLook } from './kubevirt-vmi-status.js';

const DEVICES = Object.freeze({
  disks: [
    { disk: { bus: 'virtio' }, name: 'containerdisk' },
    { disk: { bus: 'virtio' }, name: 'cloudinitdisk' },
  ],
  interfaces: [{ masquerade: {}, name: 'default' }],
});
const NETWORKS = Object.freeze([{ name: 'default', pod: {} }]);
const VOLUMES = Object.freeze([
  { containerDisk: { image: 'quay.io/containerdisks/fedora:41' }, name: 'containerdisk' },
  { cloudInitNoCloud: { userData: '#cloud-config\nuser: fedora\npassword: fedora\nchpasswd: { expire: False }\n' }, name: 'cloudinitdisk' },
]);

function fieldsTime(created: string): string {
  return created;
}

/** managedFields as a kubectl apply + virt-controller pair; shape only, shared per timestamp. */
function managedFields(created: string, statusManager: string): unknown[] {
  return [
    {
      apiVersion: API_VERSION,
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:metadata': { 'f:annotations': { '.': {}, 'f:kubectl.kubernetes.io/last-applied-configuration': {} } }, 'f:spec': { '.': {}, 'f:template': {} } },
      manager: 'kubectl-client-side-apply',
      operation: 'Update',
      time: fieldsTime(created),
    },
    {
      apiVersion: API_VERSION,
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:status': { '.': {}, 'f:conditions': {}, 'f:printableStatus': {} } },
      manager: statusManager,
      operation: 'Update',
      subresource: 'status',
      time: fieldsTime(created),
    },
  ];
}
const managedCache = new Map<string, unknown[]>();
function sharedManagedFields(created: string, manager: string): unknown[] {
  const key = `${manager}@${created}`;
  let value = managedCache.get(key);
  if (!value) {
    value = managedFields(created, manager);
    if (managedCache.size > 10_000) managedCache.clear();
    managedCache.set(key, value);
  }
  return value;
}

const SNAPSHOT_STATUSES = Object.freeze([
  { enabled: false, name: 'containerdisk', reason: 'Snapshot is not supported for this volumeSource type [containerdisk]' },
  { enabled: false, name: 'cloudinitdisk', reason: 'Snapshot is not supported for this volumeSource type [cloudinitdisk]' },
]);
const VOLUME_STATUS = Object.freeze([
  { name: 'cloudinitdisk', size: 1048576, target: 'vdb' },
  { containerDiskVolume: { checksum: 1377468289 }, name: 'containerdisk', target: 'vda' },
]);
const MACHINE_SPEC = Object.freeze({ type: 'q35' });
const MACHINE_STATUS = Object.freeze({ type: 'pc-q35-rhel9.6.0' });
const FEATURES = Object.freeze({ acpi: { enabled: true } });

function requests(memory: string): Record<string, unknown> {
  return intern(`req|${memory}`, () => ({ requests: { memory } }));
}

/** The VM template's domain: identical for every VM of the same shape. */
function vmDomain(vm: VmModel): Record<string, unknown> {
  return intern(`dom|${vm.cpu.cores}|${vm.cpu.sockets}|${vm.cpu.threads}|${vm.cpu.maxSockets ?? ''}|${vm.memory}|${vm.memoryAsGuest}`, () => {
    const domain: Record<string, unknown> = { cpu: cpuSpec(vm.cpu), devices: DEVICES, machine: MACHINE_SPEC, resources: requests(vm.memory) };
    if (vm.memoryAsGuest) domain.memory = { guest: vm.memory };
    return domain;
  });
}

function hintAnnotations(model: { osHint?: string }): Record<string, string> {
  return model.osHint ? { 'vm.kubevirt.io/os': model.osHint } : {};
}

/** The VirtualMachine object for a model (without resourceVersion: the store stamps it). */
export function renderSmallVm(vm: VmModel): Record<string, unknown> {
  const metadata = vmMetadata(
    vm,
    !vm.osHint && Object.keys(vm.annotations).length === 0 ? OBSERVED : { ...OBSERVED, ...hintAnnotations(vm), ...vm.annotations },
    vm.labels,
    sharedManagedFields(vm.created, 'virt-controller'),
  );
  const domain = vmDomain(vm);
  const spec: Record<string, unknown> = {};
  if (vm.runStrategy) spec.runStrategy = vm.runStrategy;
  else spec.running = vm.running ?? false;
  spec.template = {
    metadata: {
      ...(vm.osHint ? { annotations: hintAnnotations(vm) } : {}),
      creationTimestamp: null,
      labels: { 'kubevirt.io/domain': vm.name, 'kubevirt.io/size': 'small' },
    },
    spec: { architecture: 'amd64', domain, networks: NETWORKS, terminationGracePeriodSeconds: 180, volumes: VOLUMES },
  };
  const vmi = vm.vmi;
  const ready = vmi?.phase === 'Running' && !vmi.paused && !vmi.deletionTimestamp;
  const conditions = vmi
    ? [condition('Ready', ready, vm.statusSince), condition('LiveMigratable', false, vm.statusSince, 'DisksNotLiveMigratable', 'cannot migrate VMI: PVC containerdisk is not shared')]
    : [condition('Ready', false, vm.statusSince, 'VMINotExists', 'VMI does not exist')];
  if (vmi?.paused) conditions.push(condition('Paused', true, vm.statusSince, 'PausedByUser', 'VMI was paused by user'));
  const status: Record<string, unknown> = {
    conditions,
    desiredGeneration: vm.generation,
    observedGeneration: vm.generation,
    printableStatus: vm.printableStatus,
    runStrategy: vm.runStrategy ?? (vm.running ? 'Always' : 'Halted'),
    volumeSnapshotStatuses: SNAPSHOT_STATUSES,
  };
  if (vmi) status.created = true;
  if (ready) status.ready = true;
  return { apiVersion: API_VERSION, kind: 'VirtualMachine', metadata, spec, status };
}

/** The VirtualMachineInstance object for a model. */
export function renderSmallVmi(vmi: VmiModel): Record<string, unknown> {
  const labels: Record<string, string> = { ...vmi.labels };
  if (vmi.nodeName) labels['kubevirt.io/nodeName'] = vmi.nodeName;
  const metadata: Record<string, unknown> = {
    annotations:
      Object.keys(vmi.annotations).length === 0
        ? intern(`vmiann|${vmi.owner?.generation ?? ''}`, () => ({ ...OBSERVED, ...(vmi.owner ? { 'kubevirt.io/vm-generation': String(vmi.owner.generation) } : {}) }))
        : { ...OBSERVED, ...(vmi.owner ? { 'kubevirt.io/vm-generation': String(vmi.owner.generation) } : {}), ...vmi.annotations },
    creationTimestamp: vmi.created,
    finalizers: vmi.owner ? VMI_FINALIZERS : STANDALONE_FINALIZERS,
    generation: 1 + (vmi.phase === 'Pending' ? 0 : 2),
    labels,
    managedFields: sharedManagedFields(vmi.created, 'virt-handler'),
    name: vmi.name,
    namespace: vmi.namespace,
    uid: vmi.uid,
  };
  if (vmi.owner) {
    metadata.ownerReferences = [
      { apiVersion: API_VERSION, blockOwnerDeletion: true, controller: true, kind: 'VirtualMachine', name: vmi.owner.name, uid: vmi.owner.uid },
    ];
  }
  if (vmi.deletionTimestamp) {
    metadata.deletionGracePeriodSeconds = 180;
    metadata.deletionTimestamp = vmi.deletionTimestamp;
  }
  const spec = {
    architecture: 'amd64',
    domain: {
      cpu: intern(`vmicpu|${vmi.cpu.cores}|${vmi.cpu.sockets}|${vmi.cpu.threads}|${vmi.cpu.maxSockets ?? ''}`, () => ({ ...cpuSpec(vmi.cpu), model: 'host-model' })),
      devices: DEVICES,
      features: FEATURES,
      firmware: { serial: vmi.uid, uuid: vmi.uid },
      machine: MACHINE_SPEC,
      memory: intern(`guest|${vmi.memory}`, () => ({ guest: vmi.memory })),
      resources: requests(vmi.memory),
    },
    evictionStrategy: 'None',
    networks: NETWORKS,
    terminationGracePeriodSeconds: 180,
    volumes: VOLUMES,
  };
  return { apiVersion: API_VERSION, kind: 'VirtualMachineInstance', metadata, spec, status: vmiStatus(vmi) };
}

const SMALL_VMI_STATUS: VmiStatusLook = {
  phaseTransitionTimestamps: (vmi) =>
    intern(`ptt|${vmi.phase}|${vmi.phaseSince}`, () => [{ phase: vmi.phase, phaseTransitionTimestamp: vmi.phaseSince }]),
  readinessConditions: (vmi) => [
    condition('LiveMigratable', false, vmi.phaseSince, 'DisksNotLiveMigratable', 'cannot migrate VMI: PVC containerdisk is not shared'),
    condition('StorageLiveMigratable', false, vmi.phaseSince, 'DisksNotLiveMigratable', 'cannot migrate VMI: PVC containerdisk is not shared'),
  ],
  launcherImage: 'quay.io/kubevirt/virt-launcher:v1.6.0',
  machine: MACHINE_STATUS,
  migrationMethod: 'BlockMigration',
  selinuxContext: () => 'none',
  volumeStatus: () => VOLUME_STATUS,
  interfaces: (vmi) => [
    {
      infoSource: vmi.guestOS ? 'domain, guest-agent' : 'domain',
      interfaceName: vmi.guestOS ? 'eth0' : undefined,
      ipAddress: vmi.ip,
      ipAddresses: [vmi.ip],
      mac: macFor(vmi.uid),
      name: 'default',
      podInterfaceName: 'eth0',
      queueCount: 1,
    },
  ],
};

function vmiStatus(vmi: VmiModel): Record<string, unknown> {
  return renderVmiStatus(vmi, SMALL_VMI_STATUS);
}

