// The models of the simulated cluster, built from what a user asks for: a VirtualMachine from
// CreateVmOptions, the VirtualMachineInstance that starting it creates. cluster.ts moves them
// through their lifecycles; kubevirt.ts renders them as the API server would.
import crypto from 'node:crypto';
import { DEFAULT_SIZE, shapeFor, type ObjectShape, type SizeOptions } from './object-size.js';
import { timestamp, type CpuTopology, type GuestOSInfo, type RunStrategy, type VmModel, type VmiModel } from './kubevirt.js';

export interface CreateVmOptions {
  /** Default { cores: 1, sockets: 1, threads: 1 }. */
  cpu?: Partial<CpuTopology>;
  /** Guest memory quantity, default "2Gi". */
  memory?: string;
  /** Render memory as domain.memory.guest (default) or only as resources.requests.memory. */
  memoryAsGuest?: boolean;
  /** Start it (VMI created and Running) right away. Default false. */
  running?: boolean;
  /** Default Always when running, Halted otherwise; 'legacy' renders spec.running instead. */
  runStrategy?: RunStrategy | 'legacy';
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Value of the `vm.kubevirt.io/os` annotation (e.g. "fedora", "windows2k22"). */
  osHint?: string;
  /** When running: connect the guest agent with this report (true = Fedora). */
  guestAgent?: GuestOSInfo | boolean;
  /** Node the VMI lands on, default node01..node03 by name hash. */
  nodeName?: string;
  /** spec.instancetype.name (e.g. "u1.2xlarge"): cpu and memory then come from it (instancetypes.ts). */
  instancetype?: string;
  /** spec.instancetype.kind, default virtualmachineclusterinstancetype. */
  instancetypeKind?: string;
  /** Overrides of the size shape drawn for this VM (e.g. { padToBytes: 1_400_000 } for a giant). */
  shape?: Partial<ObjectShape>;
}

export interface SeedOptions extends Omit<CreateVmOptions, 'running' | 'guestAgent'> {
  /** Namespaces to spread VMs over (round robin). Default ["default"]. */
  namespaces?: string[];
  /** Name prefix, default "vm"; names are prefix-000001... */
  prefix?: string;
  /** Share of VMs that are running (have a Running VMI), default 1. */
  runningRatio?: number;
  /** Share of running VMs with a connected guest agent, default 1. */
  agentRatio?: number;
}

/** A VirtualMachine as created (Stopped, generation 1), its size shape drawn from `size`. */
export function buildVm(ns: string, name: string, opts: CreateVmOptions, size: SizeOptions = DEFAULT_SIZE): VmModel {
  const now = timestamp();
  const strategy = opts.runStrategy ?? (opts.running ? 'Always' : 'Halted');
  return {
    namespace: ns,
    name,
    uid: crypto.randomUUID(),
    created: now,
    generation: 1,
    labels: { ...(opts.labels ?? {}) },
    annotations: { ...(opts.annotations ?? {}) },
    osHint: opts.osHint,
    runStrategy: strategy === 'legacy' ? undefined : strategy,
    running: strategy === 'legacy' ? !!opts.running : undefined,
    cpu: { cores: opts.cpu?.cores ?? 1, sockets: opts.cpu?.sockets ?? 1, threads: opts.cpu?.threads ?? 1, maxSockets: opts.cpu?.maxSockets },
    memory: opts.memory ?? '2Gi',
    memoryAsGuest: opts.memoryAsGuest ?? true,
    printableStatus: 'Stopped',
    statusSince: now,
    shape: { ...shapeFor(`${ns}/${name}`, size), ...(opts.shape ?? {}) },
  };
}

/** The VMI that starting vm creates (Pending), on nodeName or a node picked by its name. */
export function newVmi(vm: VmModel, ip: string, opts: { nodeName?: string } = {}): VmiModel {
  const now = timestamp();
  return {
    namespace: vm.namespace,
    name: vm.name,
    uid: crypto.randomUUID(),
    created: now,
    owner: { name: vm.name, uid: vm.uid, generation: vm.generation },
    labels: { 'kubevirt.io/domain': vm.name, 'kubevirt.io/size': 'small' },
    annotations: vm.osHint ? { 'vm.kubevirt.io/os': vm.osHint } : {},
    phase: 'Pending',
    phaseSince: now,
    nodeName: opts.nodeName ?? nodeFor(vm.name),
    ip,
    cpu: { ...vm.cpu },
    memory: vm.memory,
    paused: false,
    shape: vm.shape,
  };
}

function nodeFor(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) | 0;
  return `node0${(Math.abs(h) % 3) + 1}`;
}
