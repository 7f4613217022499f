// VirtualMachine and VirtualMachineInstance objects shaped like `kubectl get vm/vmi -o json` prints them
// on KubeVirt 1.6, for tests that talk to vm_sync.ingest directly. Overrides are deep-merged.
import crypto from 'node:crypto';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Obj = { [key: string]: Json };

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | string;
  object: Json;
}

let rv = 1000;
/** A fresh, ever-increasing resourceVersion, as etcd hands them out. */
export function nextRv(): string {
  rv += 1;
  return String(rv);
}

export function uid(): string {
  return crypto.randomUUID();
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge where `undefined` in the patch deletes the key; arrays and scalars replace. */
export function merge<T extends Obj>(base: T, patch: Record<string, unknown>): T {
  const out: Obj = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) delete out[key];
    else if (isObj(value) && isObj(out[key])) out[key] = merge(out[key] as Obj, value);
    else out[key] = value as Json;
  }
  return out as T;
}

const managedFields: Json = [
  {
    apiVersion: 'kubevirt.io/v1',
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:spec': { '.': {}, 'f:runStrategy': {}, 'f:template': { '.': {} } } },
    manager: 'kubectl-client-side-apply',
    operation: 'Update',
    time: '2025-08-16T15:20:00Z',
  },
];

export interface VmOptions {
  namespace?: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
  cores?: number;
  sockets?: number;
  threads?: number;
  memory?: string;
  printableStatus?: string | undefined;
  runStrategy?: string;
  osHint?: string;
}

export function vm(o: VmOptions, patch: Record<string, unknown> = {}): Obj {
  const namespace = o.namespace ?? 'vdc-clowns-east1';
  const base: Obj = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: {
      annotations: {
        'kubevirt.io/latest-observed-api-version': 'v1',
        'kubevirt.io/storage-observed-api-version': 'v1',
        ...(o.osHint ? { 'vm.kubevirt.io/os': o.osHint } : {}),
      },
      creationTimestamp: '2025-08-16T15:20:00Z',
      finalizers: ['kubevirt.io/virtualMachineControllerFinalize'],
      generation: 1,
      labels: { app: o.name, 'vm.kubevirt.io/template': 'centos-stream9-server-small' },
      managedFields,
      name: o.name,
      namespace,
      resourceVersion: o.resourceVersion ?? nextRv(),
      uid: o.uid ?? uid(),
    },
    spec: {
      dataVolumeTemplates: [
        {
          apiVersion: 'cdi.kubevirt.io/v1beta1',
          kind: 'DataVolume',
          metadata: { name: `${o.name}-rootdisk` },
          spec: { sourceRef: { kind: 'DataSource', name: 'centos-stream9', namespace: 'openshift-virtualization-os-images' }, storage: { resources: { requests: { storage: '30Gi' } } } },
        },
      ],
      runStrategy: o.runStrategy ?? 'Always',
      template: {
        metadata: { creationTimestamp: null, labels: { 'kubevirt.io/domain': o.name, 'kubevirt.io/size': 'small' } },
        spec: {
          architecture: 'amd64',
          domain: {
            cpu: { cores: o.cores ?? 1, sockets: o.sockets ?? 1, threads: o.threads ?? 1, maxSockets: 4 },
            devices: {
              disks: [{ disk: { bus: 'virtio' }, name: 'rootdisk' }, { disk: { bus: 'virtio' }, name: 'cloudinitdisk' }],
              interfaces: [{ masquerade: {}, model: 'virtio', name: 'default' }],
              rng: {},
            },
            features: { acpi: {}, smm: { enabled: true } },
            firmware: { bootloader: { efi: {} } },
            machine: { type: 'pc-q35-rhel9.4.0' },
            memory: { guest: o.memory ?? '2Gi' },
            resources: {},
          },
          networks: [{ name: 'default', pod: {} }],
          terminationGracePeriodSeconds: 180,
          volumes: [
            { dataVolume: { name: `${o.name}-rootdisk` }, name: 'rootdisk' },
            { cloudInitNoCloud: { userData: '#cloud-config\nuser: centos\n' }, name: 'cloudinitdisk' },
          ],
        },
      },
    },
    status: {
      conditions: [{ lastProbeTime: null, lastTransitionTime: '2025-08-16T15:25:30Z', status: 'True', type: 'Ready' }],
      created: true,
      desiredGeneration: 1,
      observedGeneration: 1,
      printableStatus: o.printableStatus ?? 'Running',
      ready: true,
      volumeSnapshotStatuses: [{ enabled: true, name: 'rootdisk' }],
    },
  };
  if ('printableStatus' in o && o.printableStatus === undefined) delete (base.status as Obj).printableStatus;
  return merge(base, patch);
}

export interface GuestOsInfo {
  id?: string;
  name?: string;
  prettyName?: string;
  version?: string;
  versionId?: string;
  kernelRelease?: string;
}

export const CENTOS9: GuestOsInfo = {
  id: 'centos',
  name: 'CentOS Stream',
  prettyName: 'CentOS Stream 9',
  version: '9',
  versionId: '9',
  kernelRelease: '5.14.0-570.el9.x86_64',
};

export interface VmiOptions {
  namespace?: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
  /** The owning VM; defaults to a VM of the same name. `null` for a standalone VMI. */
  owner?: { name: string; uid?: string } | null;
  cores?: number;
  sockets?: number;
  threads?: number;
  memory?: string;
  guestCurrent?: string;
  guestOSInfo?: GuestOsInfo | Record<string, never>;
  phase?: string;
}

export function vmi(o: VmiOptions, patch: Record<string, unknown> = {}): Obj {
  const namespace = o.namespace ?? 'vdc-clowns-east1';
  const owner = o.owner === undefined ? { name: o.name } : o.owner;
  const cores = o.cores ?? 1;
  const sockets = o.sockets ?? 1;
  const threads = o.threads ?? 1;
  const memory = o.memory ?? '2Gi';
  const base: Obj = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: {
      annotations: { 'kubevirt.io/latest-observed-api-version': 'v1', 'kubevirt.io/vm-generation': '1' },
      creationTimestamp: '2025-08-16T15:21:00Z',
      finalizers: ['kubevirt.io/virtualMachineControllerFinalize', 'foregroundDeleteVirtualMachine'],
      generation: 7,
      labels: { 'kubevirt.io/domain': o.name, 'kubevirt.io/nodeName': 'worker-0', 'kubevirt.io/size': 'small' },
      managedFields,
      name: o.name,
      namespace,
      ...(owner
        ? {
            ownerReferences: [
              {
                apiVersion: 'kubevirt.io/v1',
                blockOwnerDeletion: true,
                controller: true,
                kind: 'VirtualMachine',
                name: owner.name,
                uid: owner.uid ?? uid(),
              },
            ],
          }
        : {}),
      resourceVersion: o.resourceVersion ?? nextRv(),
      uid: o.uid ?? uid(),
    },
    spec: {
      architecture: 'amd64',
      domain: {
        cpu: { cores, sockets, threads, maxSockets: 4, model: 'host-model' },
        devices: { disks: [{ disk: { bus: 'virtio' }, name: 'rootdisk' }], interfaces: [{ masquerade: {}, model: 'virtio', name: 'default' }] },
        features: { acpi: { enabled: true } },
        firmware: { uuid: uid() },
        machine: { type: 'pc-q35-rhel9.4.0' },
        memory: { guest: memory, maxGuest: '8Gi' },
        resources: { requests: { memory } },
      },
      evictionStrategy: 'LiveMigrate',
      networks: [{ name: 'default', pod: {} }],
      terminationGracePeriodSeconds: 180,
      volumes: [{ dataVolume: { name: `${o.name}-rootdisk` }, name: 'rootdisk' }],
    },
    status: {
      activePods: { [uid()]: 'worker-0' },
      conditions: [
        { lastProbeTime: null, lastTransitionTime: '2025-08-16T15:22:00Z', status: 'True', type: 'Ready' },
        ...(o.guestOSInfo && Object.keys(o.guestOSInfo).length
          ? [{ lastProbeTime: null, lastTransitionTime: null, status: 'True', type: 'AgentConnected' }]
          : []),
      ],
      currentCPUTopology: { cores, sockets, threads },
      guestOSInfo: (o.guestOSInfo ?? {}) as Json,
      interfaces: [{ infoSource: 'domain, guest-agent', interfaceName: 'eth0', ipAddress: '10.128.2.51', mac: '02:a1:b2:c3:d4:e5', name: 'default' }],
      launcherContainerImageVersion: 'registry.redhat.io/container-native-virtualization/virt-launcher-rhel9@sha256:0123',
      machine: { type: 'pc-q35-rhel9.4.0' },
      memory: { guestAtBoot: memory, guestCurrent: o.guestCurrent ?? memory, guestRequested: o.guestCurrent ?? memory },
      migrationMethod: 'BlockMigration',
      migrationTransport: 'Unix',
      nodeName: 'worker-0',
      phase: o.phase ?? 'Running',
      qosClass: 'Burstable',
      volumeStatus: [{ name: 'rootdisk', target: 'vda' }],
    },
  };
  return merge(base, patch);
}

export function event(type: WatchEvent['type'], object: Json): WatchEvent {
  return { type, object };
}

/** The same object as a later version: new resourceVersion, patch applied. */
export function bump(object: Obj, patch: Record<string, unknown> = {}): Obj {
  return merge(merge(object, { metadata: { resourceVersion: nextRv() } }), patch);
}
