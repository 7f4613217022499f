// The one retry policy: capped, jittered exponential backoff, waits that end with their signal, and
// one timeout helper. Every retry loop of the watcher and the CLI is built from these; what counts
// as retryable is the caller's classifier (database errors: src/pg/errors.ts).
import type { Logger } from './log.js';
import { brief } from './operator-error.js';

export interface Backoff {
  /** First delay in milliseconds. */
  initialMs: number;
  /** Largest delay in milliseconds. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 200, maxMs: 10_000 };

/**
 * Jittered exponential backoff: a random delay in [initial / 2, min(max, initial * 2^attempt)]
 * (a floor of half the first delay, so a retry never spins; the jitter spreads a crowd of clients).
 */
export function backoffDelay(attempt: number, backoff: Backoff = DEFAULT_BACKOFF): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(backoff.initialMs / 2 + Math.random() * (ceiling - backoff.initialMs / 2));
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The attempt counter of a long-running loop (a watch that reconnects, an elector that campaigns):
 * `wait()` sleeps the next backoff delay, `reset()` after a healthy round starts over.
 */
export class Pacer {
  private attempt = 0;
  constructor(private readonly backoff: Backoff) {}

  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }

  /** Sleeps the next delay; returns it. */
  async wait(signal?: AbortSignal): Promise<number> {
    const delay = backoffDelay(this.attempt++, this.backoff);
    await sleep(delay, signal);
    return delay;
  }
}

export interface RetryOptions {
  /** What is being done, for the log line ("reading vm_sync.changes failed; retrying"). */
  what: string;
  /** True when `err` is worth another attempt. */
  classify: (err: unknown) => boolean;
  backoff?: Backoff;
  /** Aborting stops the retries: the last error is thrown. */
  signal?: AbortSignal;
  logger?: Logger;
  maxAttempts?: number;
  /** Called before each retry's wait (metrics). */
  onRetry?: (err: unknown, attempt: number) => void;
}

/**
 * Runs `fn` until it succeeds, retrying only what `classify` accepts, with capped, jittered backoff.
 * Anything else is rethrown at once with its context intact.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const last = options.maxAttempts !== undefined && attempt + 1 >= options.maxAttempts;
      if (last || options.signal?.aborted || !options.classify(err)) throw err;
      options.onRetry?.(err, attempt);
      const delay = backoffDelay(attempt, options.backoff);
      // Transient by the caller's word: one line at info, no stack (the stack says nothing new).
      options.logger?.info({ err: brief(err), attempt, delayMs: delay }, `${options.what} failed; retrying`);
      await sleep(delay, options.signal);
      if (options.signal?.aborted) throw err;
    }
  }
}

/**
 * `promise`, or `onTimeout()`'s error once `ms` have passed (the promise itself is left to settle:
 * `onTimeout` is where the caller cuts what it was waiting for).
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
