// Entry point of the simulated KubeVirt API server library. See docs/simulator.md.
export { startSimulator, Simulator, kubeconfigYaml } from './simulator.js';
export type {
  SimulatorOptions,
  Truth,
  Counters,
  CreateVmOptions,
  SeedOptions,
  GuestOSInfo,
  FailRequestsOptions,
  ListPageFailureOptions,
  ExpiredMode,
  Resource,
  ChangeEvent,
} from './simulator.js';
export { FEDORA } from './kubevirt.js';
export type { CpuTopology, RunStrategy } from './kubevirt.js';
export type { Identity, RbacRule } from './auth.js';
