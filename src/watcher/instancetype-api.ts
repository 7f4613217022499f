// KubeVirt's instancetype API (docs/contract.md#3b-instancetypes) is optional: a cluster without it still syncs VMs and
// VMIs. The leader discovers the group (GET /apis/instancetype.kubevirt.io: its preferred version,
// v1beta1 on KubeVirt 1.6), says once when it is missing, records what it found for `status` and
// /readyz, and looks again periodically, so that an API installed later is picked up.
import { sleep } from '../lib/retry.js';
import type { Logger } from '../lib/log.js';
import type { KubeClient } from './kube-client.js';
import { INSTANCETYPE_GROUP, instancetypeResources, type Resource } from './resources.js';

export type ApiState = { state: 'unknown' } | { state: 'absent'; reason: string } | { state: 'present'; version: string };

/** What the process knows of the instancetype API; one per watcher process (it outlives terms). */
export class InstancetypeApi {
  current: ApiState = { state: 'unknown' };
  private saidAbsent = false;

  constructor(private readonly logger: Logger) {}

  /** One sentence for /readyz and logs. */
  describe(): string {
    const c = this.current;
    if (c.state === 'present') return `instancetype API: ${INSTANCETYPE_GROUP}/${c.version}`;
    if (c.state === 'absent') return `instancetype API: not served (${c.reason}); VMs and VMIs sync without it`;
    return 'instancetype API: not checked yet';
  }

  /**
   * Asks the API server. Returns the resources to watch when the group is served, else null. An
   * error other than 404 counts as absent for now (the next check asks again).
   */
  async discover(kube: KubeClient, signal: AbortSignal): Promise<Resource[] | null> {
    let reason: string;
    try {
      const group = await kube.discoverGroup(INSTANCETYPE_GROUP, signal);
      if (group) {
        const was = this.current;
        this.current = { state: 'present', version: group.preferredVersion };
        if (was.state !== 'present' || was.version !== group.preferredVersion) {
          this.logger.info({ group: INSTANCETYPE_GROUP, version: group.preferredVersion, versions: group.versions }, 'instancetype API found: watching instancetypes and their ControllerRevisions');
        }
        const resources = instancetypeResources(group.preferredVersion);
        for (const r of resources) kube.register(r);
        return resources;
      }
      reason = `GET /apis/${INSTANCETYPE_GROUP}: 404`;
    } catch (err) {
      if (signal.aborted) throw err;
      reason = `discovery failed: ${(err as Error).message}`;
    }
    this.current = { state: 'absent', reason };
    if (!this.saidAbsent) {
      this.saidAbsent = true;
      this.logger.warn({ group: INSTANCETYPE_GROUP, reason }, 'no instancetype API on this cluster: instancetype VMs get their size only once they run; VMs and VMIs sync as usual');
    }
    return null;
  }

  /** Asks again every `intervalMs` until the API is found (resolves with its resources) or `signal` aborts (null). */
  async waitForIt(kube: KubeClient, intervalMs: number, signal: AbortSignal, onCheck?: () => Promise<void>): Promise<Resource[] | null> {
    while (!signal.aborted) {
      await sleep(intervalMs, signal);
      if (signal.aborted) break;
      const found = await this.discover(kube, signal).catch(() => null);
      await onCheck?.().catch(() => undefined);
      if (found) return found;
    }
    return null;
  }
}
