// Instancetype objects as KubeVirt 1.6 serves them, for tests that talk to vm_sync.ingest directly:
// VirtualMachine(Cluster)Instancetype (instancetype.kubevirt.io/v1beta1), the apps/v1
// ControllerRevision the VM controller snapshots one into, and a VM created from an instancetype
// (the console's InstanceTypes tab, `virtctl create vm --instancetype`).
// Shapes follow kubevirt/kubevirt pkg/instancetype/revision/store.go (revision name
// <vm>-<instancetype>-<version>-<uid>-<generation>, the instancetype.kubevirt.io/object-* labels,
// the VM as controlling owner, data = the whole object with apiVersion and kind, labels and
// annotations stripped) and kubevirt/common-instancetypes instancetypes/u/1/sizes.yaml (u1 sizes).
import { merge, nextRv, uid, vm, type Json, type Obj } from './objects.js';

/** The common-instancetypes u1 series: vCPUs and guest memory. */
export const U1: Record<string, { cpu: number; memory: string }> = {
  'u1.nano': { cpu: 1, memory: '512Mi' },
  'u1.micro': { cpu: 1, memory: '1Gi' },
  'u1.small': { cpu: 1, memory: '2Gi' },
  'u1.medium': { cpu: 1, memory: '4Gi' },
  'u1.2xmedium': { cpu: 2, memory: '4Gi' },
  'u1.large': { cpu: 2, memory: '8Gi' },
  'u1.xlarge': { cpu: 4, memory: '16Gi' },
  'u1.2xlarge': { cpu: 8, memory: '32Gi' },
  'u1.4xlarge': { cpu: 16, memory: '64Gi' },
  'u1.8xlarge': { cpu: 32, memory: '128Gi' },
};

export const CLUSTER_KIND = 'VirtualMachineClusterInstancetype';
export const NAMESPACED_KIND = 'VirtualMachineInstancetype';

export interface InstancetypeOptions {
  name: string;
  /** Set for a namespaced VirtualMachineInstancetype; absent for a cluster one. */
  namespace?: string;
  cpu?: Json;
  memory?: Json;
  version?: string;
  uid?: string;
  generation?: number;
}

/** A VirtualMachineClusterInstancetype (or, with a namespace, a VirtualMachineInstancetype). */
export function instancetype(o: InstancetypeOptions, patch: Record<string, unknown> = {}): Obj {
  const size = U1[o.name];
  const cpu = o.cpu ?? size?.cpu ?? 1;
  const memory = o.memory ?? size?.memory ?? '1Gi';
  const [, sizeName] = o.name.split('.');
  const base: Obj = {
    apiVersion: `instancetype.kubevirt.io/${o.version ?? 'v1beta1'}`,
    kind: o.namespace ? NAMESPACED_KIND : CLUSTER_KIND,
    metadata: {
      annotations: {
        'instancetype.kubevirt.io/description': 'The U Series is quite neutral and provides resources for general purpose applications.',
        'instancetype.kubevirt.io/displayName': 'General Purpose',
      },
      creationTimestamp: '2025-08-10T09:00:00Z',
      generation: o.generation ?? 1,
      labels: {
        'app.kubernetes.io/component': 'templating',
        'app.kubernetes.io/managed-by': 'virt-operator',
        'instancetype.kubevirt.io/class': 'general.purpose',
        'instancetype.kubevirt.io/common-instancetypes-version': 'v1.4.0',
        'instancetype.kubevirt.io/cpu': String(cpu),
        'instancetype.kubevirt.io/memory': String(memory),
        ...(sizeName ? { 'instancetype.kubevirt.io/size': sizeName } : {}),
        'instancetype.kubevirt.io/vendor': 'kubevirt.io',
        'instancetype.kubevirt.io/version': '1',
      },
      name: o.name,
      ...(o.namespace ? { namespace: o.namespace } : {}),
      resourceVersion: nextRv(),
      uid: o.uid ?? uid(),
    },
    spec: { cpu: { guest: cpu }, memory: { guest: memory } },
  };
  return merge(base, patch);
}

/** The revision name KubeVirt gives a VM's snapshot of an instancetype. */
export function revisionName(vmName: string, it: Obj): string {
  const m = it.metadata as Obj;
  const version = String(it.apiVersion).split('/')[1];
  return `${vmName}-${m.name}-${version}-${m.uid}-${m.generation}`;
}

/** The ControllerRevision the VM controller creates for `vmObject` from `it`. */
export function revision(vmObject: Obj, it: Obj, patch: Record<string, unknown> = {}): Obj {
  const vmMeta = vmObject.metadata as Obj;
  const itMeta = it.metadata as Obj;
  const version = String(it.apiVersion).split('/')[1]!;
  const data: Obj = {
    apiVersion: it.apiVersion as Json,
    kind: it.kind as Json,
    metadata: {
      creationTimestamp: itMeta.creationTimestamp as Json,
      generation: itMeta.generation as Json,
      name: itMeta.name as Json,
      ...(itMeta.namespace ? { namespace: itMeta.namespace } : {}),
      resourceVersion: itMeta.resourceVersion as Json,
      uid: itMeta.uid as Json,
    },
    spec: it.spec as Json,
  };
  const base: Obj = {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      creationTimestamp: '2025-08-16T15:20:01Z',
      labels: {
        'instancetype.kubevirt.io/object-generation': String(itMeta.generation),
        'instancetype.kubevirt.io/object-kind': it.kind as Json,
        'instancetype.kubevirt.io/object-name': itMeta.name as Json,
        'instancetype.kubevirt.io/object-uid': itMeta.uid as Json,
        'instancetype.kubevirt.io/object-version': version,
      },
      name: revisionName(String(vmMeta.name), it),
      namespace: vmMeta.namespace as Json,
      ownerReferences: [
        { apiVersion: 'kubevirt.io/v1', blockOwnerDeletion: true, controller: true, kind: 'VirtualMachine', name: vmMeta.name as Json, uid: vmMeta.uid as Json },
      ],
      resourceVersion: nextRv(),
      uid: uid(),
    },
    data,
    revision: 0,
  };
  return merge(base, patch);
}

export interface ItVmOptions {
  namespace: string;
  name: string;
  /** spec.instancetype.name */
  instancetype: string;
  /** spec.instancetype.kind as written; KubeVirt's webhook defaults it to the cluster kind. */
  kind?: string | undefined;
  /** status.instancetypeRef.controllerRevisionRef.name; absent until the controller has stored one. */
  revision?: string;
  /** spec.instancetype.revisionName (set by hand, e.g. by a restore). */
  specRevision?: string;
  preference?: string;
  printableStatus?: string;
  runStrategy?: string;
  uid?: string;
}

/** A VM created from an instancetype: no cpu or memory in its template (KubeVirt forbids them). */
export function itVm(o: ItVmOptions, patch: Record<string, unknown> = {}): Obj {
  const kind = 'kind' in o ? o.kind : 'virtualmachineclusterinstancetype';
  const base = vm(
    { namespace: o.namespace, name: o.name, uid: o.uid, printableStatus: o.printableStatus ?? 'Stopped', runStrategy: o.runStrategy ?? 'Halted' },
    {
      spec: {
        instancetype: { ...(kind !== undefined ? { kind } : {}), name: o.instancetype, ...(o.specRevision ? { revisionName: o.specRevision } : {}) },
        ...(o.preference ? { preference: { kind: 'virtualmachineclusterpreference', name: o.preference } } : {}),
        template: { spec: { domain: { cpu: undefined, memory: undefined, resources: undefined } } },
      },
      status: {
        ...(o.revision
          ? { instancetypeRef: { controllerRevisionRef: { name: o.revision }, kind: kind ?? CLUSTER_KIND, name: o.instancetype } }
          : {}),
        ...(o.preference
          ? { preferenceRef: { controllerRevisionRef: { name: `${o.name}-${o.preference}-v1beta1-${uid()}-1` }, kind: 'virtualmachineclusterpreference', name: o.preference } }
          : {}),
      },
    },
  );
  return merge(base, patch);
}

/** A VirtualMachineClusterPreference as common-instancetypes ships them (staged, never sizing). */
export function clusterPreference(name: string): Obj {
  return {
    apiVersion: 'instancetype.kubevirt.io/v1beta1',
    kind: 'VirtualMachineClusterPreference',
    metadata: {
      annotations: { 'openshift.io/display-name': 'Red Hat Enterprise Linux 9', 'openshift.io/support-url': 'https://access.redhat.com/' },
      creationTimestamp: '2025-08-10T09:00:00Z',
      generation: 1,
      labels: { 'instancetype.kubevirt.io/os-type': 'linux', 'instancetype.kubevirt.io/vendor': 'redhat.com' },
      name,
      resourceVersion: nextRv(),
      uid: uid(),
    },
    spec: {
      annotations: { 'vm.kubevirt.io/os': 'linux' },
      devices: { preferredDiskBus: 'virtio', preferredInterfaceModel: 'virtio', preferredRng: {} },
      features: { preferredSmm: {} },
      firmware: { preferredEfi: { secureBoot: true } },
      requirements: { cpu: { guest: 1 }, memory: { guest: '1536Mi' } },
    },
  };
}
