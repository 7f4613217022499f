// `ssvirt-vm-sync status`: the sync's health on one screen, read from the database only.
import pg from 'pg';
import { ConfigError, DATABASE_URL_OPTION, optionsHelp, parseOptions, type OptionSpec } from '../lib/config.js';
import { fromPgError, OperatorError, schemaMissing, urlParts } from '../lib/operator-error.js';
import { redactUrl } from '../lib/log.js';
import { ago, shortDuration, textTable } from './text-table.js';

export const STATUS_OPTIONS: readonly OptionSpec[] = [
  { ...DATABASE_URL_OPTION, help: 'PostgreSQL connection URL (default: the embedded server of .data/pg, when it runs)' },
  { key: 'json', flag: '--json', env: ['STATUS_JSON'], type: 'bool', default: false, help: 'print one JSON object instead of the screen' },
  { key: 'staleAfter', flag: '--stale-after-seconds', env: ['STATUS_STALE_AFTER_SECONDS'], type: 'int', default: 60, min: 1, help: 'a leader heartbeat older than this is reported as a problem' },
];

const HELP = `usage: ssvirt-vm-sync status [options]

Prints the sync's health, read from the database: the leader (and whether it really holds the lock),
the cluster, each watch's last resourceVersion and its age, full lists in progress, staged objects,
vms rows with and without data, rejects in the last hour, the last batch and the change feed.
A member of vm_sync_reader may run it (it calls vm_sync.status_report()). Exit status: 0 when the
status was read and shows no problem, 3 when it shows a problem, 1 when the database cannot be
read, 2 when it is misconfigured (no schema, login refused).

options:
${optionsHelp(STATUS_OPTIONS)}`;

export interface SyncStatus {
  database: string;
  now: string;
  schemaVersion: string | null;
  /** The API server the checkpoints belong to. */
  cluster: { server: string; kubeSystemUid: string | null; recordedAt: string } | null;
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
    /** kind/scope of the current term's watches. */
    watching: string[] | null;
    /** Watches the leading term reported not established (kind/scope), and for how long; null when none. */
    watchesDown: { watches: string[]; seconds: number } | null;
  };
  watches: Array<{ kind: string; scope: string; resourceVersion: string | null; updatedAt: string; ageSeconds: number; relists: number; lastRelistAt: string | null; watched: boolean }>;
  /** The latest full list per kind and scope: in flight when finishedAt is null. */
  lists: Array<{ kind: string; scope: string; reason: string | null; startedAt: string; updatedAt: string; finishedAt: string | null; objects: number; pages: number; remaining: number | null; seconds: number; etaSeconds: number | null; savedSecondsAgo: number }>;
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

/**
 * Reads the whole status with one call of vm_sync.status_report() (SECURITY DEFINER, granted to
 * vm_sync_reader): one snapshot, and the same picture and problems for every client.
 */
export async function readStatus(databaseUrl: string, staleAfterSeconds = 60): Promise<SyncStatus> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000, application_name: 'ssvirt-vm-sync status' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(`set statement_timeout = '10s'`);
    const installed = await client.query<{ ok: boolean }>(`select to_regprocedure('vm_sync.status_report(integer)') is not null as ok`);
    if (!installed.rows[0]?.ok) throw schemaMissing(`no vm_sync.status_report() in ${redactUrl(databaseUrl)}`);
    const r = await client.query<{ report: SyncStatus & { database: string } }>('select vm_sync.status_report($1) as report', [staleAfterSeconds]);
    const report = r.rows[0]!.report;
    return { ...report, database: redactUrl(databaseUrl), now: new Date(report.now).toISOString() };
  } catch (err) {
    throw fromPgError(err, { phase: 'status', ...urlParts(databaseUrl) }) ?? err;
  } finally {
    await client.end().catch(() => undefined);
  }
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
  lines.push(`Last batch   ${ago(l.lastBatchAt, now)}: ${l.batches} batches, ${l.events} events since the leader started`);
  lines.push(
    `Cluster      ${s.cluster ? `${s.cluster.server}${s.cluster.kubeSystemUid ? ` (kube-system uid ${s.cluster.kubeSystemUid})` : ''}, recorded ${ago(s.cluster.recordedAt, now)}` : 'none recorded yet'}`,
    `Schema       ${s.schemaVersion ?? '-'}`,
    '',
  );
  lines.push('Watches');
  lines.push(
    s.watches.length
      ? textTable(
          ['kind', 'scope', 'resourceVersion', 'saved', 'relists', 'last relist', 'watched'],
          s.watches.map((w) => [w.kind, w.scope || '(cluster)', w.resourceVersion, `${shortDuration(w.ageSeconds)} ago`, w.relists, ago(w.lastRelistAt, now), w.watched ? 'yes' : 'NO (stale)']),
          '  ',
        )
      : '  none yet',
  );
  if (s.lists.length) {
    lines.push('', 'Full lists (latest per watch)');
    lines.push(
      textTable(
        ['kind', 'scope', 'reason', 'state', 'objects', 'pages', 'rate', 'remaining', 'eta'],
        s.lists.map((p) => [
          p.kind,
          p.scope || '(cluster)',
          p.reason,
          p.finishedAt
            ? `done ${ago(p.finishedAt, now)}`
            : `listing for ${shortDuration(p.seconds)}${p.savedSecondsAgo > 60 ? `, no news for ${shortDuration(p.savedSecondsAgo)}` : ''}`,
          p.objects,
          p.pages,
          p.seconds > 0 ? `${Math.round(p.objects / p.seconds)}/s` : '-',
          p.finishedAt ? '' : p.remaining ?? 'unknown',
          p.finishedAt ? '' : p.etaSeconds !== null ? `~${shortDuration(p.etaSeconds)}` : 'unknown',
        ]),
        '  ',
      ),
    );
  }
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
    if (err instanceof ConfigError || err instanceof OperatorError) throw err;
    const message = `cannot read the status from ${redactUrl(url)}: ${(err as Error).message}`;
    if (o.json) console.log(JSON.stringify({ database: redactUrl(url), error: message }));
    else console.error(`ssvirt-vm-sync status: ${message}`);
    return 1;
  }
  console.log(o.json ? JSON.stringify(status, null, 2) : formatStatus(status));
  return status.problems.length ? 3 : 0;
}
