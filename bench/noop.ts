// Section 5: what doing nothing costs. Everything is ingested once, then the very same events are
// replayed: no vms row may be written and no notification sent. Then vm_sync.reconcile() runs
// over an unchanged database, which is what the watcher's periodic safety net costs.
import type pg from 'pg';
import { coldStartEvents } from './fixtures.js';
import { runSetBased } from './ingest.js';
import { connect, createBenchDatabase, filledRows, seedVmsRows } from './pg.js';

export interface NoopResult {
  vms: number;
  events: number;
  batchSize: number;
  firstPassEventsPerSec: number;
  replay: {
    seconds: number;
    eventsPerSec: number;
    /** vms rows whose xmin moved during the replay. */
    rowsWritten: number;
    /** Rows appended to vm_sync.changes during the replay. */
    changesAppended: number;
    /** vm_changed notifications a separate LISTEN connection received for the replay. */
    notifications: number;
  };
  /** One vm_sync.reconcile() with nothing to change: each run's seconds (null: hit the timeout), and rows it changed. */
  reconcileSeconds: (number | null)[];
  reconcileTimeoutSeconds: number;
  reconcileRowsChanged: number[];
}

/** A LISTEN connection that counts vm_changed notifications; a sentinel marks "everything before is in". */
export class ChangeListener {
  count = 0;
  private waiters = new Map<string, () => void>();
  private constructor(private readonly client: pg.Client) {
    client.on('notification', (msg) => {
      const payload = msg.payload ?? '';
      if (payload.startsWith('{"bench_sentinel"')) {
        const token = (JSON.parse(payload) as { bench_sentinel: string }).bench_sentinel;
        this.waiters.get(token)?.();
        return;
      }
      this.count++;
    });
  }

  static async open(url: string): Promise<ChangeListener> {
    const client = await connect(url, 'ssvirt-vm-sync bench listener');
    await client.query('listen vm_changed');
    return new ChangeListener(client);
  }

  /**
   * Sends a sentinel notification from `sender` and resolves when it arrives. Notifications are
   * delivered in commit order, so by then every earlier one has been counted: no sleeping.
   */
  async drain(sender: pg.Client): Promise<void> {
    const token = Math.random().toString(36).slice(2);
    const arrived = new Promise<void>((resolve) => this.waiters.set(token, resolve));
    await sender.query('select pg_notify($1, $2)', ['vm_changed', JSON.stringify({ bench_sentinel: token })]);
    await arrived;
    this.waiters.delete(token);
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

async function scalar(client: pg.Client, sql: string): Promise<number> {
  const r = await client.query<{ n: string }>(sql);
  return Number(r.rows[0]!.n);
}

export async function benchNoop(
  vms: number,
  opts: { batchSize?: number; reconcileRuns?: number; reconcileTimeoutMs?: number } = {},
): Promise<NoopResult> {
  const timeoutMs = opts.reconcileTimeoutMs ?? 120_000;
  const batchSize = opts.batchSize ?? 500;
  const events = coldStartEvents(vms);
  const db = await createBenchDatabase(`noop_${vms}`);
  const client = await connect(db.url);
  let listener: ChangeListener | undefined;
  try {
    await seedVmsRows(client, vms);
    const first = await runSetBased(client, events, batchSize);
    if ((await filledRows(client)) !== vms) throw new Error('no-op bench: the first pass did not fill every vms row');
    await client.query('vacuum (analyze) public.vms');

    listener = await ChangeListener.open(db.url);
    await client.query('create temp table bench_before as select id, xmin::text as x from public.vms');
    const changesBefore = await scalar(client, 'select count(*) as n from vm_sync.changes');
    const replay = await runSetBased(client, events, batchSize);
    await listener.drain(client);
    const rowsWritten = await scalar(
      client,
      'select count(*) as n from public.vms v join bench_before b using (id) where v.xmin::text <> b.x',
    );
    const changesAppended = (await scalar(client, 'select count(*) as n from vm_sync.changes')) - changesBefore;
    const notifications = listener.count;

    const reconcileSeconds: (number | null)[] = [];
    const reconcileRowsChanged: number[] = [];
    // A pathological reconcile must not hold the whole run hostage: it is cut at the timeout and reported so.
    await client.query(`set statement_timeout = ${Math.round(timeoutMs)}`);
    for (let k = 0; k < (opts.reconcileRuns ?? 3); k++) {
      const t0 = performance.now();
      try {
        const r = await client.query<{ n: number }>('select vm_sync.reconcile() as n');
        reconcileSeconds.push((performance.now() - t0) / 1000);
        reconcileRowsChanged.push(Number(r.rows[0]!.n));
      } catch (err) {
        if ((err as { code?: string }).code !== '57014') throw err;
        reconcileSeconds.push(null);
        break;
      }
    }
    await client.query('reset statement_timeout');
    return {
      vms,
      events: events.length,
      batchSize,
      firstPassEventsPerSec: first.eventsPerSec,
      replay: { seconds: replay.seconds, eventsPerSec: replay.eventsPerSec, rowsWritten, changesAppended, notifications },
      reconcileSeconds,
      reconcileTimeoutSeconds: timeoutMs / 1000,
      reconcileRowsChanged,
    };
  } finally {
    await listener?.close();
    await client.end();
    await db.drop();
  }
}
