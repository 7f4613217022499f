// A standby says that it stands by, and for whom: the session holding the leader's advisory lock
// (its application_name carries the holder, see leader-session.ts). Logged when that changes and
// every few minutes while it does not; read on the probe pool, never the leader session.
import type pg from 'pg';
import type { RunConfig } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import { sleep } from '../lib/retry.js';

const LEADER_APP_PREFIX = 'ssvirt-vm-sync leader ';
const REPEAT_MS = 300_000;

export interface LeaderSeen {
  holder: string | null;
  pid: number | null;
}

/** The session leading in this database, as far as pg_locks and pg_stat_activity show it. */
export async function whoLeads(pool: pg.Pool): Promise<LeaderSeen> {
  const r = await pool.query<{ application_name: string; pid: number }>(
    `select a.application_name, a.pid
       from pg_catalog.pg_locks k
       join pg_catalog.pg_stat_activity a on a.pid = k.pid
      where k.locktype = 'advisory' and k.granted
        and k.database = (select oid from pg_catalog.pg_database where datname = current_database())
        and a.application_name like $1 and a.pid <> pg_backend_pid()
      order by a.backend_start limit 1`,
    [`${LEADER_APP_PREFIX}%`],
  );
  const row = r.rows[0];
  return row ? { holder: row.application_name.slice(LEADER_APP_PREFIX.length), pid: row.pid } : { holder: null, pid: null };
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
      else logger.info('standing by; no leader holds the lock yet');
    } catch (err) {
      logger.debug({ err }, 'cannot read who leads');
    }
  }
}
