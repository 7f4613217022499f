// The leader's dedicated PostgreSQL session. The advisory lock lives on it and every write goes
// through it, so the lock is the fence: once the session is gone, nothing more can be written.
import type pg from 'pg';
import { connectClient } from '../pg/connect.js';
import { classifyDbError, isNotLeader, SessionLostError } from '../pg/errors.js';
import type { Logger } from '../lib/log.js';
import { toJsonb, type Checkpoint, type WatchEvent } from './events.js';
import type { Kind } from './kube-client.js';

export interface WatchStateRow {
  kind: Kind;
  scope: string;
  resourceVersion: string | null;
}

export class LeaderSession {
  private chain: Promise<unknown> = Promise.resolve();
  private lostError: SessionLostError | null = null;
  private readonly lostListeners = new Set<(err: SessionLostError) => void>();

  private constructor(
    private readonly client: pg.Client,
    private readonly logger: Logger,
  ) {
    client.on('error', (err) => this.markLost(new SessionLostError('database session failed', { cause: err })));
    client.on('end', () => this.markLost(new SessionLostError('database session ended')));
  }

  static async open(databaseUrl: string, holder: string, logger: Logger): Promise<LeaderSession> {
    const client = await connectClient(databaseUrl, `ssvirt-vm-sync leader ${holder}`.slice(0, 63));
    try {
      // Server-side keepalives: if this host vanishes without closing the socket, the server drops
      // the session (and with it the lock) in seconds rather than after the kernel's two hours.
      await client.query(`set tcp_keepalives_idle = 5; set tcp_keepalives_interval = 2; set tcp_keepalives_count = 3`);
    } catch (err) {
      logger.debug({ err }, 'tcp keepalive settings not applied');
    }
    return new LeaderSession(client, logger);
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
    // A session we gave up on must not linger holding the lock; a hung socket is cut outright.
    this.client.end().catch(() => undefined);
    const raw = this.client as unknown as { connection?: { stream?: { destroy(): void } } };
    setTimeout(() => raw.connection?.stream?.destroy(), 1000).unref();
  }

  /**
   * Runs `fn` alone on the session (callers are serialised, so a transaction is never interleaved
   * with another caller's statement). A connection-level error or VS001 marks the session lost.
   */
  run<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const next = this.chain.then(async () => {
      if (this.lostError) throw this.lostError;
      try {
        return await fn(this.client);
      } catch (err) {
        if (classifyDbError(err) === 'session') {
          this.markLost(new SessionLostError(isNotLeader(err) ? 'this session no longer holds the leader lock' : 'database session lost', { cause: err }));
          throw this.lostError;
        }
        throw err;
      }
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Runs `fn` in a transaction that first proves this session still leads. */
  transaction<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    return this.run(async (client) => {
      await client.query('begin');
      try {
        await client.query('select vm_sync.assert_leader()');
        const result = await fn(client);
        await client.query('commit');
        return result;
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      }
    });
  }

  /** The term when this session leads (or just took the lead), else null. */
  async tryLead(holder: string): Promise<string | null> {
    const r = await this.run((c) => c.query<{ term: string | null }>('select vm_sync.try_lead($1)::text as term', [holder]));
    return r.rows[0]?.term ?? null;
  }

  /** Records which watches are down (kind/scope) and for how long, for `status` (sql/085_watch_health.sql). */
  async reportWatches(down: string[], downSeconds: number): Promise<void> {
    await this.run((c) => c.query('select vm_sync.report_watches($1::text[], $2)', [down, downSeconds]));
  }

  async assertLeader(): Promise<void> {
    await this.run((c) => c.query('select vm_sync.assert_leader()'));
  }

  async applyBatch(events: WatchEvent[], checkpoints: Checkpoint[], merge = true): Promise<Record<string, unknown>> {
    const r = await this.run((c) =>
      c.query<{ summary: Record<string, unknown> }>('select vm_sync.apply_batch($1::jsonb, $2::jsonb, $3) as summary', [
        toJsonb(events),
        toJsonb(checkpoints),
        merge,
      ]),
    );
    return r.rows[0]?.summary ?? {};
  }

  /** After a full list: marks what the list no longer has as deleted, then saves the list's position. */
  async finishList(kind: Kind, scope: string, presentUids: string[], resourceVersion: string, merge: boolean): Promise<unknown> {
    return this.transaction(async (c) => {
      const r = await c.query<{ summary: unknown }>('select vm_sync.sweep($1, $2::text[], $3::text[], $4) as summary', [
        kind,
        scope ? [scope] : null,
        presentUids,
        merge,
      ]);
      await c.query('select vm_sync.save_checkpoints($1::jsonb)', [toJsonb([{ kind, scope, resourceVersion }])]);
      return r.rows[0]?.summary;
    });
  }

  /** Re-merges everything staged; the summary carries field_updates for the seed's metrics. */
  async reconcile(): Promise<{ changed: number; fieldUpdates: unknown }> {
    return this.transaction(async (c) => {
      const r = await c.query<{ summary: { vms_updated?: number; field_updates?: unknown } }>(
        'select vm_sync.reconcile_summary() as summary',
      );
      const summary = r.rows[0]?.summary ?? {};
      return { changed: Number(summary.vms_updated ?? 0), fieldUpdates: summary.field_updates };
    });
  }

  /** Records whether an optional API group is served (vm_sync.api_status), for `status`. */
  async recordApi(group: string, version: string | null, available: boolean): Promise<void> {
    await this.transaction((c) => c.query('select vm_sync.record_api($1, $2, $3)', [group, version, available]));
  }

  async readWatchState(): Promise<WatchStateRow[]> {
    const r = await this.run((c) =>
      c.query<{ kind: Kind; scope: string; resource_version: string | null }>('select kind, scope, resource_version from vm_sync.checkpoints()'),
    );
    return r.rows.map((row) => ({ kind: row.kind, scope: row.scope, resourceVersion: row.resource_version }));
  }

  /** Releases the lock and closes the session; best effort, bounded by `timeoutMs`. */
  async close(options: { resign: boolean; timeoutMs: number }): Promise<void> {
    if (options.resign && !this.lostError) {
      const resign = this.run((c) => c.query('select vm_sync.resign()')).catch((err) => this.logger.warn({ err }, 'resign failed'));
      await Promise.race([resign, new Promise((r) => setTimeout(r, options.timeoutMs).unref())]);
    }
    this.lostListeners.clear();
    if (!this.lostError) this.lostError = new SessionLostError('session closed');
    await Promise.race([this.client.end().catch(() => undefined), new Promise((r) => setTimeout(r, options.timeoutMs).unref())]);
  }
}
