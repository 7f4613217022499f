// The simulator's public face: start it, drive the cluster, inject faults, read counters.
// Everything tests, the demo, benchmarks and fault tests need goes through `Simulator`.
import { EventEmitter } from 'node:events';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { Socket } from 'node:net';
import { Cluster, type CreateVmOptions, type SeedOptions } from './cluster.js';
import { handleControl } from './control.js';
import { Faults, type ExpiredMode, type FailRequestsOptions, type ListPageFailureOptions } from './faults.js';
import type { GuestOSInfo } from './kubevirt.js';
import type { SimAuth } from './auth.js';
import { ApiServer, newCounters, type Counters } from './server.js';
import type { CoreEvents } from './events.js';
import { sendStatus } from './status.js';
import { DEFAULT_SIZE, type SizeMode } from './object-size.js';
import { keyOf, Store, type ChangeEvent, type Resource } from './store.js';

export interface SimulatorOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Interface to bind, default 127.0.0.1. */
  host?: string;
  /** Changes kept for watch replay / continue tokens before the oldest are compacted. Default 50,000. */
  historyLimit?: number;
  /** BOOKMARK interval for allowWatchBookmarks watches. Default 5000 ms (use ~50 in tests). */
  bookmarkIntervalMs?: number;
  /** Watch timeout when the client sends no timeoutSeconds. Default 1800 s. */
  defaultWatchTimeoutSeconds?: number;
  /** A watch with this many unread bytes queued is closed, like an unresponsive watcher. Default 64 MiB. */
  maxWatchBufferBytes?: number;
  /** Pause between the steps of a lifecycle transition (start, stop...). Default 0: all at once. */
  stepDelayMs?: number;
  /** First resourceVersion handed out. Default 1000. */
  initialResourceVersion?: number;
  /** Serve KubeVirt's instancetype API (with the u1 sizes). Default true; false: a cluster without it. */
  instancetypeApi?: boolean;
  /** 'realistic' (default): production-sized objects; 'small': the compact ones (object-size.ts). */
  objectSize?: SizeMode;
  /** Seed of the per-VM size draw (default 1): the same seed gives the same cluster. */
  sizeSeed?: number;
  /** One VM in this many is a giant near the 1.5 MB etcd limit (default 50,000; 0 = none). */
  giantEvery?: number;
}

/** Every object the simulator serves right now: what a correct sync must converge to. */
export interface Truth {
  resourceVersion: string;
  vms: Record<string, unknown>[];
  vmis: Record<string, unknown>[];
}

export type { Counters, CreateVmOptions, SeedOptions, GuestOSInfo, FailRequestsOptions, ListPageFailureOptions, ExpiredMode, Resource, ChangeEvent };

/**
 * A running simulated KubeVirt API server. Create with {@link startSimulator}; always `close()` it.
 * Emits 'change' (ChangeEvent) for every stored write and 'activity' whenever counters move.
 */
export class Simulator extends EventEmitter {
  readonly store: Store;
  readonly faults = new Faults();
  private readonly cluster: Cluster;
  private readonly api: ApiServer;
  private readonly sockets = new Set<Socket>();
  private server: http.Server;
  private online = false;
  private counterState: Counters = newCounters();
  port = 0;

  constructor(private readonly opts: SimulatorOptions = {}) {
    super();
    this.setMaxListeners(0);
    this.store = new Store({ historyLimit: opts.historyLimit, initialResourceVersion: opts.initialResourceVersion });
    this.cluster = new Cluster(this.store, opts.stepDelayMs ?? 0, {
      mode: opts.objectSize ?? (process.env.SIM_OBJECT_SIZE === 'small' ? 'small' : DEFAULT_SIZE.mode),
      seed: opts.sizeSeed ?? DEFAULT_SIZE.seed,
      giantEvery: opts.giantEvery ?? DEFAULT_SIZE.giantEvery,
    });
    this.api = new ApiServer(this.store, this.faults, this.counterState, {
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 5000,
      defaultWatchTimeoutSeconds: opts.defaultWatchTimeoutSeconds ?? 1800,
      maxWatchBufferBytes: opts.maxWatchBufferBytes ?? 64 * 1024 * 1024,
      instancetypeApi: opts.instancetypeApi ?? true,
    });
    if (opts.instancetypeApi ?? true) this.cluster.instancetypes.seedU1();
    this.api.onActivity = () => this.emit('activity');
    this.store.onChange((ev) => {
      this.emit('change', ev);
      this.emit('activity');
    });
    this.server = this.createServer();
  }

  /** The Events API of the simulated cluster (`kubectl get events` lists them). */
  get coreEvents(): CoreEvents {
    return this.api.coreEvents;
  }

  private createServer(): http.Server {
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const work = url.pathname.startsWith('/sim/') ? handleControl(this, req, res, url) : this.api.handle(req, res, url);
      work.catch((err: unknown) => {
        if (!res.headersSent) sendStatus(res, 500, err instanceof Error ? err.message : String(err));
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 60_000;
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    return server;
  }

  /** Tokens, per-token RBAC rules, SelfSubjectAccessReview and the cluster's uid (src/sim/auth.ts). */
  get auth(): SimAuth {
    return this.api.auth;
  }

  /** Base URL, e.g. http://127.0.0.1:38123 */
  get url(): string {
    return `http://${this.opts.host ?? '127.0.0.1'}:${this.port}`;
  }

  /** Starts listening (called by startSimulator). */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port || this.opts.port || 0, this.opts.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as { port: number }).port;
    this.online = true;
  }

  /** Stops everything: streams cut, sockets destroyed, port released. Idempotent. */
  async close(): Promise<void> {
    await this.goOffline();
    this.removeAllListeners();
  }

  /** Writes a kubeconfig for this server (plain http, insecure-skip-tls-verify, dummy token). */
  async writeKubeconfig(path: string, namespace = 'default'): Promise<void> {
    await fs.writeFile(path, kubeconfigYaml(this.url, namespace), { mode: 0o600 });
  }

  // ---- cluster controls -------------------------------------------------------------------

  /** Creates a VM (Stopped); `running: true` also starts it (VMI ADDED ... Running). */
  createVM(ns: string, name: string, opts?: CreateVmOptions): Promise<void> {
    return this.cluster.createVM(ns, name, opts);
  }
  /** Serves the instancetype API from now on (with the u1 sizes), or stops serving it. */
  setInstancetypeApi(on: boolean): void {
    this.api.setInstancetypeApi(on);
    if (on && this.store.count('virtualmachineclusterinstancetypes') === 0) this.cluster.instancetypes.seedU1();
  }

  /** Changes spec.instancetype (a resize while stopped takes effect at the next start); a new revision follows. */
  setInstancetype(ns: string, name: string, instancetype: string, kind?: string): Promise<void> {
    return this.cluster.setInstancetype(ns, name, instancetype, kind);
  }
  startVM(ns: string, name: string): Promise<void> {
    return this.cluster.startVM(ns, name);
  }
  stopVM(ns: string, name: string): Promise<void> {
    return this.cluster.stopVM(ns, name);
  }
  pauseVM(ns: string, name: string): Promise<void> {
    return this.cluster.pauseVM(ns, name, true);
  }
  unpauseVM(ns: string, name: string): Promise<void> {
    return this.cluster.pauseVM(ns, name, false);
  }
  /** Sets the socket count (VM template, VMI spec, VMI currentCPUTopology). */
  hotplugCPU(ns: string, name: string, sockets: number): Promise<void> {
    return this.cluster.hotplugCPU(ns, name, sockets);
  }
  /** Sets guest memory to a quantity such as "4Gi" (VM template, VMI spec/guestRequested, guestCurrent). */
  hotplugMemory(ns: string, name: string, quantity: string): Promise<void> {
    return this.cluster.hotplugMemory(ns, name, quantity);
  }
  connectGuestAgent(ns: string, name: string, osInfo?: GuestOSInfo): Promise<void> {
    return this.cluster.connectGuestAgent(ns, name, osInfo);
  }
  disconnectGuestAgent(ns: string, name: string): Promise<void> {
    return this.cluster.disconnectGuestAgent(ns, name);
  }
  /** deletionTimestamp (Terminating), VMI torn down and DELETED, then the VM DELETED. */
  deleteVM(ns: string, name: string): Promise<void> {
    return this.cluster.deleteVM(ns, name);
  }
  /** Delete then create again under the same name (new uid); keeps the old shape unless opts are given. */
  recreateVM(ns: string, name: string, opts?: CreateVmOptions): Promise<void> {
    return this.cluster.recreateVM(ns, name, opts);
  }
  setPrintableStatus(ns: string, name: string, printableStatus: string): Promise<void> {
    return this.cluster.setPrintableStatus(ns, name, printableStatus);
  }
  createStandaloneVMI(ns: string, name: string, opts?: CreateVmOptions): Promise<void> {
    return this.cluster.createStandaloneVMI(ns, name, opts);
  }
  deleteStandaloneVMI(ns: string, name: string): Promise<void> {
    return this.cluster.deleteStandaloneVMI(ns, name);
  }
  /** Creates n VMs (and Running VMIs per runningRatio) in their final state, fast. Returns "ns/name" keys. */
  seed(n: number, opts?: SeedOptions): string[] {
    return this.cluster.seed(n, opts);
  }
  /** Pause between lifecycle steps from now on (0 = synchronous). */
  setStepDelay(ms: number): void {
    this.cluster.stepDelayMs = ms;
  }

  /**
   * Stores any JSON value as an object of `resource`, served as-is (hostile-input tests).
   * The key is metadata.namespace/name when present, else `key`. metadata.resourceVersion is
   * overwritten unless stampResourceVersion is false. Returns the key used.
   */
  put(resource: Resource, object: unknown, opts: { key?: string; stampResourceVersion?: boolean } = {}): string {
    const key = opts.key ?? keyOf(object);
    if (key === undefined) throw new Error('put: object has no metadata.namespace/name; pass opts.key');
    const [ns = '', name = ''] = key.split('/');
    this.cluster.forget(resource, ns, name);
    this.store.put(resource, key, object, opts.stampResourceVersion ?? true);
    return key;
  }

  /** Deletes whatever is stored under ns/name (a DELETED event); false when absent. */
  remove(resource: Resource, ns: string, name: string): boolean {
    this.cluster.forget(resource, ns, name);
    return this.store.remove(resource, `${ns}/${name}`) !== undefined;
  }

  /** The object served under ns/name right now (undefined when absent). */
  get(resource: Resource, ns: string, name: string): Record<string, unknown> | undefined {
    return this.store.get(resource, `${ns}/${name}`) as Record<string, unknown> | undefined;
  }

  /** Every VM and VMI currently served, in key order, and the current resourceVersion. */
  truth(): Truth {
    return {
      resourceVersion: String(this.store.resourceVersion),
      vms: this.store.all('virtualmachines') as Record<string, unknown>[],
      vmis: this.store.all('virtualmachineinstances') as Record<string, unknown>[],
    };
  }

  /** Current global resourceVersion (as a number). */
  get resourceVersion(): number {
    return this.store.resourceVersion;
  }

  // ---- counters ---------------------------------------------------------------------------

  /** A copy of the counters. */
  counters(): Counters {
    return structuredClone(this.counterState);
  }

  /** Zeroes the counters (activeWatches keeps reflecting open streams). */
  resetCounters(): void {
    const active = this.counterState.activeWatches;
    Object.assign(this.counterState, newCounters(), { activeWatches: active });
  }

  /**
   * Resolves once `predicate(counters)` holds, re-checked whenever something happens; rejects after
   * timeoutMs (default 10 s) with the last counters in the message.
   */
  until(predicate: (c: Counters, sim: Simulator) => boolean, timeoutMs = 10_000): Promise<Counters> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (!predicate(this.counterState, this)) return false;
        cleanup();
        resolve(this.counters());
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`simulator: condition not met within ${timeoutMs} ms; counters ${JSON.stringify(this.counterState)}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('activity', onActivity);
      };
      const onActivity = (): void => void check();
      this.on('activity', onActivity);
      check();
    });
  }

  // ---- faults -----------------------------------------------------------------------------

  /** Cuts every open watch stream (of one resource, if given): abruptly by default (socket destroyed), or cleanly. Returns how many. */
  dropStreams(opts: { graceful?: boolean; resource?: Resource } = {}): number {
    return this.api.dropStreams(opts.graceful ?? false, opts.resource);
  }
  /** Open streams (and, unless newStreams is false, new ones) go silent, connections kept, until resume(). */
  stallStreams(opts: { newStreams?: boolean } = {}): void {
    this.api.stallStreams();
    this.faults.stallNew = opts.newStreams ?? true;
  }
  /** Ends a stall: held streams send what they missed (or 410 if it was compacted meanwhile). */
  resume(): void {
    this.faults.stallNew = false;
    this.api.resumeStreams();
  }
  /** Forgets history up to resourceVersion (default: now): older watch resourceVersions and continue tokens get 410. */
  compact(resourceVersion?: number): void {
    this.store.compact(resourceVersion);
  }
  /** The next `count` watches (of one resource, if given) fail with 410 Expired, as an HTTP status or an in-stream ERROR event. */
  fail410OnNextWatch(mode: ExpiredMode = 'event', count = 1, resource?: Resource): void {
    this.faults.fail410OnNextWatch(mode, count, resource);
  }
  /** How watches from compacted resourceVersions are refused: 'event' (real default) or 'http'. */
  setExpiredMode(mode: ExpiredMode): void {
    this.faults.expiredMode = mode;
  }
  /** Answer API requests with an error status (count-limited or for a duration). */
  failRequests(opts: FailRequestsOptions): void {
    this.faults.failRequests(opts);
  }
  /** Fail one page of paginated lists (page 1 = the first), e.g. a 500 on page 37 of 40, or a cut connection. */
  failListPage(opts: ListPageFailureOptions): void {
    this.faults.failListPage(opts);
  }
  /** Delay every API response by ms (0 to stop). */
  slowResponses(ms: number): void {
    this.faults.slowMs = ms;
  }
  /** Removes every fault and lifts stalls. */
  clearFaults(): void {
    this.faults.clear();
    this.api.resumeStreams();
  }

  /** Stops accepting connections and destroys open ones (streams included); the port stays reserved for goOnline. */
  async goOffline(): Promise<void> {
    if (!this.online) return;
    this.online = false;
    this.api.dropStreams(false);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Listens again on the same port. */
  async goOnline(): Promise<void> {
    if (this.online) return;
    this.server = this.createServer();
    await this.listen();
  }

  get isOnline(): boolean {
    return this.online;
  }
}

/** Starts a simulator on 127.0.0.1 (ephemeral port by default). */
export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const sim = new Simulator(opts);
  await sim.listen();
  return sim;
}

/** kubeconfig text for a plain-http server (client-node refuses http without insecure-skip-tls-verify). */
export function kubeconfigYaml(server: string, namespace = 'default'): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- cluster:',
    `    server: ${server}`,
    '    insecure-skip-tls-verify: true',
    '  name: kubevirt-sim',
    'contexts:',
    '- context:',
    '    cluster: kubevirt-sim',
    '    user: kubevirt-sim',
    `    namespace: ${namespace}`,
    '  name: kubevirt-sim',
    'current-context: kubevirt-sim',
    'users:',
    '- name: kubevirt-sim',
    '  user:',
    '    token: simulator-dummy-token',
    'preferences: {}',
    '',
  ].join('\n');
}
