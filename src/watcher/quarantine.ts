// When PostgreSQL refuses a batch for something in it (a value it cannot hold, a limit an object
// reaches), the batch is split in halves until the event at fault stands alone; every other event
// applies, that one is recorded as a reject (quarantined) and its position is saved all the same.
// One poison event in n costs about 2*log2(n) extra calls, once.
import type { Checkpoint, WatchEvent, WatcherReject } from './events.js';
import { combineSummaries, rejectOf } from './events.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';
import { classifyDbError } from '../pg/errors.js';

export type ApplyFn = (events: WatchEvent[], checkpoints: Checkpoint[], rejects: WatcherReject[]) => Promise<Record<string, unknown>>;

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** The reject of an event PostgreSQL refused on its own. */
export function quarantineReject(event: WatchEvent, err: unknown): WatcherReject {
  const code = errorCode(err);
  const message = String((err as { message?: unknown } | null)?.message ?? err).slice(0, 200);
  return rejectOf(event.object, String(event.object?.kind ?? ''), 'event', { sqlstate: code || null }, `PostgreSQL refused the event${code ? ` (${code})` : ''}: ${message}; quarantined, the rest of its batch applied`);
}

export interface QuarantineDeps {
  /** Whether a failure is the batch's content (default isSplittable). */
  splittable?: (err: unknown) => boolean;
  logger: Logger;
  metrics?: Metrics;
}

/**
 * Applies `events` with `checkpoints`; on a content error, bisects. The checkpoints go with the
 * last piece, so a position is saved only once everything before it has applied or been
 * quarantined. Errors of any other class are thrown for the caller's retry (replaying the pieces
 * that did apply writes nothing).
 */
export async function applyQuarantining(apply: ApplyFn, events: WatchEvent[], checkpoints: Checkpoint[], deps: QuarantineDeps): Promise<Record<string, unknown>> {
  try {
    return await apply(events, checkpoints, []);
  } catch (err) {
    if (!(deps.splittable ?? isSplittable)(err) || events.length === 0) throw err;
    if (events.length === 1) {
      const event = events[0]!;
      const reject = quarantineReject(event, err);
      deps.metrics?.eventsQuarantined.inc({ kind: reject.kind ?? '' });
      deps.logger.warn({ err, kind: reject.kind, namespace: reject.namespace, name: reject.name, resourceVersion: reject.resourceVersion }, 'event refused by PostgreSQL; quarantined as a reject');
      return apply([], checkpoints, event.reject ? [reject, event.reject] : [reject]);
    }
    deps.logger.info({ err: (err as Error).message, events: events.length }, 'batch refused for its content; splitting it');
    const mid = events.length >>> 1;
    const left = await applyQuarantining(apply, events.slice(0, mid), [], deps);
    const right = await applyQuarantining(apply, events.slice(mid), checkpoints, deps);
    return combineSummaries(left, right);
  }
}

/**
 * A failed write worth bisecting: PostgreSQL refused what the batch holds ('content'), or the
 * statement ran out of time ('split'); or the batch was too large for JavaScript to serialize.
 */
export function isSplittable(err: unknown): boolean {
  if (err instanceof RangeError) return true;
  const c = classifyDbError(err);
  return c === 'content' || c === 'split';
}
