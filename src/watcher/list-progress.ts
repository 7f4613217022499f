// Progress of one full list (cold start or relist): a log line every few seconds per kind with the
// objects listed, pages, rate and, when the API server gives remainingItemCount, an estimate of
// what is left; the same as gauges on /metrics. Silent lists of a few pages never log.
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';

const EVERY_MS = 5000;

export class ListProgress {
  private readonly startedAt = Date.now();
  private lastLogAt = Date.now();
  objects = 0;
  pages = 0;

  constructor(
    private readonly kind: string,
    private readonly logger: Logger,
    private readonly metrics?: Metrics,
  ) {
    metrics?.listInProgress.set({ kind }, 1);
  }

  page(items: number, remaining: number | undefined): void {
    this.objects += items;
    this.pages++;
    const now = Date.now();
    const seconds = (now - this.startedAt) / 1000;
    const rate = seconds > 0 ? this.objects / seconds : 0;
    this.metrics?.listObjects.set({ kind: this.kind }, this.objects);
    if (remaining !== undefined) this.metrics?.listRemaining.set({ kind: this.kind }, remaining);
    if (now - this.lastLogAt < EVERY_MS) return;
    this.lastLogAt = now;
    this.logger.info(
      {
        objects: this.objects,
        pages: this.pages,
        perSecond: Math.round(rate),
        remaining: remaining ?? null,
        etaSeconds: remaining !== undefined && rate > 0 ? Math.round(remaining / rate) : null,
      },
      'listing progress',
    );
  }

  done(): void {
    this.metrics?.listInProgress.set({ kind: this.kind }, 0);
    this.metrics?.listRemaining.set({ kind: this.kind }, 0);
  }
}
