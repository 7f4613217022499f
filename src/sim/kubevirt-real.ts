// VMs and VMIs as OpenShift Virtualization 4.19 / KubeVirt 1.6 serves them (the default size
// mode). Field set and nesting follow, in that order of authority:
// - KubeVirt's API types (kubevirt/kubevirt staging/src/kubevirt.io/api/core/v1/types.go:
//   VirtualMachineInstanceStatus, VirtualMachineInstanceMigrationState with its
//   MigrationConfiguration, VolumeStatus with PersistentVolumeClaimInfo, VirtualMachineStatus);
// - real objects from an OpenShift cluster kept as fixtures by stolostron/search-collector
//   (test-data/virtualmachine.json: a VM from the rhel9-server-small template with its labels,
//   the vm.kubevirt.io/validations annotation, dataVolumeTemplates with a DataSource sourceRef,
//   template annotations flavor/os/workload, volumeSnapshotStatuses; test-data/
//   virtualmachineinstance.json: a running VMI in openshift-cnv with volumeStatus per disk,
//   selinuxContext, activePods, phaseTransitionTimestamps, the rhel9 launcher image by digest);
// - managedFields split between the managers as KubeVirt assigns ownership (kubevirt/kubevirt PR
//   3488, its maintainers: virt-controller owns the VMI until Scheduled, virt-handler after it,
//   virt-controller keeps conditions and activePods), encoded as in managed-fields.ts.
// The values a sync reads (cpu, memory, guestOSInfo, printableStatus, hints) are the models' own,
// exactly as in the small rendering; everything else is the bulk a real cluster adds around them.
import type { VmModel, VmiModel } from './kubevirt.js';
import { API_VERSION, condition, cpuSpec, intern, macFor, OBSERVED, STANDALONE_FINALIZERS, VM_FINALIZERS, VMI_FINALIZERS, vmMetadata } from './kubevirt-common.js';
import { fieldsOf, fieldsOfKeyed, fieldsOfKeys, managedEntry, metadataFields } from './managed-fields.js';
import { migrationState } from './kubevirt-migration.js';
import { renderVmiStatus, type VmiStatusLook } from './kubevirt-vmi-status.js';
import { paddingLabels, userData, type ObjectShape } from './object-size.js';

const LAUNCHER_IMAGE = 'registry.redhat.io/container-native-virtualization/virt-launcher-rhel9@sha256:29db41a0505a1d3295b0b4c8bc8e7b6b351b83bece05ee8050ca313a18f55dd8';
const MACHINE = Object.freeze({ type: 'pc-q35-rhel9.6.0' });
const FEATURES = Object.freeze({ acpi: {}, smm: { enabled: true } });
const FIRMWARE_BOOT = Object.freeze({ efi: {} });
/** The common-templates validation rule (vm.kubevirt.io/validations), as in the rhel9 fixture. */
const VALIDATIONS = '[\n  {\n    "name": "minimal-required-memory",\n    "path": "jsonpath::.spec.domain.memory.guest",\n    "rule": "integer",\n    "message": "This VM requires more memory.",\n    "min": 1610612736\n  }\n]\n';
const TEMPLATE_LABELS = Object.freeze({
  'kubevirt.io/dynamic-credentials-support': 'true',
  'vm.kubevirt.io/template': 'rhel9-server-small',
  'vm.kubevirt.io/template.namespace': 'openshift',
  'vm.kubevirt.io/template.revision': '1',
  'vm.kubevirt.io/template.version': 'v0.31.1',
});
const APP_LABEL_KEYS = ['app.kubernetes.io/part-of', 'app.kubernetes.io/component', 'cost-center', 'owner', 'backup.velero.io/schedule', 'sla'];
function diskName(i: number): string {
  return i === 0 ? 'rootdisk' : `datadisk-${i}`;
}
function nicName(i: number): string {
  return i === 0 ? 'default' : `nic-${i}`;
}
function shapeKey(s: ObjectShape): string {
  return `${s.disks}|${s.nics}|${s.guestOnlyInterfaces}|${s.userDataBytes}|${s.appLabels}|${s.applied}|${s.padToBytes ?? ''}`;
}

const DISKS = (s: ObjectShape) =>
  intern(`disks|${s.disks}`, () => {
    const disks: unknown[] = [];
    for (let i = 0; i < s.disks; i++) disks.push(i === 0 ? { bootOrder: 1, disk: { bus: 'virtio' }, name: diskName(i) } : { disk: { bus: 'virtio' }, name: diskName(i) });
    disks.push({ disk: { bus: 'virtio' }, name: 'cloudinitdisk' });
    return Object.freeze(disks);
  });

function interfaces(s: ObjectShape, uid: string): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < s.nics; i++) {
    const nic: Record<string, unknown> = i === 0 ? { macAddress: macFor(uid, i), masquerade: {}, model: 'virtio', name: nicName(i) } : { bridge: {}, macAddress: macFor(uid, i), model: 'virtio', name: nicName(i) };
    out.push(nic);
  }
  return out;
}

const NETWORKS = (s: ObjectShape) =>
  intern(`nets|${s.nics}`, () => {
    const nets: unknown[] = [{ name: 'default', pod: {} }];
    for (let i = 1; i < s.nics; i++) nets.push({ multus: { networkName: `vm-networks/vlan-${100 + i}` }, name: nicName(i) });
    return Object.freeze(nets);
  });

function volumes(s: ObjectShape, vmName: string): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < s.disks; i++) out.push({ dataVolume: { name: `${vmName}-${diskName(i)}` }, name: diskName(i) });
  out.push(intern(`cloudinit|${s.userDataBytes}`, () => ({ cloudInitNoCloud: { userData: userData(s.userDataBytes, 'cloud-user') }, name: 'cloudinitdisk' })));
  return out;
}

function dataVolumeTemplates(s: ObjectShape, vmName: string): unknown[] {
  const root = intern('dvspec|root', () => ({ sourceRef: { kind: 'DataSource', name: 'rhel9', namespace: 'openshift-virtualization-os-images' }, storage: { resources: { requests: { storage: '30Gi' } } } }));
  const blank = intern('dvspec|blank', () => ({ source: { blank: {} }, storage: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '100Gi' } }, storageClassName: 'ocs-storagecluster-ceph-rbd-virtualization', volumeMode: 'Block' } }));
  const out: unknown[] = [];
  for (let i = 0; i < s.disks; i++) {
    out.push({ apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', metadata: { creationTimestamp: null, name: `${vmName}-${diskName(i)}` }, spec: i === 0 ? root : blank });
  }
  return out;
}

function appLabels(s: ObjectShape, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < s.appLabels; i++) out[APP_LABEL_KEYS[i]!] = i === 0 ? name.replace(/-\d+$/, '') : `value-${i}`;
  return out;
}

/** Labels padding a giant VM (and its VMI) to its target size; shared per VM. */
function padding(s: ObjectShape, vmName: string): Record<string, string> {
  if (!s.padToBytes) return {};
  // Counted twice in each object: the label itself and its key in the creating manager's fieldsV1.
  return intern(`pad|${s.padToBytes}|${vmName}`, () => paddingLabels(s.padToBytes! - 2000 - s.disks * 950, vmName));
}

function templateAnnotations(model: { osHint?: string }): Record<string, string> {
  return intern(`tann|${model.osHint ?? ''}`, () => ({
    'vm.kubevirt.io/flavor': 'small',
    ...(model.osHint ? { 'vm.kubevirt.io/os': model.osHint } : {}),
    'vm.kubevirt.io/workload': 'server',
  }));
}

/** The template's labels, which KubeVirt copies onto the VMI (the giant's padding rides here). */
function templateLabels(vm: VmModel): Record<string, string> {
  return { ...appLabels(vm.shape, vm.name), 'kubevirt.io/domain': vm.name, 'kubevirt.io/size': 'small', ...padding(vm.shape, vm.name) };
}

function domainFor(m: { cpu: VmModel['cpu']; memory: string; shape: ObjectShape; uid: string }, memoryAsGuest: boolean, vmi: boolean): Record<string, unknown> {
  const domain: Record<string, unknown> = {
    cpu: vmi ? intern(`vmicpu|${m.cpu.cores}|${m.cpu.sockets}|${m.cpu.threads}|${m.cpu.maxSockets ?? ''}`, () => ({ ...cpuSpec(m.cpu), model: 'host-model' })) : cpuSpec(m.cpu),
    devices: { disks: DISKS(m.shape), interfaces: interfaces(m.shape, m.uid), networkInterfaceMultiqueue: true, rng: {} },
    features: FEATURES,
    firmware: vmi ? { bootloader: FIRMWARE_BOOT, serial: m.uid, uuid: m.uid } : intern('fw', () => ({ bootloader: FIRMWARE_BOOT })),
    machine: MACHINE,
  };
  if (memoryAsGuest || vmi) domain.memory = intern(`guest|${m.memory}`, () => ({ guest: m.memory }));
  domain.resources = intern(`req|${m.memory}`, () => ({ requests: { memory: m.memory } }));
  return domain;
}

function lastApplied(vm: VmModel, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: API_VERSION, kind: 'VirtualMachine', metadata: { annotations: {}, labels: vm.labels, name: vm.name, namespace: vm.namespace }, spec: { ...spec, runStrategy: undefined, running: undefined } }) + '\n';
}

/** The VirtualMachine object (without resourceVersion: the store stamps it). */
export function renderRealVm(vm: VmModel): Record<string, unknown> {
  const s = vm.shape;
  const spec: Record<string, unknown> = { dataVolumeTemplates: dataVolumeTemplates(s, vm.name) };
  if (vm.runStrategy) spec.runStrategy = vm.runStrategy;
  else spec.running = vm.running ?? false;
  spec.template = {
    metadata: { annotations: templateAnnotations(vm), creationTimestamp: null, labels: templateLabels(vm) },
    spec: {
      architecture: 'amd64',
      domain: domainFor(vm, vm.memoryAsGuest, false),
      networks: NETWORKS(s),
      terminationGracePeriodSeconds: 180,
      volumes: volumes(s, vm.name),
    },
  };
  const annotations: Record<string, string> = {
    ...(s.applied ? { 'kubectl.kubernetes.io/last-applied-configuration': lastApplied(vm, spec) } : {}),
    'kubemacpool.io/transaction-timestamp': `${vm.created.replace(/Z$/, '')}.151446447Z`,
    ...OBSERVED,
    ...(vm.osHint ? { 'vm.kubevirt.io/os': vm.osHint } : {}),
    'vm.kubevirt.io/validations': VALIDATIONS,
    ...vm.annotations,
  };
  const labels = { ...TEMPLATE_LABELS, ...appLabels(s, vm.name), ...vm.labels };
  const vmi = vm.vmi;
  const ready = vmi?.phase === 'Running' && !vmi.paused && !vmi.deletionTimestamp;
  const since = vm.statusSince;
  const conditions: unknown[] = [condition('Initialized', true, since)];
  if (vmi) {
    conditions.push(
      condition('Ready', ready, since),
      condition('DataVolumesReady', true, since, 'AllDVsReady', "All of the VMI's DVs are bound and ready"),
      condition('LiveMigratable', true, since),
      condition('StorageLiveMigratable', true, since),
    );
    if (vmi.guestOS && vmi.phase === 'Running') conditions.push(condition('AgentConnected', true, vmi.agentSince ?? since));
    if (vmi.paused) conditions.push(condition('Paused', true, since, 'PausedByUser', 'VMI was paused by user'));
  } else {
    conditions.push(condition('Ready', false, since, 'VMINotExists', 'VMI does not exist'), condition('DataVolumesReady', true, since, 'AllDVsReady', "All of the VMI's DVs are bound and ready"));
  }
  const status: Record<string, unknown> = {
    conditions,
    ...(vmi ? { created: true } : {}),
    desiredGeneration: vm.generation,
    observedGeneration: vm.generation,
    printableStatus: vm.printableStatus,
    ...(ready ? { ready: true } : {}),
    runStrategy: vm.runStrategy ?? (vm.running ? 'Always' : 'Halted'),
    volumeSnapshotStatuses: intern(`snap|${s.disks}`, () => [
      ...Array.from({ length: s.disks }, (_, i) => ({ enabled: true, name: diskName(i) })),
      { enabled: false, name: 'cloudinitdisk', reason: 'Snapshot is not supported for this volumeSource type [cloudinitdisk]' },
    ]),
  };
  const creator = s.applied ? 'kubectl-client-side-apply' : 'Mozilla';
  const managedFields = [
    managedEntry({ manager: creator, time: vm.created, fields: { 'f:metadata': metadataFields({ annotations: { ...annotations, ...OBSERVED_NONE }, labels }), 'f:spec': fieldsOfKeyed(`vmspec|${shapeKey(s)}|${!!vm.runStrategy}|${vm.memoryAsGuest}|${vm.osHint ? 1 : 0}|${vm.cpu.maxSockets ?? ''}|${Object.keys(vm.labels)}`, spec) } }),
    managedEntry({ manager: 'virt-controller', time: since, fields: { 'f:metadata': metadataFields({ annotations: OBSERVED, finalizers: VM_FINALIZERS }) } }),
    managedEntry({ manager: 'virt-controller', time: since, subresource: 'status', fields: { 'f:status': fieldsOf(status) } }),
  ];
  const metadata = vmMetadata(vm, annotations, labels, managedFields);
  return { apiVersion: API_VERSION, kind: 'VirtualMachine', metadata, spec, status };
}

/** Marker so the creator's annotations entry leaves out the keys virt-controller added. */
const OBSERVED_NONE = Object.freeze({ 'kubevirt.io/latest-observed-api-version': undefined, 'kubevirt.io/storage-observed-api-version': undefined });

/** The VirtualMachineInstance object for a model. */
export function renderRealVmi(vmi: VmiModel): Record<string, unknown> {
  const s = vmi.shape;
  const owned = !!vmi.owner;
  const labels: Record<string, string> = { ...vmi.labels, ...appLabels(s, vmi.name), ...padding(s, vmi.name) };
  if (vmi.nodeName) labels['kubevirt.io/nodeName'] = vmi.nodeName;
  const annotations: Record<string, string> = {
    ...OBSERVED,
    ...(vmi.owner ? { 'kubevirt.io/vm-generation': String(vmi.owner.generation) } : {}),
    ...templateAnnotations({ osHint: vmi.annotations['vm.kubevirt.io/os'] }),
    ...vmi.annotations,
  };
  const spec = {
    architecture: 'amd64',
    domain: domainFor(vmi, true, true),
    evictionStrategy: 'LiveMigrate',
    networks: NETWORKS(s),
    terminationGracePeriodSeconds: 180,
    volumes: volumes(s, vmi.owner?.name ?? vmi.name),
  };
  const status = vmiStatus(vmi);
  const handlerKeys = ['currentCPUTopology', 'guestOSInfo', 'interfaces', 'machine', 'memory', 'migrationMethod', 'migrationTransport', 'volumeStatus'];
  const controllerKeys = Object.keys(status).filter((k) => !handlerKeys.includes(k));
  const finalizers = owned ? VMI_FINALIZERS : STANDALONE_FINALIZERS;
  const managedFields = [
    managedEntry({
      manager: 'virt-controller',
      time: vmi.created,
      fields: {
        'f:metadata': metadataFields({ annotations, finalizers, labels, ownerUid: vmi.owner?.uid }),
        'f:spec': fieldsOfKeyed(`vmispec|${shapeKey(s)}|${vmi.cpu.maxSockets ?? ''}`, spec),
        'f:status': fieldsOfKeys(status, controllerKeys, true),
      },
    }),
  ];
  if (vmi.phase !== 'Pending' && vmi.phase !== 'Scheduling') {
    managedFields.push(managedEntry({ manager: 'virt-handler', time: vmi.phaseSince, fields: { 'f:status': fieldsOfKeys(status, handlerKeys) } }));
  }
  const metadata: Record<string, unknown> = {
    annotations,
    creationTimestamp: vmi.created,
    finalizers,
    generation: 1 + (vmi.phase === 'Pending' ? 0 : 2),
    labels,
    managedFields,
    name: vmi.name,
    namespace: vmi.namespace,
    uid: vmi.uid,
  };
  if (vmi.owner) {
    metadata.ownerReferences = [{ apiVersion: API_VERSION, blockOwnerDeletion: true, controller: true, kind: 'VirtualMachine', name: vmi.owner.name, uid: vmi.owner.uid }];
  }
  if (vmi.deletionTimestamp) {
    metadata.deletionGracePeriodSeconds = 180;
    metadata.deletionTimestamp = vmi.deletionTimestamp;
  }
  return { apiVersion: API_VERSION, kind: 'VirtualMachineInstance', metadata, spec, status };
}

function transitions(vmi: VmiModel): unknown[] {
  const order = ['Pending', 'Scheduling', 'Scheduled', 'Running'];
  const upTo = order.indexOf(vmi.phase);
  const phases = upTo >= 0 ? order.slice(0, upTo + 1) : [...order, vmi.phase];
  return intern(`ptt|${phases.join(',')}|${vmi.created}|${vmi.phaseSince}`, () =>
    phases.map((phase, i) => ({ phase, phaseTransitionTimestamp: i === phases.length - 1 ? vmi.phaseSince : vmi.created })),
  );
}

function volumeStatus(s: ObjectShape): unknown[] {
  return intern(`vs|${s.disks}`, () => {
    const out: unknown[] = [{ name: 'cloudinitdisk', size: 1048576, target: `vd${String.fromCharCode(97 + Math.min(s.disks, 25))}` }];
    for (let i = 0; i < s.disks; i++) {
      out.push({
        name: diskName(i),
        persistentVolumeClaimInfo: {
          accessModes: ['ReadWriteMany'],
          capacity: { storage: i === 0 ? '30Gi' : '100Gi' },
          filesystemOverhead: '0',
          requests: { storage: i === 0 ? '30Gi' : '100Gi' },
          volumeMode: 'Block',
        },
        target: i < 26 ? `vd${String.fromCharCode(97 + i)}` : `vd${String.fromCharCode(97 + Math.floor(i / 26) - 1)}${String.fromCharCode(97 + (i % 26))}`,
      });
    }
    return out;
  });
}

const REAL_VMI_STATUS: VmiStatusLook = {
  phaseTransitionTimestamps: transitions,
  readinessConditions: (vmi) => [
    condition('DataVolumesReady', true, vmi.phaseSince, 'AllDVsReady', "All of the VMI's DVs are bound and ready"),
    condition('LiveMigratable', true, vmi.phaseSince),
    condition('StorageLiveMigratable', true, vmi.phaseSince),
  ],
  launcherImage: LAUNCHER_IMAGE,
  machine: MACHINE,
  migrationMethod: 'LiveMigration',
  selinuxContext: (vmi) => `system_u:object_r:container_file_t:s0:c${100 + (vmi.uid.charCodeAt(0) % 900)},c${100 + (vmi.uid.charCodeAt(1) % 900)}`,
  volumeStatus: (vmi) => volumeStatus(vmi.shape),
  migrationState: (vmi, pod) => (vmi.shape.migrated ? migrationState(vmi, pod) : undefined),
  interfaces: (vmi) => {
    const s = vmi.shape;
    const ifaces: unknown[] = [];
    for (let i = 0; i < s.nics; i++) {
      const ip = i === 0 ? vmi.ip : `192.168.${100 + i}.${(vmi.uid.charCodeAt(2) % 200) + 10}`;
      ifaces.push({
        infoSource: vmi.guestOS ? 'domain, guest-agent, multus-status' : 'domain, multus-status',
        interfaceName: vmi.guestOS ? `eth${i}` : undefined,
        ipAddress: ip,
        ipAddresses: vmi.guestOS ? [ip, `fe80::${i}:ddff:fe00:${(vmi.uid.charCodeAt(3) % 255).toString(16)}`] : [ip],
        linkState: 'up',
        mac: macFor(vmi.uid, i),
        name: nicName(i),
        podInterfaceName: i === 0 ? 'eth0' : `pod${i}`,
        queueCount: 1,
      });
    }
    if (vmi.guestOS) {
      for (let i = 0; i < s.guestOnlyInterfaces; i++) {
        ifaces.push({ infoSource: 'guest-agent', interfaceName: `veth${i.toString(16).padStart(7, '0')}`, ipAddresses: [`fe80::${i}:5cff:fe8a:1`], mac: `5e:7a:${(i >> 8) & 255}:${i & 255}:00:01`, queueCount: 1 });
      }
    }
    return ifaces;
  },
};

function vmiStatus(vmi: VmiModel): Record<string, unknown> {
  return renderVmiStatus(vmi, REAL_VMI_STATUS);
}

