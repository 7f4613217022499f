// Fault injection state, consulted by the HTTP layer on every Kubernetes API request
// (never for the /sim/v1 control API, so a test can always reach its controls).
import type { Resource } from './store.js';

/** How a watch is told its resourceVersion is too old. The real API server (watch cache) answers
 * 200 and streams one ERROR event carrying a 410 Expired Status; 'http' answers HTTP 410 instead. */
export type ExpiredMode = 'event' | 'http';

/** Which requests a failure applies to. */
export type RequestKind = 'list' | 'watch' | 'get' | 'discovery' | 'any';

export interface FailRequestsOptions {
  /** HTTP status to answer with: 500 InternalError, 503 ServiceUnavailable, 429 TooManyRequests, 504 Timeout... */
  status: number;
  /** Fail this many requests, then stop (default: 1 when durationMs is not given either). */
  count?: number;
  /** Fail every matching request for this long. */
  durationMs?: number;
  /** Only these requests (default 'any' except discovery). */
  only?: RequestKind;
  /** Retry-After (seconds) on the answers, as API Priority and Fairness sends with its 429s (default 1 for 429/503). */
  retryAfterSeconds?: number;
}

/** Fail one page of paginated lists: the first page is 1, the page after continue token k is k + 1. */
export interface ListPageFailureOptions {
  page: number;
  /** Default 500. */
  status?: number;
  /** Only lists of this resource (default both). */
  resource?: 'virtualmachines' | 'virtualmachineinstances';
  /** How many requests for that page fail (default 1). */
  count?: number;
  retryAfterSeconds?: number;
  /** 'status': answer the error; 'cut': send half the page, then cut the connection. */
  mode?: 'status' | 'cut';
}

/** How to fail a request. */
export interface FailureAnswer {
  status: number;
  retryAfterSeconds?: number;
  mode: 'status' | 'cut';
}

interface ActiveFailure {
  status: number;
  remaining: number;
  until: number;
  only: RequestKind;
  retryAfterSeconds?: number;
}

export class Faults {
  /** Answer used when a watch starts from a compacted resourceVersion. */
  expiredMode: ExpiredMode = 'event';
  /** Delay before answering each API request (headers included). */
  slowMs = 0;
  /** New watch streams are stalled too (no headers, no events) while set. */
  stallNew = false;
  private forced410: Array<{ mode: ExpiredMode; resource?: Resource }> = [];
  private failure?: ActiveFailure;
  private pageFailures: Array<Required<Pick<ListPageFailureOptions, 'page' | 'status' | 'count' | 'mode'>> & ListPageFailureOptions> = [];

  /** The next `count` watches (of `resource` only, when given) fail with 410 Expired whatever their resourceVersion. */
  fail410OnNextWatch(mode: ExpiredMode = 'event', count = 1, resource?: Resource): void {
    for (let i = 0; i < count; i++) this.forced410.push({ mode, resource });
  }

  /** Consumes one forced 410 that applies to a watch of `resource`, if any. */
  takeForced410(resource: Resource): ExpiredMode | undefined {
    const k = this.forced410.findIndex((f) => !f.resource || f.resource === resource);
    return k < 0 ? undefined : this.forced410.splice(k, 1)[0]!.mode;
  }

  failRequests(opts: FailRequestsOptions): void {
    const count = opts.count ?? (opts.durationMs === undefined ? 1 : Number.POSITIVE_INFINITY);
    this.failure = {
      status: opts.status,
      remaining: count,
      until: opts.durationMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + opts.durationMs,
      only: opts.only ?? 'any',
      retryAfterSeconds: opts.retryAfterSeconds,
    };
  }

  failListPage(opts: ListPageFailureOptions): void {
    this.pageFailures.push({ ...opts, status: opts.status ?? 500, count: opts.count ?? 1, mode: opts.mode ?? 'status' });
  }

  /** The failure for page `page` of a list of `resource`, consuming one; undefined = serve it. */
  pageFailureFor(resource: string, page: number): FailureAnswer | undefined {
    const f = this.pageFailures.find((p) => p.page === page && p.count > 0 && (!p.resource || p.resource === resource));
    if (!f) return undefined;
    f.count--;
    if (f.count <= 0) this.pageFailures.splice(this.pageFailures.indexOf(f), 1);
    return { status: f.status, retryAfterSeconds: f.retryAfterSeconds, mode: f.mode };
  }

  /** Like failureFor, with the Retry-After to send. */
  failureAnswerFor(kind: RequestKind): FailureAnswer | undefined {
    const retryAfterSeconds = this.failure?.retryAfterSeconds;
    const status = this.failureFor(kind);
    return status === undefined ? undefined : { status, retryAfterSeconds, mode: 'status' };
  }

  /** The status to fail this request with, consuming one from the budget; undefined = serve it. */
  failureFor(kind: RequestKind): number | undefined {
    const f = this.failure;
    if (!f) return undefined;
    if (f.remaining <= 0 || Date.now() >= f.until) {
      this.failure = undefined;
      return undefined;
    }
    const applies = f.only === kind || (f.only === 'any' && kind !== 'discovery');
    if (!applies) return undefined;
    f.remaining--;
    return f.status;
  }

  /** Clears every fault (stalls are lifted by the server, which owns the streams). */
  clear(): void {
    this.forced410 = [];
    this.failure = undefined;
    this.pageFailures = [];
    this.slowMs = 0;
    this.stallNew = false;
    this.expiredMode = 'event';
  }
}
