// The leader's PostgreSQL sessions. Every write goes through the writer session, and every write
// function starts with vm_sync.fence() (sql/080_leader.sql): only the session recorded in the lease,
// while the lease is current, can write. The lease is renewed on a heartbeat session of its own, so
// a renewal never queues behind a long write.
//
// The leader API: acquire() (campaign), renew() (heartbeat), resign(), and lost / onLost() (the
// session can no longer be trusted: the term ends).
import type pg from 'pg';
import { connectClient } from '../pg/connect.js';
import { classifyDbError, isNotLeader, SessionLostError } from '../pg/errors.js';
import type { Logger } from '../lib/log.js';
import { withTimeout } from '../lib/retry.js';
import { combineSummaries, toJsonb, type Checkpoint, type WatchEvent, type WatcherReject } from './events.js';
import type { Kind } from './kube-client.js';

export interface WatchStateRow {
  kind: Kind;
  scope: string;
  resourceVersion: string | null;
}

/** Session settings of the watcher, whatever the server's or the role's defaults. */
export interface SessionTimeouts {
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
}

/** Past its statement_timeout, a call is given this long to answer before its session is given up. */
const ANSWER_MARGIN_MS = 10_000;
/** The heartbeat's statements are tiny; a renewal slower than this means the database is not there. */
const HEARTBEAT_STATEMENT_MS = 5_000;

export class LeaderSession {
  private chain: Promise<unknown> = Promise.resolve();
  private lostError: SessionLostError | null = null;
  private readonly lostListeners = new Set<(err: SessionLostError) => void>();
  private term: string | null = null;

  private constructor(
    private readonly client: pg.Client,
    private readonly beat: pg.Client,
    private readonly timeouts: SessionTimeouts,
    private readonly logger: Logger,
  ) {
    for (const c of [client, beat]) {
      c.on('error', (err) => this.markLost(new SessionLostError('database session failed', { cause: err })));
      c.on('end', () => this.markLost(new SessionLostError('database session ended')));
    }
  }

  static async open(databaseUrl: string, holder: string, timeouts: SessionTimeouts, logger: Logger): Promise<LeaderSession> {
    const name = `ssvirt-vm-sync leader ${holder}`.slice(0, 55);
    const client = await connectClient(databaseUrl, name);
    let beat: pg.Client;
    try {
      beat = await connectClient(databaseUrl, `${name} beat`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    try {
      await configure(client, timeouts.statementTimeoutMs, timeouts, logger);
      await configure(beat, Math.min(HEARTBEAT_STATEMENT_MS, timeouts.statementTimeoutMs), timeouts, logger);
    } catch (err) {
      await Promise.all([client.end().catch(() => undefined), beat.end().catch(() => undefined)]);
      throw err;
    }
    return new LeaderSession(client, beat, timeouts, logger);
  }

  get lost(): SessionLostError | null {
    return this.lostError;
  }

  /** Calls `fn` once, when the session is lost (at once if it already is). */
  onLost(fn: (err: SessionLostError) => void): () => void {
    if (this.lostError) {
      fn(this.lostError);
      return () => undefined;
    }
    this.lostListeners.add(fn);
    return () => this.lostListeners.delete(fn);
  }

  markLost(err: SessionLostError): void {
    if (this.lostError) return;
    this.lostError = err;
    this.logger.warn({ err: err.cause ?? err }, err.message);
    for (const fn of this.lostListeners) fn(err);
    this.lostListeners.clear();
    // A session we gave up on must not linger as the leader's; a hung socket is cut outright.
    for (const c of [this.client, this.beat]) {
      c.end().catch(() => undefined);
      const raw = c as unknown as { connection?: { stream?: { destroy(): void } } };
      setTimeout(() => raw.connection?.stream?.destroy(), 1000).unref();
    }
  }

  /**
   * Runs `fn` alone on the writer session (callers are serialised), bounded by the session's
   * statement_timeout plus a margin: a call that does not answer by then means a hung session. A
   * connection-level error or VS001 marks the session lost.
   */
  run<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const limitMs = this.timeouts.statementTimeoutMs + ANSWER_MARGIN_MS;
    const next = this.chain.then(async () => {
      if (this.lostError) throw this.lostError;
      try {
        return await withTimeout(fn(this.client), limitMs, () => {
          const err = new SessionLostError(`the database did not answer in ${limitMs} ms`);
          this.markLost(err);
          return err;
        });
      } catch (err) {
        if (classifyDbError(err) === 'session') {
          this.markLost(new SessionLostError(isNotLeader(err) ? 'this session is no longer the leader' : 'database session lost', { cause: err }));
          throw this.lostError;
        }
        throw err;
      }
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Campaigns: the term when this session leads (or just took the lease), else null. */
  async acquire(holder: string): Promise<string | null> {
    const r = await this.run((c) => c.query<{ term: string | null }>('select vm_sync.try_lead($1)::text as term', [holder]));
    this.term = r.rows[0]?.term ?? null;
    return this.term;
  }

  /** Records which watches are down (kind/scope) and for how long, for `status` (sql/085_watch_health.sql). */
  async reportWatches(down: string[], downSeconds: number): Promise<void> {
    await this.run((c) => c.query('select vm_sync.report_watches($1::text[], $2)', [down, downSeconds]));
  }

  /** The heartbeat: extends the lease on the heartbeat session; VS001 (taken over, expired) marks the session lost. */
  async renew(): Promise<void> {
    if (this.lostError) throw this.lostError;
    if (this.term === null) throw new SessionLostError('renew before acquire');
    try {
      await this.beat.query('select vm_sync.renew_lease($1::bigint)', [this.term]);
    } catch (err) {
      if (classifyDbError(err) === 'session') {
        this.markLost(new SessionLostError(isNotLeader(err) ? 'the lease was lost' : 'heartbeat session lost', { cause: err }));
        throw this.lostError;
      }
      throw err;
    }
  }

  /**
   * One batch and its checkpoints. Rejects the watcher decided (the events' own, and `rejects`)
   * are recorded in the same transaction; the summary then counts them too.
   */
  async applyBatch(events: WatchEvent[], checkpoints: Checkpoint[], merge = true, rejects: WatcherReject[] = []): Promise<Record<string, unknown>> {
    const all = [...rejects];
    for (const e of events) if (e.reject) all.push(e.reject);
    const payload = toJsonb(events.map((e) => ({ type: e.type, object: e.object })));
    const apply = (c: pg.Client) =>
      c.query<{ summary: Record<string, unknown> }>('select vm_sync.apply_batch($1::jsonb, $2::jsonb, $3) as summary', [payload, toJsonb(checkpoints), merge]);
    if (!all.length) {
      const r = await this.run(apply);
      return r.rows[0]?.summary ?? {};
    }
    // Both in one transaction: the rejects are recorded with the batch that carried them, or not at all.
    return this.run(async (c) => {
      await c.query('begin');
      try {
        const applied = (await apply(c)).rows[0]?.summary ?? {};
        const recorded = (await c.query<{ summary: Record<string, unknown> }>('select vm_sync.record_rejects($1::jsonb) as summary', [toJsonb(all)])).rows[0]?.summary ?? {};
        await c.query('commit');
        return combineSummaries(applied, { rejected: recorded.rejected, field_updates: recorded.field_rejects, rejected_objects: recorded.rejected_objects });
      } catch (err) {
        await c.query('rollback').catch(() => undefined);
        throw err;
      }
    });
  }

  /** After a full list: marks what the list no longer has as deleted, then saves the list's position (fenced). */
  async finishList(kind: Kind, scope: string, presentUids: string[], resourceVersion: string, merge: boolean): Promise<unknown> {
    const r = await this.run((c) =>
      c.query<{ summary: unknown }>('select vm_sync.finish_list($1, $2, $3::text[], $4, $5) as summary', [kind, scope, presentUids, resourceVersion, merge]),
    );
    return r.rows[0]?.summary;
  }

  /** Re-merges everything staged (fenced); the summary carries field_updates for the seed's metrics. */
  async reconcile(): Promise<{ changed: number; fieldUpdates: unknown }> {
    const r = await this.run((c) => c.query<{ summary: { vms_updated?: number; field_updates?: unknown } }>('select vm_sync.leader_reconcile() as summary'));
    const summary = r.rows[0]?.summary ?? {};
    return { changed: Number(summary.vms_updated ?? 0), fieldUpdates: summary.field_updates };
  }

  /** Records whether an optional API group is served (vm_sync.api_status), for `status` (fenced in SQL). */
  async recordApi(group: string, version: string | null, available: boolean): Promise<void> {
    await this.run((c) => c.query('select vm_sync.record_api($1, $2, $3)', [group, version, available]));
  }

  /** Progress of full lists, for `status` (vm_sync.save_list_progress, fenced in SQL). */
  async saveListProgress(rows: readonly unknown[]): Promise<void> {
    await this.run((c) => c.query('select vm_sync.save_list_progress($1::jsonb)', [JSON.stringify(rows)]));
  }

  /** True when vm_sync.snapshots was emptied (TRUNCATE) after the saved checkpoints (sql/080_leader.sql). */
  async stagingLost(): Promise<boolean> {
    const r = await this.run((c) => c.query<{ lost: boolean }>('select vm_sync.staging_lost() as lost'));
    return r.rows[0]?.lost === true;
  }

  async readWatchState(): Promise<WatchStateRow[]> {
    const r = await this.run((c) =>
      c.query<{ kind: Kind; scope: string; resource_version: string | null }>('select kind, scope, resource_version from vm_sync.checkpoints()'),
    );
    return r.rows.map((row) => ({ kind: row.kind, scope: row.scope, resourceVersion: row.resource_version }));
  }

  /** Ends the lease (when asked and still held) and closes both sessions; best effort, bounded by `timeoutMs`. */
  async close(options: { resign: boolean; timeoutMs: number }): Promise<void> {
    if (options.resign && !this.lostError) {
      const resign = this.run((c) => c.query('select vm_sync.resign()')).catch((err) => this.logger.warn({ err }, 'resign failed'));
      await Promise.race([resign, new Promise((r) => setTimeout(r, options.timeoutMs).unref())]);
    }
    this.lostListeners.clear();
    if (!this.lostError) this.lostError = new SessionLostError('session closed');
    const ends = Promise.all([this.client.end().catch(() => undefined), this.beat.end().catch(() => undefined)]);
    await Promise.race([ends, new Promise((r) => setTimeout(r, options.timeoutMs).unref())]);
  }
}

async function configure(client: pg.Client, statementTimeoutMs: number, t: SessionTimeouts, logger: Logger): Promise<void> {
  // The watcher's own limits: a server-wide statement_timeout meant for interactive users must not
  // stop its batches, and none of its sessions may sit in a transaction or behind a lock for ever.
  await client.query(
    `select set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false),
            set_config('idle_in_transaction_session_timeout', $3, false)`,
    [`${statementTimeoutMs}ms`, `${t.lockTimeoutMs}ms`, `${t.idleInTransactionTimeoutMs}ms`],
  );
  try {
    // Server-side keepalives: if this host vanishes without closing the socket, the server drops
    // the session (and with it the leader's backend) in seconds rather than after the kernel's two hours.
    await client.query(`set tcp_keepalives_idle = 5; set tcp_keepalives_interval = 2; set tcp_keepalives_count = 3`);
  } catch (err) {
    logger.debug({ err }, 'tcp keepalive settings not applied');
  }
}
