// The simulated KubeVirt controllers: VM and VMI models, and the sequences of writes a real
// cluster makes for each user action (start, stop, hotplug, guest agent, delete...). Each step
// is one write, hence one watch event, in the order virt-controller/virt-handler produce them.
import {
  FEDORA,
  renderVm,
  renderVmi,
  timestamp,
  type GuestOSInfo,
  type VmModel,
  type VmiModel,
} from './kubevirt.js';
import { buildVm, newVmi, type CreateVmOptions, type SeedOptions } from './models.js';
import type { Resource, Store } from './store.js';
import { Instancetypes } from './instancetypes.js';
import { DEFAULT_SIZE, type SizeOptions } from './object-size.js';

export type { CreateVmOptions, SeedOptions };

export class NotFoundError extends Error {
  constructor(
    readonly resource: string,
    readonly name: string,
  ) {
    super(`${resource} "${name}" not found`);
  }
}

type Step = () => void;

export class Cluster {
  private readonly vms = new Map<string, VmModel>();
  private readonly standalone = new Map<string, VmiModel>();
  private ipCounter = 10;
  readonly instancetypes: Instancetypes;

  constructor(
    private readonly store: Store,
    /** Pause between the steps of a transition; 0 = all steps synchronously. */
    public stepDelayMs = 0,
    /** How big the rendered objects are (object-size.ts). */
    private readonly size: SizeOptions = DEFAULT_SIZE,
  ) {
    this.instancetypes = new Instancetypes(store);
  }

  private vm(ns: string, name: string): VmModel {
    const vm = this.vms.get(`${ns}/${name}`);
    if (!vm) throw new NotFoundError('virtualmachines.kubevirt.io', `${ns}/${name}`);
    return vm;
  }

  /** Model of a VM (for assertions); undefined when absent. Do not mutate. */
  model(ns: string, name: string): VmModel | undefined {
    return this.vms.get(`${ns}/${name}`);
  }

  private writeVm(vm: VmModel): void {
    this.store.put('virtualmachines', `${vm.namespace}/${vm.name}`, this.instancetypes.decorate(vm, renderVm(vm)));
  }

  private writeVmi(vmi: VmiModel): void {
    this.store.put('virtualmachineinstances', `${vmi.namespace}/${vmi.name}`, renderVmi(vmi));
  }

  private setStatus(vm: VmModel, printable: string): void {
    vm.printableStatus = printable;
    vm.statusSince = timestamp();
  }

  private setPhase(vmi: VmiModel, phase: VmiModel['phase']): void {
    vmi.phase = phase;
    vmi.phaseSince = timestamp();
  }

  /** Runs the steps now (stepDelayMs 0) or spaced by stepDelayMs; resolves after the last. */
  private async run(steps: Step[]): Promise<void> {
    for (let i = 0; i < steps.length; i++) {
      if (i > 0 && this.stepDelayMs > 0) await new Promise((r) => setTimeout(r, this.stepDelayMs));
      steps[i]!();
    }
  }

  private nextIp(): string {
    const n = this.ipCounter++;
    return `10.244.${(n >> 8) & 255}.${n & 255}`;
  }

  /** Creates a VM (ADDED, Stopped); with `running`, then walks it through the start sequence. */
  async createVM(ns: string, name: string, opts: CreateVmOptions = {}): Promise<void> {
    const key = `${ns}/${name}`;
    if (this.vms.has(key)) throw new Error(`virtualmachines.kubevirt.io "${key}" already exists`);
    const vm = buildVm(ns, name, opts, this.size);
    this.vms.set(key, vm);
    if (opts.instancetype) this.instancetypes.name(vm, { name: opts.instancetype, kind: opts.instancetypeKind });
    this.writeVm(vm);
    // virt-controller stores the revision, then records it in the VM's status (two more events).
    if (opts.instancetype && this.instancetypes.syncRevision(vm)) this.writeVm(vm);
    if (opts.running) await this.run(this.startSteps(vm, opts.nodeName));
    if (opts.running && opts.guestAgent) await this.connectGuestAgent(ns, name, opts.guestAgent === true ? FEDORA : opts.guestAgent);
  }

  private startSteps(vm: VmModel, nodeName?: string): Step[] {
    let vmi: VmiModel;
    return [
      () => {
        this.setStatus(vm, 'Starting');
        this.writeVm(vm);
      },
      () => {
        vmi = newVmi(vm, this.nextIp(), { nodeName });
        vm.vmi = vmi;
        this.writeVmi(vmi); // ADDED, Pending
      },
      () => {
        this.setPhase(vmi, 'Scheduling');
        this.writeVmi(vmi);
      },
      () => {
        this.setPhase(vmi, 'Scheduled');
        this.writeVmi(vmi);
      },
      () => {
        this.setPhase(vmi, 'Running');
        vmi.currentCpu = { cores: vmi.cpu.cores, sockets: vmi.cpu.sockets, threads: vmi.cpu.threads };
        vmi.memoryAtBoot = vmi.memoryCurrent = vmi.memoryRequested = vmi.memory;
        this.writeVmi(vmi);
      },
      () => {
        this.setStatus(vm, 'Running');
        this.writeVm(vm);
      },
    ];
  }

  /** virtctl start: runStrategy Always, then Starting -> VMI Pending/Scheduling/Scheduled/Running -> Running. */
  async startVM(ns: string, name: string): Promise<void> {
    const vm = this.vm(ns, name);
    if (vm.vmi && !vm.vmi.deletionTimestamp) return;
    if (vm.runStrategy) vm.runStrategy = vm.runStrategy === 'Manual' ? 'Manual' : 'Always';
    else vm.running = true;
    vm.generation++;
    await this.run(this.startSteps(vm));
  }

  /** virtctl stop: runStrategy Halted, Stopping, VMI deletionTimestamp, Succeeded, DELETED, Stopped. */
  async stopVM(ns: string, name: string): Promise<void> {
    const vm = this.vm(ns, name);
    if (vm.runStrategy) vm.runStrategy = vm.runStrategy === 'Manual' ? 'Manual' : 'Halted';
    else vm.running = false;
    vm.generation++;
    await this.run([
      () => {
        this.setStatus(vm, vm.vmi ? 'Stopping' : 'Stopped');
        this.writeVm(vm);
      },
      ...this.vmiTeardown(vm),
      () => {
        this.setStatus(vm, 'Stopped');
        this.writeVm(vm);
      },
    ]);
  }

  private vmiTeardown(vm: VmModel): Step[] {
    const vmi = vm.vmi;
    if (!vmi) return [];
    return [
      () => {
        vmi.deletionTimestamp = timestamp();
        this.writeVmi(vmi);
      },
      () => {
        this.setPhase(vmi, 'Succeeded');
        vmi.guestOS = undefined;
        this.writeVmi(vmi);
      },
      () => {
        vm.vmi = undefined;
        this.store.remove('virtualmachineinstances', `${vmi.namespace}/${vmi.name}`);
      },
    ];
  }

  /** virtctl pause / unpause: VMI Paused condition, VM printableStatus Paused / Running. */
  async pauseVM(ns: string, name: string, paused = true): Promise<void> {
    const vm = this.vm(ns, name);
    const vmi = vm.vmi;
    if (!vmi || vmi.phase !== 'Running') throw new Error(`VMI ${ns}/${name} is not running`);
    await this.run([
      () => {
        vmi.paused = paused;
        this.writeVmi(vmi);
      },
      () => {
        this.setStatus(vm, paused ? 'Paused' : 'Running');
        this.writeVm(vm);
      },
    ]);
  }

  /** CPU hotplug (LiveUpdate): VM template sockets, then VMI spec, then VMI currentCPUTopology. */
  async hotplugCPU(ns: string, name: string, sockets: number): Promise<void> {
    await this.hotplug(ns, name, {
      vm: (vm) => (vm.cpu = { ...vm.cpu, sockets }),
      vmiSpec: (vmi) => (vmi.cpu = { ...vmi.cpu, sockets }),
      vmiStatus: (vmi) => (vmi.currentCpu = { cores: vmi.cpu.cores, sockets, threads: vmi.cpu.threads }),
    });
  }

  /** Memory hotplug: VM template guest memory, VMI spec + guestRequested, then guestCurrent. */
  async hotplugMemory(ns: string, name: string, quantity: string): Promise<void> {
    await this.hotplug(ns, name, {
      vm: (vm) => (vm.memory = quantity),
      vmiSpec: (vmi) => {
        vmi.memory = quantity;
        vmi.memoryRequested = quantity;
      },
      vmiStatus: (vmi) => (vmi.memoryCurrent = quantity),
    });
  }

  /**
   * A live update as KubeVirt writes it: the VM's template (a new generation), then, when it runs,
   * the VMI's spec (owner generation followed), then the VMI's status. One write each.
   */
  private async hotplug(
    ns: string,
    name: string,
    change: { vm: (vm: VmModel) => void; vmiSpec: (vmi: VmiModel) => void; vmiStatus: (vmi: VmiModel) => void },
  ): Promise<void> {
    const vm = this.vm(ns, name);
    const steps: Step[] = [
      () => {
        change.vm(vm);
        vm.generation++;
        this.writeVm(vm);
      },
    ];
    const vmi = vm.vmi;
    if (vmi) {
      steps.push(
        () => {
          change.vmiSpec(vmi);
          if (vmi.owner) vmi.owner.generation = vm.generation;
          this.writeVmi(vmi);
        },
        () => {
          change.vmiStatus(vmi);
          this.writeVmi(vmi);
        },
      );
    }
    await this.run(steps);
  }

  private vmiOf(ns: string, name: string): VmiModel {
    const vmi = this.vms.get(`${ns}/${name}`)?.vmi ?? this.standalone.get(`${ns}/${name}`);
    if (!vmi) throw new NotFoundError('virtualmachineinstances.kubevirt.io', `${ns}/${name}`);
    return vmi;
  }

  /** The guest agent connects: AgentConnected condition and a full status.guestOSInfo. */
  async connectGuestAgent(ns: string, name: string, osInfo: GuestOSInfo = FEDORA): Promise<void> {
    const vmi = this.vmiOf(ns, name);
    vmi.guestOS = { ...osInfo };
    vmi.agentSince = timestamp();
    this.writeVmi(vmi);
  }

  /** The guest agent goes away: condition removed, guestOSInfo back to {}. */
  async disconnectGuestAgent(ns: string, name: string): Promise<void> {
    const vmi = this.vmiOf(ns, name);
    vmi.guestOS = undefined;
    this.writeVmi(vmi);
  }

  /**
   * The user edits spec.instancetype (a resize; applies at the next start): the VM is MODIFIED, then
   * virt-controller stores a revision of the new instancetype and points the status at it.
   */
  async setInstancetype(ns: string, name: string, instancetype: string, kind?: string): Promise<void> {
    const vm = this.vm(ns, name);
    vm.generation++;
    await this.run([
      () => {
        this.instancetypes.name(vm, { name: instancetype, kind });
        this.writeVm(vm);
      },
      () => {
        if (this.instancetypes.syncRevision(vm)) this.writeVm(vm);
      },
    ]);
  }

  /** kubectl delete vm: deletionTimestamp + Terminating, VMI torn down, then VM DELETED. */
  async deleteVM(ns: string, name: string): Promise<void> {
    const vm = this.vm(ns, name);
    await this.run([
      () => {
        vm.deletionTimestamp = timestamp();
        this.setStatus(vm, 'Terminating');
        this.writeVm(vm);
      },
      ...this.vmiTeardown(vm),
      () => {
        this.vms.delete(`${ns}/${name}`);
        this.store.remove('virtualmachines', `${ns}/${name}`);
        this.instancetypes.forgetVm(vm);
      },
    ]);
  }

  /** Deletes (if present) and creates again under the same name: a new uid. */
  async recreateVM(ns: string, name: string, opts?: CreateVmOptions): Promise<void> {
    const old = this.vms.get(`${ns}/${name}`);
    const again: CreateVmOptions = opts ?? {
      cpu: old?.cpu,
      memory: old?.memory,
      labels: old?.labels,
      annotations: old?.annotations,
      osHint: old?.osHint,
      running: !!old?.vmi,
    };
    if (old) await this.deleteVM(ns, name);
    await this.createVM(ns, name, again);
  }

  /** Forces status.printableStatus (e.g. ErrorUnschedulable, Migrating) in one MODIFIED. */
  async setPrintableStatus(ns: string, name: string, printableStatus: string): Promise<void> {
    const vm = this.vm(ns, name);
    this.setStatus(vm, printableStatus);
    this.writeVm(vm);
  }

  /** A VMI with no owning VM (kubectl create -f vmi.yaml), Running. */
  async createStandaloneVMI(ns: string, name: string, opts: CreateVmOptions = {}): Promise<void> {
    const shell = buildVm(ns, name, opts, this.size);
    const vmi = newVmi(shell, this.nextIp(), { nodeName: opts.nodeName });
    vmi.owner = undefined;
    this.setPhase(vmi, 'Running');
    vmi.currentCpu = { cores: vmi.cpu.cores, sockets: vmi.cpu.sockets, threads: vmi.cpu.threads };
    if (opts.guestAgent) vmi.guestOS = opts.guestAgent === true ? { ...FEDORA } : { ...opts.guestAgent };
    this.standalone.set(`${ns}/${name}`, vmi);
    this.writeVmi(vmi);
  }

  /** Deletes a standalone VMI. */
  async deleteStandaloneVMI(ns: string, name: string): Promise<void> {
    if (!this.standalone.delete(`${ns}/${name}`)) throw new NotFoundError('virtualmachineinstances.kubevirt.io', `${ns}/${name}`);
    this.store.remove('virtualmachineinstances', `${ns}/${name}`);
  }

  /**
   * Creates n VMs in their final state in one go (one ADDED per VM and per VMI, no transitions):
   * for benchmarks and big fixtures. Returns the "ns/name" keys created.
   */
  seed(n: number, opts: SeedOptions = {}): string[] {
    const namespaces = opts.namespaces?.length ? opts.namespaces : ['default'];
    const prefix = opts.prefix ?? 'vm';
    const runningRatio = opts.runningRatio ?? 1;
    const agentRatio = opts.agentRatio ?? 1;
    const keys: string[] = [];
    let start = 0;
    while (this.vms.has(`${namespaces[0]}/${prefix}-${String(start + 1).padStart(6, '0')}`)) start += n;
    for (let i = 0; i < n; i++) {
      const ns = namespaces[i % namespaces.length]!;
      const name = `${prefix}-${String(start + i + 1).padStart(6, '0')}`;
      if (this.vms.has(`${ns}/${name}`)) continue;
      // Spread the ratios evenly rather than randomly so fixtures are reproducible.
      const running = Math.floor((i + 1) * runningRatio) > Math.floor(i * runningRatio);
      const vm = buildVm(ns, name, { ...opts, running }, this.size);
      this.vms.set(`${ns}/${name}`, vm);
      if (running) {
        const vmi = newVmi(vm, this.nextIp());
        vmi.phase = 'Running';
        vmi.currentCpu = { cores: vmi.cpu.cores, sockets: vmi.cpu.sockets, threads: vmi.cpu.threads };
        if (Math.floor((i + 1) * agentRatio) > Math.floor(i * agentRatio)) vmi.guestOS = FEDORA;
        vm.vmi = vmi;
        vm.printableStatus = 'Running';
        this.writeVmi(vmi);
      }
      this.writeVm(vm);
      keys.push(`${ns}/${name}`);
    }
    return keys;
  }

  /** Forgets models whose objects were replaced through the raw API (put/remove), so controls fail loudly. */
  forget(resource: Resource, ns: string, name: string): void {
    if (resource === 'virtualmachines') this.vms.delete(`${ns}/${name}`);
    else if (resource === 'virtualmachineinstances') {
      this.standalone.delete(`${ns}/${name}`);
      const vm = this.vms.get(`${ns}/${name}`);
      if (vm) vm.vmi = undefined;
    }
  }
}
