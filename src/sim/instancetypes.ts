// KubeVirt's instancetypes in the simulated cluster (docs/contract.md#3b-instancetypes): the common-instancetypes u1 sizes
// as VirtualMachineClusterInstancetypes, and what virt-controller does for a VM that names one.
// Behaviour follows kubevirt/kubevirt pkg/instancetype:
// - revision/store.go: the controller snapshots the instancetype into an apps/v1 ControllerRevision
//   in the VM's namespace, named <vm>-<instancetype>-<version>-<uid>-<generation>, owned by the VM,
//   labelled instancetype.kubevirt.io/object-{kind,name,uid,generation,version}, its data the whole
//   object (apiVersion and kind set; labels, annotations, owner references stripped); then it
//   records the name in status.instancetypeRef {kind, name, controllerRevisionRef.name}. When the
//   matcher's name or kind changes it drops that reference and stores a new revision.
// - apply/cpu.go and apply/memory.go: on start the VMI gets domain.cpu with sockets = guest,
//   cores = threads = 1 (no preference), and domain.memory.guest = the instancetype's.
// - find/spec.go: the matcher's kind is matched case-insensitively, singular or plural, and an
//   empty kind means the cluster-scoped one. The u1 sizes are kubevirt/common-instancetypes
//   instancetypes/u/1/sizes.yaml.
import crypto from 'node:crypto';
import { timestamp, type VmModel } from './kubevirt.js';
import type { Store } from './store.js';

export const INSTANCETYPE_API_VERSION = 'instancetype.kubevirt.io/v1beta1';
export const CLUSTER_KIND = 'VirtualMachineClusterInstancetype';
export const NAMESPACED_KIND = 'VirtualMachineInstancetype';

/** The u1 ("universal") series: vCPUs and guest memory. */
export const U1_SIZES: Readonly<Record<string, { cpu: number; memory: string }>> = {
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

/** What a VM's spec.instancetype says, and the revision its status points at. */
export interface InstancetypeRef {
  name: string;
  /** As the user wrote it; KubeVirt's webhook defaults an empty one to the cluster kind. */
  kind: string;
  revisionName?: string;
}

type Obj = Record<string, any>;

/** KubeVirt's Kind for a matcher kind, or undefined when it names no instancetype. */
export function instancetypeKindOf(kind: string | undefined): string | undefined {
  switch ((kind ?? '').toLowerCase()) {
    case '':
    case 'virtualmachineclusterinstancetype':
    case 'virtualmachineclusterinstancetypes':
      return CLUSTER_KIND;
    case 'virtualmachineinstancetype':
    case 'virtualmachineinstancetypes':
      return NAMESPACED_KIND;
    default:
      return undefined;
  }
}

/** A VirtualMachineClusterInstancetype as common-instancetypes ships it (or, with ns, a namespaced one). */
export function instancetypeObject(name: string, cpu: number, memory: string, namespace?: string): Obj {
  const size = name.includes('.') ? name.split('.')[1] : undefined;
  return {
    apiVersion: INSTANCETYPE_API_VERSION,
    kind: namespace ? NAMESPACED_KIND : CLUSTER_KIND,
    metadata: {
      annotations: {
        'instancetype.kubevirt.io/description': 'The U Series is quite neutral and provides resources for general purpose applications.',
        'instancetype.kubevirt.io/displayName': 'General Purpose',
      },
      creationTimestamp: timestamp(),
      generation: 1,
      labels: {
        'app.kubernetes.io/component': 'kubevirt',
        'app.kubernetes.io/managed-by': 'virt-operator',
        'instancetype.kubevirt.io/class': 'general.purpose',
        'instancetype.kubevirt.io/cpu': String(cpu),
        'instancetype.kubevirt.io/memory': memory,
        ...(size ? { 'instancetype.kubevirt.io/size': size } : {}),
        'instancetype.kubevirt.io/vendor': 'kubevirt.io',
        'instancetype.kubevirt.io/version': '1',
      },
      name,
      ...(namespace ? { namespace } : {}),
      uid: crypto.randomUUID(),
    },
    spec: { cpu: { guest: cpu }, memory: { guest: memory } },
  };
}

/** The ControllerRevision virt-controller stores for `vm` from instancetype object `it`. */
export function revisionObject(vm: VmModel, it: Obj): Obj {
  const meta = it.metadata as Obj;
  const version = String(it.apiVersion).split('/')[1];
  const { labels: _l, annotations: _a, ownerReferences: _o, managedFields: _m, finalizers: _f, ...kept } = meta;
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      creationTimestamp: timestamp(),
      labels: {
        'instancetype.kubevirt.io/object-generation': String(meta.generation),
        'instancetype.kubevirt.io/object-kind': it.kind,
        'instancetype.kubevirt.io/object-name': meta.name,
        'instancetype.kubevirt.io/object-uid': meta.uid,
        'instancetype.kubevirt.io/object-version': version,
      },
      name: `${vm.name}-${meta.name}-${version}-${meta.uid}-${meta.generation}`,
      namespace: vm.namespace,
      ownerReferences: [{ apiVersion: 'kubevirt.io/v1', blockOwnerDeletion: true, controller: true, kind: 'VirtualMachine', name: vm.name, uid: vm.uid }],
      uid: crypto.randomUUID(),
    },
    data: { apiVersion: it.apiVersion, kind: it.kind, metadata: kept, spec: it.spec },
    revision: 0,
  };
}

/** The instancetype side of virt-controller: which VM names what, its revisions, and the sizes they give. */
export class Instancetypes {
  private readonly refs = new Map<string, InstancetypeRef>();

  constructor(private readonly store: Store) {}

  /** Ships the u1 sizes, as virt-operator deploys common-instancetypes. */
  seedU1(): void {
    for (const [name, s] of Object.entries(U1_SIZES)) this.put(instancetypeObject(name, s.cpu, s.memory));
  }

  /** Creates or replaces an instancetype object (a cluster one under "/<name>"). */
  put(it: Obj): void {
    const m = it.metadata as Obj;
    const resource = it.kind === CLUSTER_KIND ? 'virtualmachineclusterinstancetypes' : 'virtualmachineinstancetypes';
    const key = `${it.kind === CLUSTER_KIND ? '' : m.namespace}/${m.name}`;
    const prev = this.store.get(resource, key) as Obj | undefined;
    const generation = prev ? Number(prev.metadata.generation ?? 1) + 1 : Number(m.generation ?? 1);
    this.store.put(resource, key, { ...it, metadata: { ...m, generation, uid: prev?.metadata.uid ?? m.uid } });
  }

  ref(vm: VmModel): InstancetypeRef | undefined {
    return this.refs.get(`${vm.namespace}/${vm.name}`);
  }

  /** The live instancetype a VM's matcher names, or undefined. */
  find(namespace: string, ref: { name: string; kind: string }): Obj | undefined {
    const kind = instancetypeKindOf(ref.kind);
    if (kind === CLUSTER_KIND) return this.store.get('virtualmachineclusterinstancetypes', `/${ref.name}`) as Obj | undefined;
    if (kind === NAMESPACED_KIND) return this.store.get('virtualmachineinstancetypes', `${namespace}/${ref.name}`) as Obj | undefined;
    return undefined;
  }

  /** The user sets (or changes) spec.instancetype: the status reference is dropped until stored again. */
  name(vm: VmModel, ref: { name: string; kind?: string }): void {
    this.refs.set(`${vm.namespace}/${vm.name}`, { name: ref.name, kind: ref.kind ?? 'virtualmachineclusterinstancetype' });
  }

  /**
   * virt-controller's sync: stores the revision of what the VM names and points the status at it;
   * the model takes the size (the next start applies it). False when the instancetype is missing.
   */
  syncRevision(vm: VmModel): boolean {
    const ref = this.ref(vm);
    if (!ref) return false;
    const it = this.find(vm.namespace, ref);
    if (!it) return false;
    const rev = revisionObject(vm, it);
    this.store.put('controllerrevisions', `${vm.namespace}/${rev.metadata.name}`, rev);
    ref.revisionName = rev.metadata.name;
    vm.cpu = { sockets: it.spec.cpu.guest, cores: 1, threads: 1 };
    vm.memory = it.spec.memory.guest;
    return true;
  }

  /** KubeVirt forbids cpu and memory in the template of an instancetype VM: the rendered VM says what it names instead. */
  decorate(vm: VmModel, rendered: Obj): Obj {
    const ref = this.ref(vm);
    if (!ref) return rendered;
    const spec = rendered.spec as Obj;
    const template = spec.template as Obj;
    const { cpu: _c, memory: _m, resources: _r, ...domain } = template.spec.domain as Obj;
    const status: Obj = { ...(rendered.status as Obj) };
    if (ref.revisionName) status.instancetypeRef = { controllerRevisionRef: { name: ref.revisionName }, kind: ref.kind, name: ref.name };
    return {
      ...rendered,
      spec: { ...spec, instancetype: { kind: ref.kind, name: ref.name }, template: { ...template, spec: { ...template.spec, domain } } },
      status,
    };
  }

  /** The VM is gone: KubeVirt's garbage collector deletes its revisions (they are owned by it). */
  forgetVm(vm: VmModel): void {
    this.refs.delete(`${vm.namespace}/${vm.name}`);
    for (const o of this.store.all('controllerrevisions') as Obj[]) {
      const owner = o?.metadata?.ownerReferences?.[0];
      if (o.metadata.namespace === vm.namespace && owner?.uid === vm.uid) this.store.remove('controllerrevisions', `${vm.namespace}/${o.metadata.name}`);
    }
  }
}
