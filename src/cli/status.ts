// `ssvirt-vm-sync status`: the sync's health on one screen, read from the database only.
import pg from 'pg';
import { ConfigError, DATABASE_URL_OPTION, optionsHelp, parseOptions, type OptionSpec } from '../lib/config.js';
import { redactUrl } from '../lib/log.js';
import { ago, shortDuration, textTable } from './text-table.js';

export const STATUS_OPTIONS: readonly OptionSpec[] = [
  { ...DATABASE_URL_OPTION, help: 'PostgreSQL connection URL (default: the embedded server of .data/pg, when it runs)' },
  { key: 'json', flag: '--json', env: ['STATUS_JSON'], type: 'bool', default: false, help: 'print one JSON object instead of the screen' },
  { key: 'staleAfter', flag: '--stale-after-seconds', env: ['STATUS_STALE_AFTER_SECONDS'], type: 'int', default: 60, min: 1, help: 'a leader heartbeat older than this is reported as a problem' },
];

const HELP = `usage: ssvirt-vm-sync status [options]

Prints the sync's health, read from the database: the leader (and whether it really holds the lock),
each watch's last resourceVersion and its age, relists, staged objects, vms rows with and without
data, rejects in the last hour, the last batch and the change feed. Exit status: 0 when the status
was read and shows no problem, 3 when it shows a problem, 1 when the database cannot be read.

options:
${optionsHelp(STATUS_OPTIONS)}`;

export interface SyncStatus {
  database: string;
  now: string;
  leader: {
    holder: string | null;
    backendPid: number | null;
    term: number;
    acquiredAt: string | null;
    heartbeatAt: string | null;
    heartbeatAgeSeconds: number | null;
    lastBatchAt: string | null;
    batches: number;
    events: number;
    lockHeld: boolean;
    lockHolderPid: number | null;
    lockHolderApplication: string | null;
    lockHolderAddress: string | null;
    /** Watches the leading term reported not established (kind/scope), and for how long; null when none. */
    watchesDown: { watches: string[]; seconds: number } | null;
  };
  watches: Array<{ kind: string; scope: string; resourceVersion: string | null; updatedAt: string; ageSeconds: number; relists: number; lastRelistAt: string | null }>;
  staged: Array<{ kind: string; live: number; deleted: number }>;
  /** Optional API groups the leader looked for (the instancetype API), as it last found them. */
  apis: Array<{ group: string; version: string | null; available: boolean; checkedAt: string }>;
  vms: {
    live: number;
    managed: number;
    managedWithCpu: number;
    managedWithMemory: number;
    managedWithGuestOs: number;
    managedComplete: number;
    unmanaged: number;
    unmanagedWithData: number;
  };
  rejectsLastHour: { total: number; byReason: Array<{ reason: string; count: number; last: string }> };
  changes: { rows: number; firstSeq: number | null; lastSeq: number | null; lastAt: string | null };
  problems: string[];
}

/** Reads the whole status in one read-only transaction (one consistent snapshot). */
export async function readStatus(databaseUrl: string, staleAfterSeconds = 60): Promise<SyncStatus> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000, application_name: 'ssvirt-vm-sync status' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`begin transaction isolation level repeatable read read only`);
    await client.query(`set local statement_timeout = '10s'`);
    const installed = await client.query<{ ok: boolean }>(`select to_regclass('vm_sync.leader') is not null and to_regclass('vm_sync.watch_state') is not null as ok`);
    if (!installed.rows[0]?.ok) throw new ConfigError(`vm_sync is not installed in ${redactUrl(databaseUrl)}: run \`ssvirt-vm-sync migrate\``);

    const head = await client.query<{ now: Date; db: string }>(`select now() as now, current_database() as db`);
    const now = head.rows[0]!.now;
    const leader = await client.query(`
      select l.holder, l.pid, l.term, l.acquired_at, l.heartbeat_at, w.last_batch_at, w.batches, w.events,
             case when l.watches_term = l.term then l.watches_down end as watches_down,
             extract(epoch from now() - l.watches_down_since)::float8 as watches_down_seconds,
             extract(epoch from now() - l.heartbeat_at)::float8 as heartbeat_age,
             a.pid as lock_pid, a.application_name, host(a.client_addr) as client_addr
        from vm_sync.leader l
        cross join vm_sync.writer w
        -- The lease is held when it is current and the recorded writer session is connected.
        left join pg_catalog.pg_stat_activity a
          on a.pid = l.pid and a.datname = current_database() and l.lease_expires_at > clock_timestamp()
       where l.id = 1`);
    const watches = await client.query(`
      select kind, scope, resource_version, updated_at, extract(epoch from now() - updated_at)::float8 as age,
             relists, last_relist_at
        from vm_sync.watch_state order by kind, scope`);
    const staged = await client.query(`
      select kind, count(*) filter (where not deleted)::int as live, count(*) filter (where deleted)::int as deleted
        from vm_sync.snapshots group by kind order by kind`);
    const vms = await client.query(`
      with v as (
        select v.cpu_count, v.memory_mb, v.guest_os,
               exists (select 1 from vm_sync.snapshots s where s.namespace = v.namespace and s.vm_name = v.vm_name) as managed
          from public.vms v where v.deleted_at is null)
      select count(*)::int as live,
             count(*) filter (where managed)::int as managed,
             count(*) filter (where managed and cpu_count is not null)::int as cpu,
             count(*) filter (where managed and memory_mb is not null)::int as memory,
             count(*) filter (where managed and guest_os is not null)::int as guest_os,
             count(*) filter (where managed and cpu_count is not null and memory_mb is not null and guest_os is not null)::int as complete,
             count(*) filter (where not managed)::int as unmanaged,
             count(*) filter (where not managed and (cpu_count is not null or memory_mb is not null or guest_os is not null))::int as unmanaged_with_data
        from v`);
    const rejects = await client.query(`
      select reason, count(*)::int as count, max(rejected_at) as last
        from vm_sync.rejects where rejected_at > now() - interval '1 hour'
       group by reason order by count(*) desc, reason limit 20`);
    const changes = await client.query(`select count(*)::int as rows, min(seq) as first, max(seq) as last, max(changed_at) as last_at from vm_sync.changes`);
    const hasApis = (await client.query(`select to_regclass('vm_sync.api_status') is not null as ok`)).rows[0].ok;
    const apis = hasApis
      ? await client.query(`select api_group, version, available, checked_at from vm_sync.api_status order by api_group`)
      : { rows: [] as any[] };
    await client.query('commit');

    const l = leader.rows[0] ?? {};
    const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);
    const status: SyncStatus = {
      database: redactUrl(databaseUrl),
      now: now.toISOString(),
      leader: {
        holder: l.holder ?? null,
        backendPid: l.pid ?? null,
        term: Number(l.term ?? 0),
        acquiredAt: iso(l.acquired_at),
        heartbeatAt: iso(l.heartbeat_at),
        heartbeatAgeSeconds: l.heartbeat_age ?? null,
        lastBatchAt: iso(l.last_batch_at),
        batches: Number(l.batches ?? 0),
        events: Number(l.events ?? 0),
        lockHeld: l.lock_pid != null,
        lockHolderPid: l.lock_pid ?? null,
        lockHolderApplication: l.application_name ?? null,
        lockHolderAddress: l.client_addr ?? null,
        watchesDown: Array.isArray(l.watches_down) && l.watches_down.length ? { watches: l.watches_down, seconds: Number(l.watches_down_seconds ?? 0) } : null,
      },
      watches: watches.rows.map((w) => ({
        kind: w.kind,
        scope: w.scope,
        resourceVersion: w.resource_version,
        updatedAt: iso(w.updated_at)!,
        ageSeconds: w.age,
        relists: Number(w.relists),
        lastRelistAt: iso(w.last_relist_at),
      })),
      staged: staged.rows.map((s) => ({ kind: s.kind, live: s.live, deleted: s.deleted })),
      apis: apis.rows.map((a) => ({ group: a.api_group, version: a.version, available: a.available, checkedAt: iso(a.checked_at)! })),
      vms: {
        live: vms.rows[0].live,
        managed: vms.rows[0].managed,
        managedWithCpu: vms.rows[0].cpu,
        managedWithMemory: vms.rows[0].memory,
        managedWithGuestOs: vms.rows[0].guest_os,
        managedComplete: vms.rows[0].complete,
        unmanaged: vms.rows[0].unmanaged,
        unmanagedWithData: vms.rows[0].unmanaged_with_data,
      },
      rejectsLastHour: {
        total: rejects.rows.reduce((n, r) => n + r.count, 0),
        byReason: rejects.rows.map((r) => ({ reason: r.reason, count: r.count, last: iso(r.last)! })),
      },
      changes: {
        rows: changes.rows[0].rows,
        firstSeq: changes.rows[0].first === null ? null : Number(changes.rows[0].first),
        lastSeq: changes.rows[0].last === null ? null : Number(changes.rows[0].last),
        lastAt: iso(changes.rows[0].last_at),
      },
      problems: [],
    };
    status.problems = problems(status, staleAfterSeconds);
    return status;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function problems(s: SyncStatus, staleAfter: number): string[] {
  const out: string[] = [];
  const l = s.leader;
  if (!l.lockHeld) out.push(l.holder ? `no watcher holds the leader lease (last leader ${l.holder} is gone or its lease expired)` : 'no watcher leads: is `ssvirt-vm-sync run` running?');
  else if (l.backendPid !== l.lockHolderPid) out.push(`the leader row names backend pid ${l.backendPid} but backend ${l.lockHolderPid} holds the lease`);
  if (l.lockHeld && l.heartbeatAgeSeconds !== null && l.heartbeatAgeSeconds > staleAfter) {
    out.push(`the leader's last heartbeat is ${shortDuration(l.heartbeatAgeSeconds)} old (more than ${staleAfter}s)`);
  }
  if (l.lockHeld && l.watchesDown) {
    out.push(`the leader's watches are not established: ${l.watchesDown.watches.join(', ')} (for ${shortDuration(l.watchesDown.seconds)}); it steps down after STEP_DOWN_AFTER_MS`);
  }
  if (s.watches.length === 0) out.push('no watch checkpoint yet: the watcher has not finished a first list');
  // A guest OS is legitimately unknown until a guest agent reports one; cpu and memory come from the spec.
  const lacking = s.vms.managed - Math.min(s.vms.managedWithCpu, s.vms.managedWithMemory);
  if (lacking > 0) out.push(`${lacking} or more managed vms row(s) lack cpu_count or memory_mb (see vm_sync.rejects)`);
  return out;
}

export function formatStatus(s: SyncStatus): string {
  const now = new Date(s.now);
  const l = s.leader;
  const lines: string[] = [];
  lines.push(`ssvirt-vm-sync status of ${s.database} at ${s.now}`, '');
  const leaderLine = l.holder
    ? `${l.holder} (backend pid ${l.backendPid ?? '-'}), term ${l.term}, since ${l.acquiredAt ?? '-'} (${ago(l.acquiredAt, now)}), heartbeat ${ago(l.heartbeatAt, now)}`
    : `none recorded (term ${l.term})`;
  lines.push(`Leader       ${leaderLine}`);
  lines.push(
    `Leader lease ${l.lockHeld ? `held by backend ${l.lockHolderPid}${l.lockHolderApplication ? ` (${l.lockHolderApplication}${l.lockHolderAddress ? ` from ${l.lockHolderAddress}` : ''})` : ''}` : 'NOT held'}`,
  );
  lines.push(`Last batch   ${ago(l.lastBatchAt, now)}: ${l.batches} batches, ${l.events} events since the leader started`, '');
  lines.push('Watches');
  lines.push(
    s.watches.length
      ? textTable(
          ['kind', 'scope', 'resourceVersion', 'saved', 'relists', 'last relist'],
          s.watches.map((w) => [w.kind, w.scope || '(cluster)', w.resourceVersion, `${shortDuration(w.ageSeconds)} ago`, w.relists, ago(w.lastRelistAt, now)]),
          '  ',
        )
      : '  none yet',
  );
  for (const a of s.apis) {
    lines.push(`API ${a.group.padEnd(24)} ${a.available ? `served at ${a.version}` : 'NOT served: VMs and VMIs sync, instancetype VMs are sized only while they run'} (checked ${ago(a.checkedAt, now)})`);
  }
  lines.push('', 'Staged objects');
  lines.push(
    s.staged.length ? textTable(['kind', 'live', 'deleted'], s.staged.map((k) => [k.kind, k.live, k.deleted]), '  ') : '  none yet',
  );
  const v = s.vms;
  lines.push('', 'vms rows (live; managed = has a staged VM or VMI)');
  lines.push(
    textTable(
      ['', 'rows', 'cpu_count', 'memory_mb', 'guest_os', 'all three'],
      [
        ['managed', v.managed, v.managedWithCpu, v.managedWithMemory, v.managedWithGuestOs, v.managedComplete],
        ['unmanaged', v.unmanaged, '', '', '', `${v.unmanagedWithData} with some data`],
      ],
      '  ',
    ),
  );
  lines.push('', `Rejects in the last hour: ${s.rejectsLastHour.total}`);
  if (s.rejectsLastHour.byReason.length) {
    lines.push(textTable(['count', 'last', 'reason'], s.rejectsLastHour.byReason.map((r) => [r.count, ago(r.last, now), r.reason]), '  '));
  }
  const c = s.changes;
  lines.push(
    '',
    `Change feed  ${c.rows} rows${c.rows ? ` (seq ${c.firstSeq}..${c.lastSeq}), last change ${ago(c.lastAt, now)}` : ''}`,
    '',
    s.problems.length ? `Problems\n${s.problems.map((p) => `  - ${p}`).join('\n')}` : 'Problems     none',
  );
  return lines.join('\n');
}

/**
 * DATABASE_URL (or --database-url), else the embedded default server when it runs. The embedded
 * manager is developer code (src/dev): loaded only when it is needed.
 */
async function resolveUrl(given: unknown): Promise<string> {
  if (typeof given === 'string' && given !== '') return given;
  const { EMBEDDED_DEFAULT_DATA_DIR, embeddedServerInfo } = await import('../dev/embedded/server.js');
  const embedded = embeddedServerInfo(EMBEDDED_DEFAULT_DATA_DIR);
  if (embedded) return embedded.url;
  throw new ConfigError(`DATABASE_URL is not set and no embedded server runs on ${EMBEDDED_DEFAULT_DATA_DIR}: set DATABASE_URL (or --database-url)`);
}

export async function runStatus(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  const o = parseOptions(STATUS_OPTIONS, argv, process.env);
  const url = await resolveUrl(o.databaseUrl);
  let status: SyncStatus;
  try {
    status = await readStatus(url, o.staleAfter as number);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const message = `cannot read the status from ${redactUrl(url)}: ${(err as Error).message}`;
    if (o.json) console.log(JSON.stringify({ database: redactUrl(url), error: message }));
    else console.error(`ssvirt-vm-sync status: ${message}`);
    return 1;
  }
  console.log(o.json ? JSON.stringify(status, null, 2) : formatStatus(status));
  return status.problems.length ? 3 : 0;
}
