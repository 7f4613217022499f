// `ssvirt-vm-sync listen`: vm_changed notifications as JSON lines. NOTIFY is a hint; vm_sync.changes
// is the record, so the backlog (--since) and any gap across a reconnect are read from the table.
import pgListen from 'pg-listen';
import type { ListenConfig } from '../lib/config.js';
import { connectClient } from '../pg/connect.js';
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

/** Prints notifications until `signal` aborts. Never gives up on the database: reconnects forever. */
export async function runListen(
  config: Readonly<ListenConfig>,
  options: { logger: Logger; signal: AbortSignal; write?: (line: string) => void },
): Promise<void> {
  const { logger, signal } = options;
  const write = options.write ?? ((line: string) => void process.stdout.write(line + '\n'));
  // Highest seq printed so far; a notification at or below it was already printed from the backlog.
  let lastSeq: bigint | null = config.since === null ? null : BigInt(config.since);
  let catchingUp: Promise<void> = Promise.resolve();

  const print = (payload: Record<string, unknown>): void => {
    const seq = seqOf(payload);
    if (seq !== null) {
      if (lastSeq !== null && seq <= lastSeq) return;
      lastSeq = seq;
    }
    write(JSON.stringify(payload));
  };

  const catchUp = async (): Promise<void> => {
    if (lastSeq === null) return;
    for (;;) {
      const rows = await withRetry(() => readChanges(config.databaseUrl, lastSeq!, PAGE), { what: 'reading vm_sync.changes', classify: isTransient, backoff: BACKOFF, logger, signal });
      for (const row of rows) {
        print({ seq: Number(row.seq), id: row.vm_id, namespace: row.namespace, vm_name: row.vm_name, changes: row.changes, changed_at: row.changed_at.toISOString() });
      }
      if (rows.length < PAGE || signal.aborted) return;
    }
  };

  // pg-listen is CommonJS with an `exports.default`: under NodeNext the function sits one level down.
  const subscriber = pgListen.default(
    { connectionString: config.databaseUrl, application_name: 'ssvirt-vm-sync listen' },
    {
      paranoidChecking: 10_000,
      retryLimit: Infinity,
      retryTimeout: Infinity,
      retryInterval: (attempt) => backoffDelay(attempt, BACKOFF),
    },
  );
  subscriber.events.on('error', (err) => logger.warn({ err }, 'listen connection error'));
  subscriber.events.on('reconnect', (attempt) => logger.warn({ attempt }, 'reconnecting to PostgreSQL'));
  // After a reconnect, whatever was notified while we were away is only in the table.
  subscriber.events.on('connected', () => {
    catchingUp = catchingUp.then(catchUp).catch((err) => logger.error({ err }, 'catching up after reconnect failed'));
  });
  subscriber.notifications.on(config.channel, (payload: unknown) => {
    const value = typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>) : { payload };
    // Live notifications wait for a running catch-up, so output stays in seq order.
    catchingUp = catchingUp.then(() => print(value));
  });

  try {
    // Any failure to connect is worth another try: listen never gives up on the database.
    await withRetry(() => subscriber.connect(), { what: 'connecting to PostgreSQL', classify: () => true, backoff: BACKOFF, logger, signal }).catch((err) => {
      if (!signal.aborted) throw err;
    });
    if (signal.aborted) return;
    await subscriber.listenTo(config.channel);
    // Listening before reading the backlog means nothing falls between the two; duplicates are dropped by seq.
    catchingUp = catchingUp.then(catchUp);
    await catchingUp;
    logger.info({ channel: config.channel, since: lastSeq?.toString() ?? null }, 'listening');
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    await subscriber.close().catch(() => undefined);
  }
}

function seqOf(payload: Record<string, unknown>): bigint | null {
  const seq = payload.seq;
  if (typeof seq === 'number' || (typeof seq === 'string' && /^\d+$/.test(seq))) return BigInt(seq);
  return null;
}

async function readChanges(databaseUrl: string, after: bigint, limit: number): Promise<ChangeRow[]> {
  const client = await connectClient(databaseUrl, 'ssvirt-vm-sync listen');
  try {
    const result = await client.query<ChangeRow>(
      'select seq, changed_at, vm_id, namespace, vm_name, changes from vm_sync.change_feed where seq > $1 order by seq limit $2',
      [after.toString(), limit],
    );
    return result.rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}
