// Connections to PostgreSQL and the one rule for retrying: only what a retry can fix.
import pg from 'pg';
import type { Logger } from '../lib/log.js';

export type Pool = pg.Pool;
export type Client = pg.Client;

/** SQLSTATEs worth a retry: serialization failure, deadlock, server starting up / shutting down. */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01', '57P01', '57P02', '57P03', '53300', '08000', '08003', '08006', '08001', '08004']);
/** Socket-level failures: the server went away or is not there yet. */
const RETRYABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

export function isRetryable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (RETRYABLE_SQLSTATES.has(code) || RETRYABLE_NODE_CODES.has(code))) return true;
  const message = String((err as { message?: unknown }).message ?? '');
  return /Connection terminated|connection timeout|Client has encountered a connection error|terminating connection|the database system is (starting up|shutting down)|Client was closed/i.test(
    message,
  );
}

export interface Backoff {
  /** First delay in milliseconds. */
  initialMs: number;
  /** Largest delay in milliseconds. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 200, maxMs: 10_000 };

/** Full-jitter exponential backoff: a random delay in [0, min(max, initial * 2^attempt)]. */
export function backoffDelay(attempt: number, backoff: Backoff = DEFAULT_BACKOFF): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(backoff.initialMs / 2 + Math.random() * (ceiling - backoff.initialMs / 2));
}

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
 * Runs `fn` until it succeeds, retrying only retryable errors with capped, jittered backoff.
 * Anything else is rethrown at once with its context intact.
 */
export async function withRetry<T>(
  what: string,
  fn: () => Promise<T>,
  options: { logger?: Logger; signal?: AbortSignal; backoff?: Backoff; maxAttempts?: number } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const last = options.maxAttempts !== undefined && attempt + 1 >= options.maxAttempts;
      if (!isRetryable(err) || last || options.signal?.aborted) throw err;
      const delay = backoffDelay(attempt, options.backoff);
      options.logger?.warn({ err, attempt, delayMs: delay }, `${what} failed; retrying`);
      await sleep(delay, options.signal);
    }
  }
}

export function createPool(databaseUrl: string, options: { applicationName: string; max?: number }): Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    application_name: options.applicationName,
    max: options.max ?? 4,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener that kills the process.
  pool.on('error', () => undefined);
  return pool;
}

export async function connectClient(databaseUrl: string, applicationName: string): Promise<Client> {
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  await client.connect();
  return client;
}
