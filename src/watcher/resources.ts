// What the watcher lists and watches: one entry per Kubernetes resource, instead of paths spelled out
// per kind. VMs and VMIs are always there; the instancetype resources (docs/contract.md#3b-instancetypes) exist only where
// KubeVirt's instancetype API is served, at the version that API prefers (instancetype-api.ts).

export type Kind =
  | 'VirtualMachine'
  | 'VirtualMachineInstance'
  | 'VirtualMachineInstancetype'
  | 'VirtualMachineClusterInstancetype'
  | 'ControllerRevision';

export interface Resource {
  kind: Kind;
  /** API group; '' is the core group (/api). */
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
  /** labelSelector= of every list and watch, when only some objects matter. */
  labelSelector?: string;
}

export const INSTANCETYPE_GROUP = 'instancetype.kubevirt.io';
/**
 * The label KubeVirt puts on every ControllerRevision it makes from an instancetype or preference
 * (kubevirt/kubevirt pkg/instancetype/revision/store.go): an existence selector on it lists those
 * and never a Deployment's or a StatefulSet's.
 */
export const REVISION_SELECTOR = 'instancetype.kubevirt.io/object-kind';

export const CORE_RESOURCES: readonly Resource[] = [
  { kind: 'VirtualMachine', group: 'kubevirt.io', version: 'v1', plural: 'virtualmachines', namespaced: true },
  { kind: 'VirtualMachineInstance', group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances', namespaced: true },
];

/** The instancetype kinds at the served `version`, and KubeVirt's ControllerRevisions (apps/v1). */
export function instancetypeResources(version: string): Resource[] {
  return [
    { kind: 'VirtualMachineClusterInstancetype', group: INSTANCETYPE_GROUP, version, plural: 'virtualmachineclusterinstancetypes', namespaced: false },
    { kind: 'VirtualMachineInstancetype', group: INSTANCETYPE_GROUP, version, plural: 'virtualmachineinstancetypes', namespaced: true },
    { kind: 'ControllerRevision', group: 'apps', version: 'v1', plural: 'controllerrevisions', namespaced: true, labelSelector: REVISION_SELECTOR },
  ];
}

export function apiVersionOf(r: Resource): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** `/apis/<group>/<version>[/namespaces/<ns>]/<plural>` (or /api/<version>/... for the core group). */
export function resourcePath(r: Resource, namespace: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${r.plural}`;
}

/** The scopes to watch a resource in: each configured namespace, or '' (cluster-wide, and always for a cluster-scoped kind). */
export function scopesOf(r: Resource, namespaces: readonly string[]): string[] {
  return r.namespaced && namespaces.length ? [...namespaces] : [''];
}
