// Pieces shared by the small and the realistic renderings of VMs and VMIs: interning (objects are
// never mutated, so 100,000 VMs share their repeated subtrees), conditions, CPU shapes, ids.
import type { CpuTopology, VmModel } from './kubevirt.js';

/**
 * Returns one shared instance per key: 100,000 VMs mostly differ in names and uids, so their
 * conditions, topologies and quantities are the same few objects (objects are never mutated).
 */
const interned = new Map<string, unknown>();
export function intern<T>(key: string, build: () => T): T {
  let value = interned.get(key) as T | undefined;
  if (value === undefined) {
    if (interned.size > 200_000) interned.clear();
    value = build();
    interned.set(key, value);
  }
  return value;
}

export const API_VERSION = 'kubevirt.io/v1';
export const OBSERVED = Object.freeze({
  'kubevirt.io/latest-observed-api-version': 'v1',
  'kubevirt.io/storage-observed-api-version': 'v1',
});

export function condition(type: string, status: boolean, since: string, reason?: string, message?: string): Record<string, unknown> {
  return intern(`c|${type}|${status}|${since}|${reason ?? ''}|${message ?? ''}`, () => buildCondition(type, status, since, reason, message));
}

function buildCondition(type: string, status: boolean, since: string, reason?: string, message?: string): Record<string, unknown> {
  const c: Record<string, unknown> = { lastProbeTime: null, lastTransitionTime: since, status: status ? 'True' : 'False', type };
  if (reason) c.reason = reason;
  if (message) c.message = message;
  return c;
}

export function cpuSpec(cpu: CpuTopology): Record<string, number> {
  return intern(`cpu|${cpu.cores}|${cpu.sockets}|${cpu.threads}|${cpu.maxSockets ?? ''}`, () => ({ cores: cpu.cores, maxSockets: cpu.maxSockets ?? cpu.sockets * 4, sockets: cpu.sockets, threads: cpu.threads }));
}

export function topology(cpu: CpuTopology): Record<string, number> {
  return intern(`topo|${cpu.cores}|${cpu.sockets}|${cpu.threads}`, () => ({ cores: cpu.cores, sockets: cpu.sockets, threads: cpu.threads }));
}

export const VM_FINALIZERS = Object.freeze(['kubevirt.io/virtualMachineControllerFinalize']);
export const VMI_FINALIZERS = Object.freeze(['kubevirt.io/virtualMachineControllerFinalize', 'foregroundDeleteVirtualMachine']);
export const STANDALONE_FINALIZERS = Object.freeze(['foregroundDeleteVirtualMachine']);
export function podUid(uid: string): string {
  return uid.slice(0, 24) + uid.slice(24).split('').reverse().join('');
}

export function macFor(uid: string, nic = 0): string {
  const hex = uid.replace(/-/g, '');
  return `02:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6, 8)}:${(Number.parseInt(hex.slice(8, 10), 16) + nic).toString(16).padStart(2, '0').slice(-2)}`;
}

/** A VM's metadata as the API server returns it (a VM being deleted has no grace period: its VMI has). */
export function vmMetadata(vm: VmModel, annotations: Record<string, string>, labels: Record<string, string>, managedFields: unknown[]): Record<string, unknown> {
  const metadata: Record<string, unknown> = {
    annotations,
    creationTimestamp: vm.created,
    finalizers: VM_FINALIZERS,
    generation: vm.generation,
    labels,
    managedFields,
    name: vm.name,
    namespace: vm.namespace,
    uid: vm.uid,
  };
  if (vm.deletionTimestamp) {
    metadata.deletionGracePeriodSeconds = 0;
    metadata.deletionTimestamp = vm.deletionTimestamp;
  }
  return metadata;
}
