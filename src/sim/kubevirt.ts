// Renders VirtualMachine and VirtualMachineInstance objects the way KubeVirt 1.6 serves them
// (`kubectl get vm/vmi -o json`), from small mutable models kept by the cluster. Subtrees that
// are the same for every VM (devices, volumes, managedFields) are shared frozen constants, so
// 100,000 VMs + VMIs cost little memory; every render returns a new top-level object.

export type RunStrategy = 'Always' | 'Halted' | 'Manual' | 'RerunOnFailure' | 'Once';
export type VmiPhase = 'Pending' | 'Scheduling' | 'Scheduled' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export interface CpuTopology {
  cores: number;
  sockets: number;
  threads: number;
  /** Upper bound for CPU hotplug (KubeVirt defaults it to 4 x sockets). */
  maxSockets?: number;
}

/** status.guestOSInfo as the guest agent reports it. */
export interface GuestOSInfo {
  id?: string;
  name?: string;
  prettyName?: string;
  version?: string;
  versionId?: string;
  kernelRelease?: string;
  kernelVersion?: string;
  machine?: string;
  [extra: string]: unknown;
}

export const FEDORA: GuestOSInfo = Object.freeze({
  id: 'fedora',
  kernelRelease: '6.11.4-301.fc41.x86_64',
  kernelVersion: '#1 SMP PREEMPT_DYNAMIC Sun Oct 20 15:02:33 UTC 2024',
  machine: 'x86_64',
  name: 'Fedora Linux',
  prettyName: 'Fedora Linux 41 (Cloud Edition)',
  version: '41 (Cloud Edition)',
  versionId: '41',
});

export interface VmiModel {
  namespace: string;
  name: string;
  uid: string;
  created: string;
  /** The owning VM, absent for a standalone VMI. */
  owner?: { name: string; uid: string; generation: number };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  phase: VmiPhase;
  phaseSince: string;
  nodeName?: string;
  ip: string;
  cpu: CpuTopology;
  /** status.currentCPUTopology; undefined until the domain runs. */
  currentCpu?: CpuTopology;
  memory: string;
  memoryAtBoot?: string;
  memoryCurrent?: string;
  memoryRequested?: string;
  /** Guest agent report; undefined = agent not connected (guestOSInfo is then `{}`). */
  guestOS?: GuestOSInfo;
  agentSince?: string;
  paused: boolean;
  deletionTimestamp?: string;
}

export interface VmModel {
  namespace: string;
  name: string;
  uid: string;
  created: string;
  generation: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** `vm.kubevirt.io/os` on the VM and its template (an OS hint, as templates set it). */
  osHint?: string;
  /** spec.runStrategy; when undefined the legacy spec.running is rendered instead. */
  runStrategy?: RunStrategy;
  running?: boolean;
  cpu: CpuTopology;
  memory: string;
  /** Renders domain.memory.guest (true) or only domain.resources.requests.memory (false). */
  memoryAsGuest: boolean;
  printableStatus: string;
  statusSince: string;
  deletionTimestamp?: string;
  vmi?: VmiModel;
}

/** Kubernetes timestamps are RFC 3339 with second precision. */
export function timestamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Returns one shared instance per key: 100,000 VMs mostly differ in names and uids, so their
 * conditions, topologies and quantities are the same few objects (objects are never mutated).
 */
const interned = new Map<string, unknown>();
function intern<T>(key: string, build: () => T): T {
  let value = interned.get(key) as T | undefined;
  if (value === undefined) {
    if (interned.size > 200_000) interned.clear();
    value = build();
    interned.set(key, value);
  }
  return value;
}

const API_VERSION = 'kubevirt.io/v1';
const OBSERVED = Object.freeze({
  'kubevirt.io/latest-observed-api-version': 'v1',
  'kubevirt.io/storage-observed-api-version': 'v1',
});

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

function condition(type: string, status: boolean, since: string, reason?: string, message?: string): Record<string, unknown> {
  return intern(`c|${type}|${status}|${since}|${reason ?? ''}|${message ?? ''}`, () => buildCondition(type, status, since, reason, message));
}

function buildCondition(type: string, status: boolean, since: string, reason?: string, message?: string): Record<string, unknown> {
  const c: Record<string, unknown> = { lastProbeTime: null, lastTransitionTime: since, status: status ? 'True' : 'False', type };
  if (reason) c.reason = reason;
  if (message) c.message = message;
  return c;
}

function cpuSpec(cpu: CpuTopology): Record<string, number> {
  return intern(`cpu|${cpu.cores}|${cpu.sockets}|${cpu.threads}|${cpu.maxSockets ?? ''}`, () => ({ cores: cpu.cores, maxSockets: cpu.maxSockets ?? cpu.sockets * 4, sockets: cpu.sockets, threads: cpu.threads }));
}

function topology(cpu: CpuTopology): Record<string, number> {
  return intern(`topo|${cpu.cores}|${cpu.sockets}|${cpu.threads}`, () => ({ cores: cpu.cores, sockets: cpu.sockets, threads: cpu.threads }));
}

const VM_FINALIZERS = Object.freeze(['kubevirt.io/virtualMachineControllerFinalize']);
const VMI_FINALIZERS = Object.freeze(['kubevirt.io/virtualMachineControllerFinalize', 'foregroundDeleteVirtualMachine']);
const STANDALONE_FINALIZERS = Object.freeze(['foregroundDeleteVirtualMachine']);
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
export function renderVm(vm: VmModel): Record<string, unknown> {
  const metadata: Record<string, unknown> = {
    annotations:
      !vm.osHint && Object.keys(vm.annotations).length === 0
        ? OBSERVED
        : { ...OBSERVED, ...hintAnnotations(vm), ...vm.annotations },
    creationTimestamp: vm.created,
    finalizers: VM_FINALIZERS,
    generation: vm.generation,
    labels: vm.labels,
    managedFields: sharedManagedFields(vm.created, 'virt-controller'),
    name: vm.name,
    namespace: vm.namespace,
    uid: vm.uid,
  };
  if (vm.deletionTimestamp) {
    metadata.deletionGracePeriodSeconds = 0;
    metadata.deletionTimestamp = vm.deletionTimestamp;
  }
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
export function renderVmi(vmi: VmiModel): Record<string, unknown> {
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

function vmiStatus(vmi: VmiModel): Record<string, unknown> {
  const since = vmi.phaseSince;
  const status: Record<string, unknown> = {
    guestOSInfo: vmi.guestOS ?? {},
    phase: vmi.phase,
    phaseTransitionTimestamps: intern(`ptt|${vmi.phase}|${since}`, () => [{ phase: vmi.phase, phaseTransitionTimestamp: since }]),
    runtimeUser: vmi.phase === 'Pending' ? 0 : 107,
  };
  if (vmi.phase === 'Pending' || vmi.phase === 'Scheduling') {
    status.conditions = [condition('Ready', false, since, 'GuestNotRunning', 'Guest VM is not reported as running')];
    return status;
  }
  const running = vmi.phase === 'Running';
  const conditions = [
    condition('Ready', running && !vmi.paused && !vmi.deletionTimestamp, since),
    condition('LiveMigratable', false, since, 'DisksNotLiveMigratable', 'cannot migrate VMI: PVC containerdisk is not shared'),
    condition('StorageLiveMigratable', false, since, 'DisksNotLiveMigratable', 'cannot migrate VMI: PVC containerdisk is not shared'),
  ];
  if (vmi.guestOS && running) conditions.push(condition('AgentConnected', true, vmi.agentSince ?? since));
  if (vmi.paused) conditions.push(condition('Paused', true, since, 'PausedByUser', 'VMI was paused by user'));
  Object.assign(status, {
    activePods: { [podUid(vmi.uid)]: vmi.nodeName ?? '' },
    conditions,
    launcherContainerImageVersion: 'quay.io/kubevirt/virt-launcher:v1.6.0',
    migrationMethod: 'BlockMigration',
    migrationTransport: 'Unix',
    nodeName: vmi.nodeName,
    qosClass: 'Burstable',
    selinuxContext: 'none',
    virtualMachineRevisionName: vmi.owner ? `revision-start-vm-${vmi.owner.uid}-${vmi.owner.generation}` : undefined,
    volumeStatus: VOLUME_STATUS,
  });
  if (running) {
    status.currentCPUTopology = topology(vmi.currentCpu ?? vmi.cpu);
    status.interfaces = [
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
    ];
    status.machine = MACHINE_STATUS;
    const atBoot = vmi.memoryAtBoot ?? vmi.memory;
    const current = vmi.memoryCurrent ?? vmi.memory;
    const requested = vmi.memoryRequested ?? vmi.memory;
    status.memory = intern(`mem|${atBoot}|${current}|${requested}`, () => ({ guestAtBoot: atBoot, guestCurrent: current, guestRequested: requested }));
  }
  return status;
}

function podUid(uid: string): string {
  return uid.slice(0, 24) + uid.slice(24).split('').reverse().join('');
}

function macFor(uid: string): string {
  const hex = uid.replace(/-/g, '');
  return `02:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6, 8)}:${hex.slice(8, 10)}`;
}
