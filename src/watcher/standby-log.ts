// A standby says that it stands by, and for whom: the holder of the lease, as vm_sync.current_leader()
// reports it (sql/080_leader.sql). Logged when that changes and every few minutes while it does not;
// read on the probe pool, never the leader session.
import type pg from 'pg';
import type { RunConfig } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import { sleep } from '../lib/retry.js';

const REPEAT_MS = 300_000;

export interface LeaderSeen {
  holder: string | null;
  pid: number | null;
}

/** The leader of this database: the lease's holder while its session is connected with a current lease. */
export async function whoLeads(pool: pg.Pool): Promise<LeaderSeen> {
  const r = await pool.query<{ holder: string | null; pid: number | null; connected: boolean }>('select holder, pid, connected from vm_sync.current_leader()');
  const row = r.rows[0];
  return row?.connected ? { holder: row.holder, pid: row.pid } : { holder: null, pid: null };
}

export async function standbyLog(pool: pg.Pool, role: () => string, config: Readonly<RunConfig>, logger: Logger, signal: AbortSignal): Promise<void> {
  let last: string | null = null;
  let lastAt = 0;
  const periodMs = Math.max(1000, config.leaderPollMs * 2);
  while (!signal.aborted) {
    await sleep(periodMs, signal);
    if (signal.aborted) return;
    const r = role();
    if (r !== 'standby' && r !== 'aside') {
      last = null;
      continue;
    }
    try {
      const seen = await whoLeads(pool);
      const key = `${r} ${seen.holder} ${seen.pid}`;
      if (key === last && Date.now() - lastAt < REPEAT_MS) continue;
      last = key;
      lastAt = Date.now();
      if (r === 'aside') logger.info({ leader: seen.holder, leaderPid: seen.pid }, 'standing aside after a step-down; the leader is');
      else if (seen.holder) logger.info({ leader: seen.holder, leaderPid: seen.pid }, 'standing by; waiting for the leader to go');
      else logger.info('standing by; no leader holds the lease yet');
    } catch (err) {
      logger.debug({ err }, 'cannot read who leads');
    }
  }
}
