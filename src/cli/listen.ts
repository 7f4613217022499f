// `ssvirt-vm-sync listen`: the change feed as JSON lines, live. A vm_changed notification is only a
// hint that something changed: any role may NOTIFY on any channel, so its payload is never trusted.
// What is printed is always read from vm_sync.change_feed (seq > the last seq printed), in seq order,
// once each, so a forged or malformed notification changes nothing in the output; the backlog
// (--since) and any gap across a reconnect come from the same read.
import pgListen from 'pg-listen';
import type { ListenConfig } from '../lib/config.js';
import { createPool, type Pool } from '../pg/connect.js';
import { isTransient } from '../pg/errors.js';
import { backoffDelay, withRetry, type Backoff } from '../lib/retry.js';
import type { Logger } from '../lib/log.js';

const PAGE = 1000;
const BACKOFF: Backoff = { initialMs: 500, maxMs: 10_000 };

interface ChangeRow {
  seq: string;
  changed_at: Date;
  vm_id: string;
  namespace: string | null;
  vm_name: string | null;
  changes: unknown;
}

/** Prints changes until `signal` aborts. Never gives up on the database: reconnects forever. */
export async function runListen(
  config: Readonly<ListenConfig>,
  options: { logger: Logger; signal: AbortSignal; write?: (line: string) => void },
): Promise<void> {
  const { logger, signal } = options;
  const write = options.write ?? ((line: string) => void process.stdout.write(line + '\n'));
  const reader = createPool(config.databaseUrl, { applicationName: 'ssvirt-vm-sync listen (reads)', max: 1 });
  // Highest seq printed so far; null until the first read says where the feed stands.
  let lastSeq: bigint | null = config.since === null ? null : BigInt(config.since);

  const catchUp = async (): Promise<void> => {
    if (lastSeq === null) lastSeq = await retrying<bigint>(() => readLastSeq(reader));
    for (;;) {
      const after: bigint = lastSeq;
      const rows: ChangeRow[] = await retrying(() => readChanges(reader, after, PAGE));
      for (const row of rows) {
        write(JSON.stringify({ seq: Number(row.seq), id: row.vm_id, namespace: row.namespace, vm_name: row.vm_name, changes: row.changes, changed_at: row.changed_at.toISOString() }));
        lastSeq = BigInt(row.seq);
      }
      if (rows.length < PAGE || signal.aborted) return;
    }
  };
  const retrying = <T>(fn: () => Promise<T>): Promise<T> =>
    withRetry(fn, { what: 'reading vm_sync.change_feed', classify: isTransient, backoff: BACKOFF, logger, signal });

  // Hints coalesce: one read at a time, and one more after it if a hint came in meanwhile.
  let reading: Promise<void> | null = null;
  let hinted = false;
  const hint = (): Promise<void> => {
    hinted = true;
    reading ??= (async () => {
      try {
        while (hinted && !signal.aborted) {
          hinted = false;
          await catchUp();
        }
      } catch (err) {
        if (!signal.aborted) logger.error({ err }, 'reading vm_sync.change_feed failed');
      } finally {
        reading = null;
      }
    })();
    return reading;
  };

  // pg-listen is CommonJS with an `exports.default`: under NodeNext the function sits one level down.
  const subscriber = pgListen.default(
    { connectionString: config.databaseUrl, application_name: 'ssvirt-vm-sync listen' },
    {
      paranoidChecking: 10_000,
      retryLimit: Infinity,
      retryTimeout: Infinity,
      retryInterval: (attempt) => backoffDelay(attempt, BACKOFF),
      // The payload is never read, so never parsed: a malformed one is just another hint.
      parse: (payload: string) => payload,
    },
  );
  subscriber.events.on('error', (err) => logger.warn({ err }, 'listen connection error'));
  subscriber.events.on('reconnect', (attempt) => logger.warn({ attempt }, 'reconnecting to PostgreSQL'));
  // After a reconnect, whatever was notified while we were away is only in the table.
  subscriber.events.on('connected', () => void hint());
  subscriber.notifications.on(config.channel, () => void hint());

  try {
    // "From now" is read before the subscriber connects, so every change committed after listen
    // started is printed (whoever sees the subscriber's session knows that read is done).
    if (lastSeq === null) {
      lastSeq = await retrying<bigint>(() => readLastSeq(reader)).catch((err) => {
        if (!signal.aborted) throw err;
        return null;
      });
      if (signal.aborted) return;
    }
    // Any failure to connect is worth another try: listen never gives up on the database.
    await withRetry(() => subscriber.connect(), { what: 'connecting to PostgreSQL', classify: () => true, backoff: BACKOFF, logger, signal }).catch((err) => {
      if (!signal.aborted) throw err;
    });
    if (signal.aborted) return;
    await subscriber.listenTo(config.channel);
    // Listening before the first read means nothing falls between the two.
    await hint();
    logger.info({ channel: config.channel, since: lastSeq?.toString() ?? null }, 'listening');
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    await subscriber.close().catch(() => undefined);
    await reading;
    await reader.end().catch(() => undefined);
  }
}

async function readLastSeq(pool: Pool): Promise<bigint> {
  const r = await pool.query<{ seq: string }>('select coalesce(max(seq), 0)::text as seq from vm_sync.change_feed');
  return BigInt(r.rows[0]?.seq ?? '0');
}

async function readChanges(pool: Pool, after: bigint, limit: number): Promise<ChangeRow[]> {
  const result = await pool.query<ChangeRow>(
    'select seq, changed_at, vm_id, namespace, vm_name, changes from vm_sync.change_feed where seq > $1 order by seq limit $2',
    [after.toString(), limit],
  );
  return result.rows;
}
