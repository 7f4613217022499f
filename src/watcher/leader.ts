// Leader election in the database: campaign with vm_sync.try_lead() every poll interval (a lease,
// sql/080_leader.sql); lead on that session until it is lost or the process stops; then start over
// with a new session. The leader renews its lease every poll interval on a heartbeat session of its
// own (never queued behind a write), so a session that hangs, not only one that errors, ends the
// term within a few seconds, and an expired lease lets a standby take over.
import { Pacer, sleep, withTimeout, type Backoff } from '../lib/retry.js';
import type { Logger } from '../lib/log.js';
import { brief } from '../lib/operator-error.js';
import { SessionLostError } from '../pg/errors.js';
import type { Metrics } from './metrics.js';
import { LeaderSession, type SessionTimeouts } from './leader-session.js';

export interface LeaderOptions {
  databaseUrl: string;
  holder: string;
  pollMs: number;
  backoff: Backoff;
  timeouts: SessionTimeouts;
  /** Longest wait for resign/close at the end. */
  closeTimeoutMs: number;
  logger: Logger;
  metrics?: Metrics;
  /** A misconfiguration (operator-error.ts): ends run() with it instead of campaigning again. */
  isPermanent?: (err: unknown) => boolean;
}

export type Role = 'starting' | 'standby' | 'leader' | 'stopping';

/** Runs one term; resolves when `signal` aborts, rejects when the term fails. */
export type TermRunner = (session: LeaderSession, term: string, signal: AbortSignal) => Promise<void>;

export class LeaderElector {
  role: Role = 'starting';
  term: string | null = null;
  /** Time of the last answered try_lead / assert_leader: /readyz of a standby whose session hangs. */
  lastDbOkAt = 0;

  constructor(private readonly options: LeaderOptions) {}

  /** Campaigns, leads, and campaigns again, until `signal` aborts. */
  async run(onElected: TermRunner, signal: AbortSignal): Promise<void> {
    const { logger, backoff } = this.options;
    const pacer = new Pacer(backoff);
    while (!signal.aborted) {
      let session: LeaderSession;
      try {
        session = await LeaderSession.open(this.options.databaseUrl, this.options.holder, this.options.timeouts, logger);
      } catch (err) {
        this.options.metrics?.dbErrors.inc({ op: 'connect' });
        if (this.options.isPermanent?.(err) && !signal.aborted) throw err;
        logger.info({ err: brief(err), attempt: pacer.attempts }, 'cannot open the leader session; retrying');
        await pacer.wait(signal);
        continue;
      }
      const failed = await this.useSession(session, onElected, signal);
      if (signal.aborted) break;
      if (failed) await pacer.wait(signal);
      else pacer.reset();
    }
    this.role = 'stopping';
  }

  /** Campaigns (and leads) on one session. Returns true when it ended in a failure. */
  private async useSession(session: LeaderSession, onElected: TermRunner, signal: AbortSignal): Promise<boolean> {
    const { logger, metrics, pollMs, holder, closeTimeoutMs } = this.options;
    let failed = false;
    try {
      this.role = 'standby';
      while (!signal.aborted && !session.lost) {
        const term = await this.bounded(session, session.acquire(holder), 'try_lead');
        this.lastDbOkAt = Date.now();
        if (term === null) {
          await sleep(pollMs, signal);
          continue;
        }
        await this.lead(session, term, onElected, signal);
        // A term ends for shutdown, or because its session is gone or its writes failed for good.
        if (!signal.aborted) {
          failed = true;
          break;
        }
      }
    } catch (err) {
      if (!signal.aborted) {
        failed = true;
        metrics?.dbErrors.inc({ op: 'leader_session' });
        if (this.options.isPermanent?.(err)) throw err;
        logger.warn({ err: brief(err) }, 'leader session failed');
      }
    } finally {
      this.role = signal.aborted ? 'stopping' : 'standby';
      // Resigning matters only when the session may still hold the lock.
      await session.close({ resign: !session.lost, timeoutMs: closeTimeoutMs });
    }
    return failed;
  }

  private async lead(session: LeaderSession, term: string, onElected: TermRunner, signal: AbortSignal): Promise<void> {
    const { logger, metrics, pollMs } = this.options;
    const termAbort = new AbortController();
    const stop = (): void => termAbort.abort();
    signal.addEventListener('abort', stop, { once: true });
    const unsubscribe = session.onLost(stop);
    this.role = 'leader';
    this.term = term;
    metrics?.isLeader.set(1);
    metrics?.leaderTransitions.inc({ direction: 'gained' });
    logger.info({ term, holder: this.options.holder }, 'leading');
    const heartbeat = (async () => {
      while (!termAbort.signal.aborted) {
        await sleep(pollMs, termAbort.signal);
        if (termAbort.signal.aborted) break;
        try {
          await this.bounded(session, session.renew(), 'renew_lease');
          this.lastDbOkAt = Date.now();
        } catch {
          break; // the session is marked lost; onLost ends the term
        }
      }
    })();
    try {
      await onElected(session, term, termAbort.signal);
    } catch (err) {
      if (!signal.aborted && this.options.isPermanent?.(err)) throw err;
      if (!signal.aborted) logger.error({ err }, 'term ended by an error');
    } finally {
      termAbort.abort();
      signal.removeEventListener('abort', stop);
      unsubscribe();
      await heartbeat;
      this.term = null;
      metrics?.isLeader.set(0);
      metrics?.leaderTransitions.inc({ direction: 'lost' });
      logger.info({ term, shutdown: signal.aborted, sessionLost: session.lost?.message ?? null }, 'no longer leading');
    }
  }

  /**
   * A session call that does not answer in time is treated as a lost session. Generous, for a loaded
   * machine; a dead peer is caught sooner by TCP keepalives.
   */
  private async bounded<T>(session: LeaderSession, promise: Promise<T>, what: string): Promise<T> {
    const limitMs = Math.max(15_000, this.options.pollMs * 5);
    return withTimeout(promise, limitMs, () => {
      const err = new SessionLostError(`${what} did not answer in ${limitMs} ms`);
      session.markLost(err);
      return err;
    });
  }
}
