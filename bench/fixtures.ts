// Watch events as the API server streams them during a cold start: for each VM one VirtualMachine
// ADDED and one VirtualMachineInstance ADDED (Running, with CPU topology, memory and a guest
// agent report). Objects come from the simulator's renderers, so they are what `kubectl get -o json`
// prints (managedFields included): realistic sizes by default (median ~8 KB per VM, ~12 KB per
// VMI, object-size.ts); SIM_OBJECT_SIZE=small gives the old ~2.5 KB / 4 KB objects.
import crypto from 'node:crypto';
import { FEDORA, renderVm, renderVmi, type GuestOSInfo, type VmModel, type VmiModel } from '../src/sim/kubevirt.js';
import { DEFAULT_SIZE, shapeFor } from '../src/sim/object-size.js';
import { withResourceVersion } from '../src/sim/store.js';
import { namespaceOf, vmNameOf } from './pg.js';

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: Record<string, unknown>;
}

const CREATED = '2026-11-20T08:00:00Z';
const MEMORY = ['2Gi', '4Gi', '8Gi', '4096Mi', '1536Mi', '16Gi'];
const TOPOLOGY = [
  { sockets: 1, cores: 1, threads: 1 },
  { sockets: 1, cores: 2, threads: 1 },
  { sockets: 2, cores: 2, threads: 1 },
  { sockets: 1, cores: 4, threads: 2 },
];
const UBUNTU: GuestOSInfo = {
  id: 'ubuntu',
  kernelRelease: '6.8.0-45-generic',
  kernelVersion: '#45-Ubuntu SMP PREEMPT_DYNAMIC Fri Aug 30 12:02:04 UTC 2024',
  machine: 'x86_64',
  name: 'Ubuntu',
  prettyName: 'Ubuntu 24.04.1 LTS',
  version: '24.04.1 LTS (Noble Numbat)',
  versionId: '24.04',
};
const WINDOWS: GuestOSInfo = {
  id: 'mswindows',
  kernelRelease: '20348',
  kernelVersion: '10.0',
  machine: 'x86_64',
  name: 'Microsoft Windows',
  prettyName: 'Windows Server 2022 Datacenter',
  version: '2022',
  versionId: '2022',
};
const OSES = [FEDORA, UBUNTU, WINDOWS];

/** A stable UUID per label, so two runs (and two contenders) see byte-identical objects. */
export function stableUuid(label: string): string {
  const h = crypto.createHash('md5').update(label).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The models of VM number i (1-based) and its running VMI; values vary with i. */
export function modelsFor(i: number): { vm: VmModel; vmi: VmiModel } {
  const namespace = namespaceOf(i);
  const name = vmNameOf(i);
  const cpu = TOPOLOGY[i % TOPOLOGY.length]!;
  const memory = MEMORY[i % MEMORY.length]!;
  const shape = shapeFor(`${namespace}/${name}`, { ...DEFAULT_SIZE, mode: process.env.SIM_OBJECT_SIZE === 'small' ? 'small' : 'realistic' });
  const vm: VmModel = {
    namespace,
    name,
    uid: stableUuid(`vm/${i}`),
    created: CREATED,
    generation: 2,
    labels: { app: `app-${i % 97}`, 'kubevirt.io/os': 'linux', tier: i % 3 === 0 ? 'db' : 'web' },
    annotations: {},
    osHint: i % 5 === 0 ? 'fedora' : undefined,
    runStrategy: 'Always',
    cpu: { ...cpu },
    memory,
    memoryAsGuest: i % 4 !== 0,
    printableStatus: 'Running',
    statusSince: CREATED,
    shape,
  };
  const vmi: VmiModel = {
    namespace,
    name,
    uid: stableUuid(`vmi/${i}`),
    created: CREATED,
    owner: { name, uid: vm.uid, generation: vm.generation },
    labels: { 'kubevirt.io/domain': name, 'kubevirt.io/size': 'small' },
    annotations: {},
    phase: 'Running',
    phaseSince: CREATED,
    nodeName: `node0${(i % 3) + 1}`,
    ip: `10.${128 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}`,
    cpu: { ...cpu },
    currentCpu: { ...cpu },
    memory,
    memoryAtBoot: memory,
    memoryCurrent: memory,
    memoryRequested: memory,
    guestOS: OSES[i % OSES.length],
    agentSince: CREATED,
    paused: false,
    shape,
  };
  vm.vmi = vmi;
  return { vm, vmi };
}

/** The two ADDED events of VM number i, stamped with resourceVersions rv and rv + 1. */
export function eventsFor(i: number, rv: number): [WatchEvent, WatchEvent] {
  const { vm, vmi } = modelsFor(i);
  return [
    { type: 'ADDED', object: withResourceVersion(renderVm(vm), rv) as Record<string, unknown> },
    { type: 'ADDED', object: withResourceVersion(renderVmi(vmi), rv + 1) as Record<string, unknown> },
  ];
}

let lastColdStart: { n: number; firstRv: number; events: WatchEvent[] } | undefined;

/**
 * All 2n events of an n-VM cold start, VM then VMI per VM, resourceVersions increasing. The last
 * set is kept for the next section of the same scale (rendering 200,000 production-sized objects
 * takes minutes); callers only read it. forgetColdStartEvents() lets it go.
 */
export function coldStartEvents(n: number, firstRv = 100_000): WatchEvent[] {
  if (lastColdStart?.n === n && lastColdStart.firstRv === firstRv) return lastColdStart.events;
  lastColdStart = undefined;
  const events: WatchEvent[] = [];
  for (let i = 1; i <= n; i++) events.push(...eventsFor(i, firstRv + 2 * (i - 1)));
  lastColdStart = { n, firstRv, events };
  return events;
}

export function forgetColdStartEvents(): void {
  lastColdStart = undefined;
}

/** Consecutive slices of `size` events. */
export function* batchesOf<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let k = 0; k < items.length; k += size) yield items.slice(k, k + size);
}
