// Progress of one full list (cold start or relist): a log line every few seconds per kind with the
// objects listed, pages, rate and, when the API server gives remainingItemCount, an estimate of
// what is left; the same as gauges on /metrics, and as a row of vm_sync.list_progress (through the
// leader session, fenced) for `ssvirt-vm-sync status`. Silent lists of a few pages never log.
// Saving never holds up the list: at most one save in flight, the newest state saved after it, at
// most every few seconds (and once when the list ends); a failed save is only logged.
import type { Logger } from '../lib/log.js';
import { brief } from '../lib/operator-error.js';
import type { Metrics } from './metrics.js';

const LOG_EVERY_MS = 5000;
const SAVE_EVERY_MS = 2000;

/** One row of vm_sync.save_list_progress's argument (sql/092_cluster.sql). */
export interface ListProgressRow {
  kind: string;
  scope: string;
  reason: string;
  startedAt: string;
  objects: number;
  pages: number;
  remaining: number | null;
  done: boolean;
}

export type SaveListProgress = (rows: ListProgressRow[]) => Promise<void>;

export interface ListProgressOptions {
  kind: string;
  scope: string;
  reason: string;
  logger: Logger;
  metrics?: Metrics;
  save?: SaveListProgress;
}

export class ListProgress {
  private readonly startedAt = Date.now();
  private lastLogAt = Date.now();
  private lastSaveAt = 0;
  private saving: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private dirty = false;
  private ended = false;
  private warned = false;
  objects = 0;
  pages = 0;
  remaining: number | null = null;

  constructor(private readonly o: ListProgressOptions) {
    o.metrics?.listInProgress.set({ kind: o.kind }, 1);
    this.o.metrics?.listEta.set({ kind: o.kind }, 0);
    this.saveSoon();
  }

  /** Objects per second since the list started. */
  get rate(): number {
    const seconds = (Date.now() - this.startedAt) / 1000;
    return seconds > 0 ? this.objects / seconds : 0;
  }

  /** Seconds until the rest is listed at the rate so far; null without remainingItemCount. */
  get etaSeconds(): number | null {
    const rate = this.rate;
    return this.remaining !== null && rate > 0 ? Math.round(this.remaining / rate) : null;
  }

  /** After each page: the list's totals so far (a restarted list starts over) and remainingItemCount. */
  page(objects: number, pages: number, remaining: number | undefined): void {
    this.objects = objects;
    this.pages = pages;
    this.remaining = remaining ?? null;
    const { kind, metrics, logger } = this.o;
    metrics?.listObjects.set({ kind }, this.objects);
    metrics?.listRemaining.set({ kind }, this.remaining ?? 0);
    const eta = this.etaSeconds;
    metrics?.listEta.set({ kind }, eta ?? 0);
    this.saveSoon();
    const now = Date.now();
    if (now - this.lastLogAt < LOG_EVERY_MS) return;
    this.lastLogAt = now;
    logger.info(
      { objects: this.objects, pages: this.pages, perSecond: Math.round(this.rate), remaining: this.remaining, etaSeconds: eta },
      'listing progress',
    );
  }

  /** The list ended; `ok` false when it failed (its row stays as it was, a retry starts a new one). */
  done(ok = true): void {
    const { kind, metrics } = this.o;
    metrics?.listInProgress.set({ kind }, 0);
    metrics?.listRemaining.set({ kind }, 0);
    metrics?.listEta.set({ kind }, 0);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!ok) {
      // Nothing more is saved, not even a state still pending: a failed list must not read as done.
      this.ended = true;
      this.dirty = false;
      return;
    }
    this.remaining = 0;
    this.ended = true;
    this.dirty = true;
    void this.flush();
  }

  private row(): ListProgressRow {
    const { kind, scope, reason } = this.o;
    return { kind, scope, reason, startedAt: new Date(this.startedAt).toISOString(), objects: this.objects, pages: this.pages, remaining: this.remaining, done: this.ended };
  }

  /** Now when the last save is long enough ago, else once it is: the newest state, never a backlog. */
  private saveSoon(): void {
    if (!this.o.save || this.ended) return;
    this.dirty = true;
    if (this.timer || this.saving) return;
    const wait = this.lastSaveAt + SAVE_EVERY_MS - Date.now();
    if (wait <= 0) {
      void this.flush();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, wait);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    const save = this.o.save;
    if (!save || this.saving || !this.dirty) return;
    this.dirty = false;
    this.lastSaveAt = Date.now();
    const row = this.row();
    this.saving = save([row]).catch((err: unknown) => {
      // Once per list at warn: a database outage also fails the list's own writes, which say more.
      this.o.logger[this.warned ? 'debug' : 'warn']({ err: brief(err) }, 'saving list progress for status failed; the list goes on');
      this.warned = true;
    });
    await this.saving;
    this.saving = null;
    // What changed meanwhile: the final state at once, the rest after the interval.
    if (this.dirty) {
      if (this.ended) void this.flush();
      else this.saveSoon();
    }
  }
}
