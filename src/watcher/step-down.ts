// Leadership that follows health: a leader whose watches are not established (never were this term,
// or stopped) for STEP_DOWN_AFTER_MS steps down, so that a standby which can reach Kubernetes leads.
// The term ends like a shutdown (what is queued is written, the lease resigned) and the process
// stands aside for STEP_DOWN_BACKOFF_MS before campaigning again (run.ts).
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';

/** What the policy needs of a watch (ResourceWatch has it). */
export interface WatchHealth {
  readonly kind: string;
  readonly scope: string;
  /** A stream is open. */
  readonly established: boolean;
  /** Last time the API server answered this watch: a list page, a stream opened, data on it (0: never). */
  readonly lastContactAt: number;
}

export interface StepDownOptions {
  /** Down this long (continuously) ends the term; 0 disables stepping down. */
  afterMs: number;
  logger: Logger;
  metrics?: Metrics;
  /** Called once when the term should end. */
  onStepDown: (reason: string) => void;
  /** Records the watches that are down (kind/scope) for `status`; [] once they are back. Best effort. */
  report?: (down: string[], downSeconds: number) => Promise<void>;
  now?: () => number;
}

/**
 * The rule, apart from timers: a watch is healthy while established, or within `graceMs` of its
 * last contact (a page of a long cold-start list, a routine reconnect). Down time runs from the
 * term's start until every watch is healthy, and again from the moment one is not.
 */
export class StepDownPolicy {
  private downSince: number | null;
  readonly graceMs: number;

  constructor(
    readonly afterMs: number,
    termStart: number,
  ) {
    this.downSince = termStart;
    this.graceMs = Math.min(10_000, Math.max(500, Math.floor(afterMs / 2)));
  }

  healthy(w: WatchHealth, now: number): boolean {
    return w.established || (w.lastContactAt > 0 && now - w.lastContactAt < this.graceMs);
  }

  /** Updates the state; returns the watches not healthy now and how long the term has been down. */
  observe(watches: readonly WatchHealth[], now: number): { down: WatchHealth[]; downMs: number } {
    const down = watches.filter((w) => !this.healthy(w, now));
    if (down.length === 0 && watches.length > 0) this.downSince = null;
    else this.downSince ??= now;
    return { down, downMs: this.downSince === null ? 0 : now - this.downSince };
  }

  shouldStepDown(downMs: number): boolean {
    return this.afterMs > 0 && downMs >= this.afterMs;
  }
}

const label = (w: WatchHealth): string => `${w.kind}/${w.scope || '*'}`;

/** Checks the term's watches until `signal` aborts or it steps down; keeps the watch metrics. */
export async function monitorWatches(watches: readonly WatchHealth[], options: StepDownOptions, signal: AbortSignal): Promise<void> {
  const { logger, metrics } = options;
  const now = options.now ?? Date.now;
  const policy = new StepDownPolicy(options.afterMs, now());
  const checkMs = Math.max(100, Math.min(1000, Math.floor((options.afterMs || 4000) / 4)));
  let warned = false;
  let reportedAt = 0;
  const REPORT_EVERY_MS = 10_000;
  const report = (down: string[], downMs: number): void => {
    reportedAt = now();
    options.report?.(down, downMs / 1000).catch((err) => logger.debug({ err }, 'reporting the watches failed'));
  };
  try {
    while (!signal.aborted) {
      const t = now();
      const { down, downMs } = policy.observe(watches, t);
      for (const w of watches) metrics?.watchEstablished.set({ kind: w.kind, scope: w.scope || '*' }, policy.healthy(w, t) ? 1 : 0);
      metrics?.watchesDownSeconds.set(downMs / 1000);
      if (down.length && downMs >= policy.graceMs && !warned) {
        warned = true;
        logger.warn({ watches: down.map(label), downMs, stepDownAfterMs: options.afterMs }, "the leader's watches are not established");
        report(down.map(label), downMs);
      } else if (!down.length && warned) {
        warned = false;
        logger.info('watches established again');
        report([], 0);
      } else if (warned && t - reportedAt >= REPORT_EVERY_MS) {
        report(down.map(label), downMs);
      }
      if (policy.shouldStepDown(downMs)) {
        metrics?.stepDowns.inc();
        const reason = `watches not established for ${downMs} ms: ${down.map(label).join(', ')}`;
        logger.warn({ watches: down.map(label), downMs }, 'stepping down: a standby that can watch should lead');
        options.onStepDown(reason);
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, checkMs);
        function done(): void {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    }
  } finally {
    metrics?.watchEstablished.reset();
    metrics?.watchesDownSeconds.set(0);
  }
}
