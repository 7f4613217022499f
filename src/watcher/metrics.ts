// Prometheus metrics of the watcher, on a registry of its own (no global state between instances).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface FieldUpdate {
  namespace: string | null;
  field: string;
  result: string;
  count: number;
}

export interface MetricsOptions {
  defaultMetrics?: boolean;
  /** Keep the namespace label of ssvirt_vmi_data_updates_total (METRICS_NAMESPACE_LABEL). */
  namespaceLabel?: boolean;
  /** Distinct namespaces it may name; later ones count under "other" (METRICS_NAMESPACE_CAP). */
  namespaceCap?: number;
}

export const DEFAULT_NAMESPACE_CAP = 500;
export const OTHER_NAMESPACE = 'other';

export class Metrics {
  readonly registry = new Registry();

  /** By namespace (capped: see MetricsOptions), field and result; without namespace when the label is off. */
  readonly vmiDataUpdates: Counter<string>;

  readonly seriesCount = new Gauge({
    name: 'ssvirt_vm_sync_metric_series',
    help: 'Distinct label sets of a labelled metric of the watcher (ssvirt_vmi_data_updates_total is bounded by METRICS_NAMESPACE_CAP)',
    labelNames: ['metric'] as const,
    registers: [this.registry],
  });

  readonly populatedRatio = new Gauge({
    name: 'ssvirt_vm_data_populated_ratio',
    help: 'Share of live vms rows with the field populated (vm_sync.populated_ratio())',
    labelNames: ['field'] as const,
    registers: [this.registry],
  });

  readonly watchRestarts = new Counter({
    name: 'ssvirt_vm_sync_watch_restarts_total',
    help: 'Watch streams restarted, by kind and reason (closed, idle, error, gone)',
    labelNames: ['kind', 'reason'] as const,
    registers: [this.registry],
  });

  readonly relists = new Counter({
    name: 'ssvirt_vm_sync_relists_total',
    help: 'Full lists, by kind and reason (cold_start, gone, continue_expired)',
    labelNames: ['kind', 'reason'] as const,
    registers: [this.registry],
  });

  readonly eventsReceived = new Counter({
    name: 'ssvirt_vm_sync_events_received_total',
    help: 'Watch events received, by kind and type',
    labelNames: ['kind', 'type'] as const,
    registers: [this.registry],
  });

  readonly listPageRetries = new Counter({
    name: 'ssvirt_vm_sync_list_page_retries_total',
    help: 'List pages asked again after a 429, a 5xx, a timeout or a cut connection, by kind and reason',
    labelNames: ['kind', 'reason'] as const,
    registers: [this.registry],
  });

  /** The running term's memory budget, read when /metrics is scraped. */
  budget: { used: number; peakBytes: number; limitBytes: number } | null = null;

  readonly memoryBudgetBytes = new Gauge({
    name: 'ssvirt_vm_sync_memory_budget_bytes',
    help: 'Bytes of object JSON held for lists and batches (state=used), the most held at once (state=peak) and the limit (state=limit)',
    labelNames: ['state'] as const,
    registers: [this.registry],
    collect: () => {
      const b = this.budget;
      if (!b) return;
      this.memoryBudgetBytes.set({ state: 'used' }, b.used);
      this.memoryBudgetBytes.set({ state: 'peak' }, b.peakBytes);
      this.memoryBudgetBytes.set({ state: 'limit' }, b.limitBytes);
    },
  });

  readonly listedObjects = new Counter({
    name: 'ssvirt_vm_sync_listed_objects_total',
    help: 'Objects received from list pages, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly listInProgress = new Gauge({
    name: 'ssvirt_vm_sync_list_in_progress',
    help: '1 while a full list (cold start or relist) of the kind runs',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly listObjects = new Gauge({
    name: 'ssvirt_vm_sync_list_objects',
    help: 'Objects received so far by the current (or last) full list, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly listEta = new Gauge({
    name: 'ssvirt_vm_sync_list_eta_seconds',
    help: 'Estimated seconds left of the current full list, from remainingItemCount and the rate so far (0 when done or unknown)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly listRemaining = new Gauge({
    name: 'ssvirt_vm_sync_list_remaining_objects',
    help: "The API server's remainingItemCount of the current full list (0 when done or not given)",
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly batchSize = new Histogram({
    name: 'ssvirt_vm_sync_batch_size',
    help: 'Events per committed batch (after coalescing)',
    buckets: [0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
    registers: [this.registry],
  });

  readonly batchSeconds = new Histogram({
    name: 'ssvirt_vm_sync_batch_duration_seconds',
    help: 'Time of one vm_sync.apply_batch call, retries included',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly eventLag = new Histogram({
    name: 'ssvirt_vm_sync_event_lag_seconds',
    help: 'From receiving a watch event to the commit of its batch',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly batchRetries = new Counter({
    name: 'ssvirt_vm_sync_batch_retries_total',
    help: 'Batches retried after a retryable database error',
    registers: [this.registry],
  });

  readonly backpressureSeconds = new Counter({
    name: 'ssvirt_vm_sync_backpressure_seconds_total',
    help: 'Time watch streams spent paused waiting for the database',
    registers: [this.registry],
  });

  readonly isLeader = new Gauge({
    name: 'ssvirt_vm_sync_leader',
    help: '1 while this process leads (holds the lease), else 0',
    registers: [this.registry],
  });

  readonly leaderTransitions = new Counter({
    name: 'ssvirt_vm_sync_leader_transitions_total',
    help: 'Leadership gained or lost, by direction',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  readonly dbErrors = new Counter({
    name: 'ssvirt_vm_sync_db_errors_total',
    help: 'Database errors, by operation',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });

  readonly reconcileChanged = new Counter({
    name: 'ssvirt_vm_sync_reconcile_rows_changed_total',
    help: 'vms rows changed by the periodic vm_sync.reconcile()',
    registers: [this.registry],
  });

  readonly lastBatchAt = new Gauge({
    name: 'ssvirt_vm_sync_last_batch_success_timestamp_seconds',
    help: 'Unix time of the last batch this process committed (0 before its first)',
    registers: [this.registry],
  });

  readonly rejectedObjects = new Counter({
    name: 'ssvirt_vm_sync_rejected_objects_total',
    help: 'Objects the database refused to stage (recorded in vm_sync.rejects), from apply_batch summaries',
    registers: [this.registry],
  });

  readonly watchResourceVersion = new Gauge({
    name: 'ssvirt_vm_sync_watch_resource_version',
    help: 'Last resourceVersion received on the watch, by kind and scope (numeric resourceVersions only)',
    labelNames: ['kind', 'scope'] as const,
    registers: [this.registry],
  });

  readonly checkpointResourceVersion = new Gauge({
    name: 'ssvirt_vm_sync_checkpoint_resource_version',
    help: 'Last resourceVersion committed to vm_sync.watch_state, by kind and scope (numeric resourceVersions only)',
    labelNames: ['kind', 'scope'] as const,
    registers: [this.registry],
  });

  readonly watchEstablished = new Gauge({
    name: 'ssvirt_vm_sync_watch_established',
    help: '1 while the leader has this watch established (or had it moments ago), 0 when not; absent on a standby',
    labelNames: ['kind', 'scope'] as const,
    registers: [this.registry],
  });

  readonly watchesDownSeconds = new Gauge({
    name: 'ssvirt_vm_sync_leader_watches_down_seconds',
    help: 'How long this leader has had a watch not established (0 when all are, or when not leading)',
    registers: [this.registry],
  });

  readonly stepDowns = new Counter({
    name: 'ssvirt_vm_sync_step_downs_total',
    help: 'Terms this process resigned because its watches were not established for STEP_DOWN_AFTER_MS',
    registers: [this.registry],
  });

  readonly notifyQueueUsage = new Gauge({
    name: 'ssvirt_vm_sync_notify_queue_usage_ratio',
    help: "Share of PostgreSQL's NOTIFY queue in use (pg_notification_queue_usage()); vm_changed listeners that do not read fill it, and a full queue fails the batches",
    registers: [this.registry],
  });

  readonly kubeEventsPosted = new Counter({
    name: 'ssvirt_vm_sync_kube_events_posted_total',
    help: 'VMDataRejected Events written to the Kubernetes API, by op (create, patch)',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });

  readonly kubeEventsDropped = new Counter({
    name: 'ssvirt_vm_sync_kube_events_dropped_total',
    help: 'VMDataRejected occurrences not posted, by reason (queue_full, cache_evicted, api_error)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly objectsTrimmed = new Counter({
    name: 'ssvirt_vm_sync_objects_trimmed_total',
    help: 'Objects over MAX_OBJECT_BYTES or MAX_OBJECT_DEPTH, sent cut down to the contract\'s fields (each a reject), by kind and reason',
    labelNames: ['kind', 'reason'] as const,
    registers: [this.registry],
  });

  readonly eventsQuarantined = new Counter({
    name: 'ssvirt_vm_sync_events_quarantined_total',
    help: 'Events PostgreSQL refused on their own, split out of their batch and recorded as a reject, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  private readonly namespaceLabel: boolean;
  private readonly namespaceCap: number;
  private readonly namespaces = new Set<string>();
  private readonly series = new Set<string>();

  constructor(options: MetricsOptions = {}) {
    this.namespaceLabel = options.namespaceLabel ?? true;
    this.namespaceCap = options.namespaceCap ?? DEFAULT_NAMESPACE_CAP;
    this.vmiDataUpdates = new Counter({
      name: 'ssvirt_vmi_data_updates_total',
      help: this.namespaceLabel
        ? `VM data field updates from VMI/VM snapshots, by namespace (the first ${this.namespaceCap} seen; the rest as "${OTHER_NAMESPACE}"), field and result`
        : 'VM data field updates from VMI/VM snapshots, by field and result',
      labelNames: this.namespaceLabel ? ['namespace', 'field', 'result'] : ['field', 'result'],
      registers: [this.registry],
    });
    this.seriesCount.set({ metric: 'ssvirt_vmi_data_updates_total' }, 0);
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'ssvirt_vm_sync_' });
  }

  /** After a committed batch (or list page): its time, rejects and the checkpoints it saved. */
  recordBatch(summary: Record<string, unknown> | undefined, checkpoints: ReadonlyArray<{ kind: string; scope: string; resourceVersion: string }> = []): void {
    this.lastBatchAt.set(Date.now() / 1000);
    const rejected = Number(summary?.rejected ?? 0);
    if (Number.isFinite(rejected) && rejected > 0) this.rejectedObjects.inc(rejected);
    for (const c of checkpoints) setResourceVersion(this.checkpointResourceVersion, c.kind, c.scope, c.resourceVersion);
  }

  /** The namespace label value: itself while under the cap (or already seen), else "other". */
  private namespaceValue(ns: string): string {
    if (this.namespaces.has(ns)) return ns;
    if (this.namespaces.size >= this.namespaceCap) return OTHER_NAMESPACE;
    this.namespaces.add(ns);
    return ns;
  }

  recordFieldUpdates(updates: unknown): void {
    if (!Array.isArray(updates)) return;
    for (const u of updates as FieldUpdate[]) {
      if (!u || typeof u.field !== 'string' || typeof u.count !== 'number') continue;
      const labels: Record<string, string> = this.namespaceLabel ? { namespace: this.namespaceValue(u.namespace ?? '') } : {};
      labels.field = u.field;
      labels.result = String(u.result ?? '');
      this.vmiDataUpdates.inc(labels, u.count);
      const key = `${labels.namespace ?? ''}\u0001${labels.field}\u0001${labels.result}`;
      if (!this.series.has(key)) {
        this.series.add(key);
        this.seriesCount.set({ metric: 'ssvirt_vmi_data_updates_total' }, this.series.size);
      }
    }
  }
}

/** resourceVersions are opaque strings; in practice (etcd) they are integers, and only those are exported. */
export function setResourceVersion(gauge: Gauge<'kind' | 'scope'>, kind: string, scope: string, rv: string | undefined): void {
  if (!rv || !/^\d{1,15}$/.test(rv)) return;
  gauge.set({ kind, scope: scope || '*' }, Number(rv));
}
