// A VMI's status, as virt-controller and virt-handler fill it in, for both renderings (small and
// realistic). The phases, conditions, CPU topology and memory the sync reads are built here once;
// a rendering only says how its bulk looks (its disks, NICs, launcher image, migration settings).
import type { VmiModel } from './kubevirt.js';
import { condition, intern, podUid, topology } from './kubevirt-common.js';

export interface VmiStatusLook {
  phaseTransitionTimestamps(vmi: VmiModel): unknown[];
  /** The conditions after Ready of a VMI past scheduling (the migratable ones, DataVolumesReady). */
  readinessConditions(vmi: VmiModel): unknown[];
  launcherImage: string;
  machine: unknown;
  migrationMethod: string;
  selinuxContext(vmi: VmiModel): string;
  volumeStatus(vmi: VmiModel): unknown;
  /** status.migrationState of a running VMI that was migrated, if this rendering has one. */
  migrationState?(vmi: VmiModel, pod: string): unknown;
  interfaces(vmi: VmiModel): unknown[];
}

export function renderVmiStatus(vmi: VmiModel, look: VmiStatusLook): Record<string, unknown> {
  const since = vmi.phaseSince;
  const status: Record<string, unknown> = {
    guestOSInfo: vmi.guestOS ?? {},
    phase: vmi.phase,
    phaseTransitionTimestamps: look.phaseTransitionTimestamps(vmi),
    qosClass: 'Burstable',
    runtimeUser: vmi.phase === 'Pending' ? 0 : 107,
  };
  if (vmi.phase === 'Pending' || vmi.phase === 'Scheduling') {
    status.conditions = [condition('Ready', false, since, 'GuestNotRunning', 'Guest VM is not reported as running')];
    return status;
  }
  const running = vmi.phase === 'Running';
  const conditions = [condition('Ready', running && !vmi.paused && !vmi.deletionTimestamp, since), ...look.readinessConditions(vmi)];
  if (vmi.guestOS && running) conditions.push(condition('AgentConnected', true, vmi.agentSince ?? since));
  if (vmi.paused) conditions.push(condition('Paused', true, since, 'PausedByUser', 'VMI was paused by user'));
  const pod = podUid(vmi.uid);
  Object.assign(status, {
    activePods: { [pod]: vmi.nodeName ?? '' },
    conditions,
    launcherContainerImageVersion: look.launcherImage,
    machine: look.machine,
    migrationMethod: look.migrationMethod,
    migrationTransport: 'Unix',
    nodeName: vmi.nodeName,
    selinuxContext: look.selinuxContext(vmi),
    virtualMachineRevisionName: vmi.owner ? `revision-start-vm-${vmi.owner.uid}-${vmi.owner.generation}` : undefined,
    volumeStatus: look.volumeStatus(vmi),
  });
  if (running) {
    const migration = look.migrationState?.(vmi, pod);
    if (migration !== undefined) status.migrationState = migration;
    status.currentCPUTopology = topology(vmi.currentCpu ?? vmi.cpu);
    status.interfaces = look.interfaces(vmi);
    const atBoot = vmi.memoryAtBoot ?? vmi.memory;
    const current = vmi.memoryCurrent ?? vmi.memory;
    const requested = vmi.memoryRequested ?? vmi.memory;
    status.memory = intern(`mem|${atBoot}|${current}|${requested}`, () => ({ guestAtBoot: atBoot, guestCurrent: current, guestRequested: requested }));
  }
  return status;
}
