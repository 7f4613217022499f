// Tells the VM's owner where they look: one Warning Event `VMDataRejected` on the VirtualMachine
// whose data was rejected or quarantined, as client-go's event recorder does it
// (tools/record/events_cache.go): one Event per object and reason, its count bumped by PATCH on
// repeats, at most `burst` writes per object and then one per `refillMs` (the occurrences in
// between are added to the next write's count), an LRU of 4,096 objects. Posting never slows or
// stops the sync: observe() only counts, one request at a time drains a bounded queue, and what
// does not fit or fails is dropped and counted.
import type { Logger } from '../lib/log.js';
import type { KubeClient } from './kube-client.js';
import type { Metrics } from './metrics.js';

export const REJECT_REASON = 'VMDataRejected';
const MAX_MESSAGE = 300;

/** One entry of a batch summary's rejected_objects (vm_sync.ingest / record_rejects). */
export interface RejectedObject {
  kind?: unknown;
  namespace?: unknown;
  name?: unknown;
  uid?: unknown;
  field?: unknown;
  reason?: unknown;
}

export interface EventRecorderOptions {
  kube: Pick<KubeClient, 'write'>;
  /** source.component and reportingComponent. */
  component: string;
  /** reportingInstance and source.host: this process. */
  instance: string;
  logger: Logger;
  metrics?: Metrics;
  /** Objects with occurrences waiting (default 1,000); more are dropped. */
  queueMax?: number;
  /** Writes per object before throttling (client-go: 25), then one per refillMs (client-go: 5 min). */
  burst?: number;
  refillMs?: number;
  cacheMax?: number;
  now?: () => number;
}

interface Entry {
  namespace: string;
  name: string;
  uid: string | null;
  eventName: string | null;
  count: number;
  firstTimestamp: string | null;
  pending: number;
  message: string;
  tokens: number;
  refilledAt: number;
}

function text(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 3)}...` : s;
}

export class EventRecorder {
  private readonly entries = new Map<string, Entry>();
  private readonly queue = new Set<string>();
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly stop = new AbortController();
  private idle: Promise<void> = Promise.resolve();
  private readonly o: Required<Omit<EventRecorderOptions, 'metrics'>> & { metrics?: Metrics };

  constructor(options: EventRecorderOptions) {
    this.o = { queueMax: 1000, burst: 25, refillMs: 300_000, cacheMax: 4096, now: Date.now, ...options };
  }

  /** Counts the rejects of a committed batch; cheap and synchronous, never throws. */
  observe(rejected: unknown): void {
    if (this.closed || !Array.isArray(rejected)) return;
    for (const r of rejected as RejectedObject[]) {
      if (!r || typeof r !== 'object') continue;
      const kind = text(r.kind);
      const namespace = text(r.namespace);
      const name = text(r.name);
      // The VM is what its owner looks at; a VMI is named like its VM (and its uid is not the VM's).
      if (!namespace || !name || (kind !== 'VirtualMachine' && kind !== 'VirtualMachineInstance')) continue;
      const key = `${namespace}/${name}`;
      let e = this.entries.get(key);
      if (e) this.entries.delete(key);
      else e = { namespace, name, uid: null, eventName: null, count: 0, firstTimestamp: null, pending: 0, message: '', tokens: this.o.burst, refilledAt: this.o.now() };
      this.entries.set(key, e); // most recently used last
      if (kind === 'VirtualMachine' && text(r.uid)) e.uid = text(r.uid);
      const field = clip(text(r.field) ?? 'object', 120);
      const reason = clip(text(r.reason) ?? 'rejected', MAX_MESSAGE - field.length - 60);
      e.message = `${kind} field ${field} was not used: ${reason}`;
      if (!this.queue.has(key)) {
        if (this.queue.size >= this.o.queueMax) {
          this.o.metrics?.kubeEventsDropped.inc({ reason: 'queue_full' });
          continue;
        }
        this.queue.add(key);
      }
      e.pending++;
      this.evict();
    }
    this.kick();
  }

  /** Waits until nothing is being posted (for tests and shutdown). */
  async settled(): Promise<void> {
    await this.idle;
  }

  close(): void {
    this.closed = true;
    this.stop.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private evict(): void {
    while (this.entries.size > this.o.cacheMax) {
      const oldest = this.entries.keys().next().value as string;
      if (this.queue.has(oldest)) this.o.metrics?.kubeEventsDropped.inc({ reason: 'cache_evicted' });
      this.queue.delete(oldest);
      this.entries.delete(oldest);
    }
  }

  private kick(): void {
    if (this.running || this.closed || this.timer) return;
    this.running = true;
    this.idle = this.drain().finally(() => {
      this.running = false;
    });
  }

  private refill(e: Entry, now: number): void {
    e.tokens = Math.min(this.o.burst, e.tokens + (now - e.refilledAt) / this.o.refillMs);
    e.refilledAt = now;
  }

  private async drain(): Promise<void> {
    while (!this.closed && this.queue.size) {
      const now = this.o.now();
      let next: string | null = null;
      let waitMs = Infinity;
      for (const key of this.queue) {
        const e = this.entries.get(key)!;
        this.refill(e, now);
        if (e.tokens >= 1) {
          next = key;
          break;
        }
        waitMs = Math.min(waitMs, (1 - e.tokens) * this.o.refillMs);
      }
      if (next === null) {
        // Every waiting object is throttled: come back when the first one may write again.
        this.timer = setTimeout(() => {
          this.timer = null;
          this.kick();
        }, Math.max(10, Math.ceil(waitMs)));
        this.timer.unref();
        return;
      }
      this.queue.delete(next);
      const e = this.entries.get(next)!;
      e.tokens -= 1;
      const n = e.pending;
      e.pending = 0;
      await this.post(e, n).catch((err: unknown) => {
        this.o.metrics?.kubeEventsDropped.inc({ reason: 'api_error' });
        this.o.logger.debug({ err, namespace: e.namespace, name: e.name }, 'Event not posted');
      });
    }
  }

  private async post(e: Entry, n: number): Promise<void> {
    const nowIso = new Date(this.o.now()).toISOString();
    const base = `/api/v1/namespaces/${encodeURIComponent(e.namespace)}/events`;
    if (e.eventName) {
      const r = await this.o.kube.write('PATCH', `${base}/${encodeURIComponent(e.eventName)}`, { count: e.count + n, lastTimestamp: nowIso, message: e.message }, 'application/strategic-merge-patch+json', this.stop.signal);
      if (r.status === 200) {
        e.count += n;
        this.o.metrics?.kubeEventsPosted.inc({ op: 'patch' });
        return;
      }
      if (r.status !== 404) throw new Error(`PATCH Event: HTTP ${r.status}`);
      e.eventName = null; // expired on the server (events have a TTL): a new one
      e.count = 0;
    }
    const name = `${e.name}.${(BigInt(this.o.now()) * 1_000_000n).toString(16)}`;
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: e.namespace },
      involvedObject: { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', namespace: e.namespace, name: e.name, ...(e.uid ? { uid: e.uid } : {}) },
      reason: REJECT_REASON,
      message: e.message,
      type: 'Warning',
      count: n,
      firstTimestamp: nowIso,
      lastTimestamp: nowIso,
      source: { component: this.o.component, host: this.o.instance },
      reportingComponent: this.o.component,
      reportingInstance: this.o.instance,
    };
    const r = await this.o.kube.write('POST', base, event, 'application/json', this.stop.signal);
    if (r.status !== 201 && r.status !== 200) throw new Error(`POST Event: HTTP ${r.status}`);
    e.eventName = name;
    e.count = n;
    e.firstTimestamp = nowIso;
    this.o.metrics?.kubeEventsPosted.inc({ op: 'create' });
  }
}
