// Is the database reached through a pooler that hands one client's statements to different server
// sessions (PgBouncer in transaction or statement mode)? The leader's lease names one server session
// (its pid and backend_start, sql/080_leader.sql) and every write is fenced by checking that it runs
// on that session: behind such a pooler the watcher's writes land on whichever server connection is
// free (and fail the fence), while another client's may land on the leader's (and pass it). `run`
// refuses to start there; `doctor` reports it.
//
// Without contention a transaction pooler often gives a client back the server session it had, so
// one client alone proves little. The probe makes contention: client A notes its backend pid and
// sets a session setting; client B opens a transaction (taking a server connection) while A runs
// its second statement. Behind a transaction pooler B gets the server session A just released, or A
// gets another one, or A's setting is gone. With a direct connection or session pooling, A keeps
// its session throughout and B has its own.
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export interface PoolerProbe {
  /** Null when statements of one client stay on one server session; else what was seen. */
  problem: string | null;
  /** The backend pids seen: A's first and second statement, B's transaction (null: timed out). */
  pids: { first: number; second: number | null; other: number | null };
}

const SETTING = 'ssvirt_vm_sync.pooler_probe';

async function timed<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  promise.catch(() => undefined);
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Probes `databaseUrl` with two short-lived clients, a few rounds: other clients of the same pooler
 * (a second replica starting, a doctor run beside it) can hand the prober's server session around so
 * that one round sees nothing, where the next does. Throws only when it cannot connect at all.
 */
export async function probeSessionPooling(databaseUrl: string, options: { timeoutMs?: number; rounds?: number } = {}): Promise<PoolerProbe> {
  const rounds = Math.max(1, options.rounds ?? 5);
  let probe: PoolerProbe | undefined;
  for (let round = 0; round < rounds; round++) {
    probe = await probeOnce(databaseUrl, options.timeoutMs ?? 3000);
    // Found, stuck, or B got no server at all (a full session pool): another round would learn nothing.
    if (probe.problem !== null || probe.pids.second === null || probe.pids.other === null) return probe;
  }
  return probe!;
}

async function probeOnce(databaseUrl: string, timeoutMs: number): Promise<PoolerProbe> {
  const open = async (name: string): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: databaseUrl, application_name: `ssvirt-vm-sync pooler probe ${name}`, connectionTimeoutMillis: 10_000 });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };
  const a = await open('a');
  let b: pg.Client | null = null;
  let openingB: Promise<pg.Client> | null = null;
  try {
    const token = randomUUID();
    const first = await a.query<{ pid: number }>('select pg_backend_pid() as pid, set_config($1, $2, false)', [SETTING, token]);
    const pidFirst = first.rows[0]!.pid;
    // B holds a transaction open while A runs its second statement. A statement-mode pooler
    // refuses the transaction: that is a pooler too. B may wait for a server (a full session
    // pool): then it simply takes no part.
    let pidOther: number | null = null;
    try {
      openingB = open('b');
      b = await timed(openingB, timeoutMs);
      if (b) {
        const began = await timed(b.query('begin').then(() => b!.query<{ pid: number }>('select pg_backend_pid() as pid')), timeoutMs);
        pidOther = began?.rows[0]?.pid ?? null;
      }
    } catch (err) {
      return { problem: `a second client could not open a transaction (${(err as Error).message}): a statement-pooling pooler`, pids: { first: pidFirst, second: null, other: null } };
    }
    const secondQuery = a.query<{ pid: number; setting: string | null }>('select pg_backend_pid() as pid, current_setting($1, true) as setting', [SETTING]);
    // A statement that waits for B's transaction has no session of its own: let B go and look again.
    let second = await timed(secondQuery, timeoutMs);
    if (!second) {
      await b?.query('rollback').catch(() => undefined);
      second = await timed(secondQuery, 30_000);
    }
    const pids = { first: pidFirst, second: second?.rows[0]?.pid ?? null, other: pidOther };
    if (pidOther !== null && pidOther === pidFirst) {
      return { problem: `another client was given server session ${pidFirst} while this client's session was still open: transaction pooling`, pids };
    }
    // Still no answer: the database is stuck, not pooled; nothing is concluded.
    if (!second) return { problem: null, pids };
    if (second.rows[0]!.pid !== pidFirst) {
      return { problem: `two statements of one client ran on server sessions ${pidFirst} and ${second.rows[0]!.pid}: transaction pooling`, pids };
    }
    if (second.rows[0]!.setting !== token) {
      return { problem: 'a session setting did not survive to the next statement: transaction pooling (or a reset between statements)', pids };
    }
    return { problem: null, pids };
  } finally {
    await b?.query('rollback').catch(() => undefined);
    // A B still waiting for a server is closed once it has one.
    if (!b && openingB) openingB.then((c) => c.end(), () => undefined).catch(() => undefined);
    await Promise.all([a.end().catch(() => undefined), b?.end().catch(() => undefined)]);
  }
}

/** The message `run` exits with (status 2) when the probe finds a transaction pooler. */
export function poolerRefusal(problem: string): string {
  return (
    `refusing to start: the database connection goes through a transaction- or statement-pooling pooler (${problem}). ` +
    "The leader's lease names one server session and every write is fenced by running on it, which such a pooler breaks. " +
    'Connect directly to PostgreSQL, or through PgBouncer with pool_mode = session (docs/deployment.md, "PgBouncer and poolers").'
  );
}
