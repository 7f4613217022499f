// Renders VirtualMachine and VirtualMachineInstance objects the way KubeVirt 1.6 serves them
// (`kubectl get vm/vmi -o json`), from small mutable models kept by the cluster. Each VM has a
// shape (object-size.ts): realistic by default (kubevirt-real.ts, production-sized objects with
// managedFields, PVC-backed disks, migration state...), or small (kubevirt-small.ts). Subtrees
// that repeat across VMs are shared frozen objects, so 100,000 VMs + VMIs cost little memory;
// every render returns a new top-level object.
import { renderRealVm, renderRealVmi } from './kubevirt-real.js';
import { renderSmallVm, renderSmallVmi } from './kubevirt-small.js';
import type { ObjectShape } from './object-size.js';

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
  /** Size shape, the owning VM's (object-size.ts). */
  shape: ObjectShape;
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
  /** Size shape (object-size.ts), drawn once when the VM is created. */
  shape: ObjectShape;
}

/** Kubernetes timestamps are RFC 3339 with second precision. */
export function timestamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}


/** The VirtualMachine object for a model (without resourceVersion: the store stamps it). */
export function renderVm(vm: VmModel): Record<string, unknown> {
  return vm.shape.small ? renderSmallVm(vm) : renderRealVm(vm);
}

/** The VirtualMachineInstance object for a model. */
export function renderVmi(vmi: VmiModel): Record<string, unknown> {
  return vmi.shape.small ? renderSmallVmi(vmi) : renderRealVmi(vmi);
}
