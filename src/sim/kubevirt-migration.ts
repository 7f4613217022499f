// status.migrationState of a VMI that was live-migrated (every node drain of an OpenShift upgrade
// moves the running VMIs): the field set of KubeVirt's VirtualMachineInstanceMigrationState and
// its MigrationConfiguration (kubevirt/kubevirt staging/src/kubevirt.io/api/core/v1/types.go),
// with KubeVirt's default migration settings (as harvester/docs advanced/settings.md lists them:
// 5 per cluster, 2 outbound per node, 150 s per GiB, 150 s progress timeout, no bandwidth cap).
import type { VmiModel } from './kubevirt.js';

/** MigrationConfiguration as virt-controller copies it into migrationState (KubeVirt defaults). */
const MIGRATION_CONFIG = Object.freeze({
  allowAutoConverge: false,
  allowPostCopy: false,
  allowWorkloadDisruption: false,
  bandwidthPerMigration: '0Mi',
  completionTimeoutPerGiB: 150,
  nodeDrainTaintKey: 'kubevirt.io/drain',
  parallelMigrationsPerCluster: 5,
  parallelOutboundMigrationsPerNode: 2,
  progressTimeout: 150,
  unsafeMigrationOverride: false,
});

/** A completed live migration (node drain during a cluster upgrade), as virt-controller leaves it. */
export function migrationState(vmi: VmiModel, pod: string): Record<string, unknown> {
  const source = vmi.nodeName === 'node01' ? 'node02' : 'node01';
  return {
    completed: true,
    endTimestamp: vmi.phaseSince,
    migrationConfiguration: MIGRATION_CONFIG,
    migrationUid: `${pod.slice(0, 8)}-5d1e-4c0b-9a51-${vmi.uid.slice(-12)}`,
    mode: 'PreCopy',
    sourceNode: source,
    sourcePod: `virt-launcher-${vmi.name}-${vmi.uid.slice(0, 5)}`,
    startTimestamp: vmi.phaseSince,
    targetDirectMigrationNodePorts: { '39261': 0, '40517': 49152 },
    targetNode: vmi.nodeName,
    targetNodeAddress: `10.130.${vmi.uid.charCodeAt(4) % 250}.12`,
    targetNodeDomainDetected: true,
    targetNodeDomainReadyTimestamp: vmi.phaseSince,
    targetPod: `virt-launcher-${vmi.name}-${vmi.uid.slice(5, 10)}`,
  };
}

