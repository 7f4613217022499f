// Configuration: one frozen, validated object per command, from flags, then environment, then defaults.
import os from 'node:os';

export type OptionType = 'string' | 'int' | 'bool' | 'list' | 'level' | 'addr';

export interface OptionSpec {
  /** Property name on the resulting config object. */
  key: string;
  flag: string;
  /** Environment variables, first one set wins. */
  env: string[];
  type: OptionType;
  default: string | number | boolean | string[] | null;
  help: string;
  min?: number;
  max?: number;
  /** Secret values are never echoed back in errors or help. */
  secret?: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const DATABASE_URL_OPTION: OptionSpec = {
  key: 'databaseUrl',
  flag: '--database-url',
  env: ['DATABASE_URL'],
  type: 'string',
  default: null,
  help: 'PostgreSQL connection URL (unset: the embedded PostgreSQL of .data/pg)',
  secret: true,
};

export const LOG_LEVEL_OPTION: OptionSpec = {
  key: 'logLevel',
  flag: '--log-level',
  env: ['LOG_LEVEL'],
  type: 'level',
  default: 'info',
  help: `log level: ${LEVELS.join(', ')}`,
};

/** Everything `ssvirt-vm-sync run` reads. */
export const RUN_OPTIONS: readonly OptionSpec[] = [
  DATABASE_URL_OPTION,
  { key: 'kubeconfig', flag: '--kubeconfig', env: ['KUBECONFIG'], type: 'string', default: null, help: 'kubeconfig file (default: ~/.kube/config, else in-cluster)' },
  { key: 'namespaces', flag: '--namespaces', env: ['WATCH_NAMESPACES'], type: 'list', default: [], help: 'comma-separated namespaces to watch; empty = cluster-wide' },
  { key: 'migrate', flag: '--migrate', env: ['MIGRATE'], type: 'bool', default: true, help: 'apply migrations before starting (--no-migrate to skip)' },
  { key: 'batchMaxEvents', flag: '--batch-max-events', env: ['BATCH_MAX_EVENTS'], type: 'int', default: 500, min: 1, max: 10_000, help: 'flush a batch when it holds this many objects (far below vm_sync.settings ingest_max_events)' },
  { key: 'batchMaxWaitMs', flag: '--batch-max-wait-ms', env: ['BATCH_MAX_WAIT_MS'], type: 'int', default: 10, min: 0, max: 60_000, help: 'flush a batch at most this long after its first event (while a batch is being written, the next one grows)' },
  { key: 'reconcileIntervalMs', flag: '--reconcile-interval-ms', env: ['RECONCILE_INTERVAL_MS'], type: 'int', default: 10_000, min: 100, max: 3_600_000, help: 'period of vm_sync.reconcile() on the leader' },
  { key: 'instancetypeCheckMs', flag: '--instancetype-check-ms', env: ['INSTANCETYPE_CHECK_MS'], type: 'int', default: 60_000, min: 100, max: 3_600_000, help: 'while the cluster serves no instancetype API, look for it again this often' },
  { key: 'ratioIntervalMs', flag: '--ratio-interval-ms', env: ['RATIO_INTERVAL_MS'], type: 'int', default: 30_000, min: 100, max: 3_600_000, help: 'period of the ssvirt_vm_data_populated_ratio refresh' },
  { key: 'watchTimeoutSeconds', flag: '--watch-timeout-seconds', env: ['WATCH_TIMEOUT_SECONDS'], type: 'int', default: 300, min: 1, max: 3600, help: 'server-side timeoutSeconds of each watch request' },
  { key: 'watchIdleTimeoutMs', flag: '--watch-idle-timeout-ms', env: ['WATCH_IDLE_TIMEOUT_MS'], type: 'int', default: 90_000, min: 100, max: 3_600_000, help: 'restart a watch stream silent this long (keep above the bookmark interval)' },
  { key: 'maxObjectBytes', flag: '--max-object-bytes', env: ['MAX_OBJECT_BYTES'], type: 'int', default: 2 * 1024 * 1024, min: 1024, max: 1024 * 1024 * 1024, help: 'an object larger than this is not sent whole: only the fields the contract reads, and a reject' },
  { key: 'maxObjectDepth', flag: '--max-object-depth', env: ['MAX_OBJECT_DEPTH'], type: 'int', default: 100, min: 8, max: 10_000, help: 'an object nested deeper than this is not sent whole: only the fields the contract reads, and a reject' },
  { key: 'kubeEvents', flag: '--kube-events', env: ['KUBE_EVENTS'], type: 'bool', default: true, help: 'post a Warning Event VMDataRejected on a VM whose data was rejected (--no-kube-events: none; needs create/patch on events)' },
  { key: 'listPageSize', flag: '--list-page-size', env: ['LIST_PAGE_SIZE'], type: 'int', default: 500, min: 1, max: 10_000, help: 'largest limit= of a list page' },
  { key: 'listPageBytes', flag: '--list-page-bytes', env: ['LIST_PAGE_BYTES'], type: 'int', default: 4 * 1024 * 1024, min: 1024, max: 1024 * 1024 * 1024, help: 'aim of a list page in bytes: limit= follows the bytes per object seen' },
  { key: 'listConcurrency', flag: '--list-concurrency', env: ['LIST_CONCURRENCY'], type: 'int', default: 1, min: 1, max: 64, help: 'lists running at once (after a mass 410 the streams take turns)' },
  { key: 'batchMaxBytes', flag: '--batch-max-bytes', env: ['BATCH_MAX_BYTES'], type: 'int', default: 2 * 1024 * 1024, min: 1024, max: 1024 * 1024 * 1024, help: 'flush a batch when its objects reach this many bytes of JSON' },
  { key: 'memoryBudgetBytes', flag: '--memory-budget-bytes', env: ['MEMORY_BUDGET_BYTES'], type: 'int', default: 12 * 1024 * 1024, min: 64 * 1024, max: 16 * 1024 * 1024 * 1024, help: 'bytes of object JSON held at once for lists and batches (the process waits for room beyond)' },
  { key: 'requestTimeoutMs', flag: '--request-timeout-ms', env: ['REQUEST_TIMEOUT_MS'], type: 'int', default: 30_000, min: 100, max: 600_000, help: 'timeout of a list page request and of a watch request until its headers' },
  { key: 'backoffInitialMs', flag: '--backoff-initial-ms', env: ['BACKOFF_INITIAL_MS'], type: 'int', default: 200, min: 1, max: 600_000, help: 'first reconnect / retry delay' },
  { key: 'backoffMaxMs', flag: '--backoff-max-ms', env: ['BACKOFF_MAX_MS'], type: 'int', default: 10_000, min: 1, max: 3_600_000, help: 'largest reconnect / retry delay' },
  { key: 'metricsAddr', flag: '--metrics-addr', env: ['METRICS_ADDR', 'METRICS_PORT'], type: 'addr', default: ':9090', help: 'listen address of /metrics, /healthz, /readyz ([host]:port or port; "off" disables)' },
  { key: 'leaderPollMs', flag: '--leader-poll-ms', env: ['LEADER_POLL_MS'], type: 'int', default: 1000, min: 50, max: 60_000, help: 'how often a standby tries to take the lead (and the leader renews its lease, vm_sync.settings leader_lease)' },
  { key: 'metricsNamespaceLabel', flag: '--metrics-namespace-label', env: ['METRICS_NAMESPACE_LABEL'], type: 'bool', default: true, help: 'label ssvirt_vmi_data_updates_total by namespace (--no-metrics-namespace-label drops the label)' },
  { key: 'metricsNamespaceCap', flag: '--metrics-namespace-cap', env: ['METRICS_NAMESPACE_CAP'], type: 'int', default: 500, min: 1, max: 100_000, help: 'namespaces ssvirt_vmi_data_updates_total names; the rest count as namespace="other"' },
  { key: 'stepDownAfterMs', flag: '--step-down-after-ms', env: ['STEP_DOWN_AFTER_MS'], type: 'int', default: 30_000, min: 0, max: 3_600_000, help: "a leader whose watches are not established this long resigns so a standby can lead (0: never)" },
  { key: 'stepDownBackoffMs', flag: '--step-down-backoff-ms', env: ['STEP_DOWN_BACKOFF_MS'], type: 'int', default: 15_000, min: 0, max: 3_600_000, help: 'after stepping down, wait this long before campaigning again' },
  { key: 'poolerCheck', flag: '--pooler-check', env: ['POOLER_CHECK'], type: 'bool', default: true, help: 'at start, refuse a transaction-pooling pooler (PgBouncer pool_mode=transaction) in front of PostgreSQL' },
  { key: 'pgStatementTimeoutMs', flag: '--pg-statement-timeout-ms', env: ['PG_STATEMENT_TIMEOUT_MS'], type: 'int', default: 60_000, min: 100, max: 3_600_000, help: "statement_timeout of the watcher's sessions (whatever the server's default); a batch that takes longer is split" },
  { key: 'pgLockTimeoutMs', flag: '--pg-lock-timeout-ms', env: ['PG_LOCK_TIMEOUT_MS'], type: 'int', default: 15_000, min: 100, max: 3_600_000, help: "lock_timeout of the watcher's sessions (a write waits this long for another writer, then retries)" },
  { key: 'pgIdleInTransactionTimeoutMs', flag: '--pg-idle-in-transaction-timeout-ms', env: ['PG_IDLE_IN_TRANSACTION_TIMEOUT_MS'], type: 'int', default: 60_000, min: 1000, max: 3_600_000, help: "idle_in_transaction_session_timeout of the watcher's sessions" },
  { key: 'holder', flag: '--holder', env: ['VM_SYNC_HOLDER', 'POD_NAME'], type: 'string', default: null, help: 'identity recorded in vm_sync.leader (default: hostname:pid)' },
  { key: 'shutdownTimeoutMs', flag: '--shutdown-timeout-ms', env: ['SHUTDOWN_TIMEOUT_MS'], type: 'int', default: 5000, min: 100, max: 120_000, help: 'longest graceful shutdown before a forced exit' },
  LOG_LEVEL_OPTION,
];

export const MIGRATE_OPTIONS: readonly OptionSpec[] = [DATABASE_URL_OPTION, LOG_LEVEL_OPTION];

export const LISTEN_OPTIONS: readonly OptionSpec[] = [
  DATABASE_URL_OPTION,
  { key: 'since', flag: '--since', env: ['LISTEN_SINCE'], type: 'int', default: null, min: 0, help: 'first print the backlog of vm_sync.changes after this seq, then live' },
  { key: 'channel', flag: '--channel', env: ['LISTEN_CHANNEL'], type: 'string', default: 'vm_changed', help: 'notification channel' },
  { ...LOG_LEVEL_OPTION, default: 'warn' },
];

export interface ListenAddr {
  host: string | undefined;
  port: number;
}

export interface RunConfig {
  databaseUrl: string;
  kubeconfig: string | null;
  namespaces: readonly string[];
  migrate: boolean;
  batchMaxEvents: number;
  batchMaxWaitMs: number;
  reconcileIntervalMs: number;
  instancetypeCheckMs: number;
  ratioIntervalMs: number;
  watchTimeoutSeconds: number;
  watchIdleTimeoutMs: number;
  listPageSize: number;
  kubeEvents: boolean;
  maxObjectBytes: number;
  maxObjectDepth: number;
  listPageBytes: number;
  listConcurrency: number;
  batchMaxBytes: number;
  memoryBudgetBytes: number;
  requestTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  metricsAddr: ListenAddr | null;
  metricsNamespaceLabel: boolean;
  metricsNamespaceCap: number;
  leaderPollMs: number;
  stepDownAfterMs: number;
  stepDownBackoffMs: number;
  poolerCheck: boolean;
  pgStatementTimeoutMs: number;
  pgLockTimeoutMs: number;
  pgIdleInTransactionTimeoutMs: number;
  holder: string;
  shutdownTimeoutMs: number;
  logLevel: string;
}

export interface MigrateConfig {
  databaseUrl: string;
  logLevel: string;
}

export interface ListenConfig {
  databaseUrl: string;
  since: number | null;
  channel: string;
  logLevel: string;
}

type Raw = { value: string; from: string };

function describe(spec: OptionSpec, raw: Raw): string {
  return `${raw.from}=${spec.secret ? '[redacted]' : JSON.stringify(raw.value)}`;
}

function convert(spec: OptionSpec, raw: Raw): unknown {
  const value = raw.value.trim();
  switch (spec.type) {
    case 'string':
      return value === '' ? spec.default : value;
    case 'list':
      return value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    case 'bool': {
      if (/^(1|true|yes|on)$/i.test(value)) return true;
      if (/^(0|false|no|off)$/i.test(value)) return false;
      throw new ConfigError(`invalid ${describe(spec, raw)}: expected true or false`);
    }
    case 'level': {
      const level = value.toLowerCase();
      if (!LEVELS.includes(level)) throw new ConfigError(`invalid ${describe(spec, raw)}: expected one of ${LEVELS.join(', ')}`);
      return level;
    }
    case 'int': {
      if (!/^-?\d+$/.test(value)) throw new ConfigError(`invalid ${describe(spec, raw)}: expected an integer`);
      const n = Number(value);
      if (!Number.isSafeInteger(n)) throw new ConfigError(`invalid ${describe(spec, raw)}: out of range`);
      if (spec.min !== undefined && n < spec.min) throw new ConfigError(`invalid ${describe(spec, raw)}: must be >= ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw new ConfigError(`invalid ${describe(spec, raw)}: must be <= ${spec.max}`);
      return n;
    }
    case 'addr':
      return parseAddr(value, () => describe(spec, raw));
  }
}

export function parseAddr(value: string, what: () => string = () => JSON.stringify(value)): ListenAddr | null {
  if (value === '' || /^(off|none|false|disabled)$/i.test(value)) return null;
  const m = /^(?:\[?([^\]]*?)\]?:)?(\d+)$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`invalid ${what()}: expected [host]:port, port, or off`);
  return { host: m[1] || undefined, port };
}

/**
 * Parses flags (`--name value`, `--name=value`, `--no-name` for booleans) over environment variables over defaults.
 * Unknown flags and stray arguments are errors: a typo must not silently fall back to a default.
 */
export function parseOptions(specs: readonly OptionSpec[], argv: readonly string[], env: NodeJS.ProcessEnv): Record<string, unknown> {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const fromFlags = new Map<string, Raw>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const spec = byFlag.get(name);
    if (!spec && name.startsWith('--no-')) {
      const positive = byFlag.get('--' + name.slice(5));
      if (positive?.type === 'bool' && eq < 0) {
        fromFlags.set(positive.key, { value: 'false', from: name });
        continue;
      }
    }
    if (!spec) throw new ConfigError(`unknown option ${name} (see --help)`);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (spec.type === 'bool') value = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`option ${name} needs a value`);
      value = next;
      i++;
    }
    fromFlags.set(spec.key, { value, from: name });
  }
  const out: Record<string, unknown> = {};
  for (const spec of specs) {
    let raw = fromFlags.get(spec.key);
    if (!raw) {
      const name = spec.env.find((e) => env[e] !== undefined && env[e] !== '');
      if (name) raw = { value: env[name]!, from: name };
    }
    out[spec.key] = raw ? convert(spec, raw) : spec.type === 'addr' ? parseAddr(String(spec.default ?? '')) : spec.default;
  }
  return out;
}

function requireDatabaseUrl(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError('DATABASE_URL (or --database-url) is required');
  return checkDatabaseUrl(value);
}

/** A DATABASE_URL that the driver can use, else a ConfigError saying why (without the password). */
export function checkDatabaseUrl(value: string): string {
  if (!/^postgres(ql)?:\/\//.test(value)) {
    throw new ConfigError('DATABASE_URL is not a PostgreSQL URL: write postgres://USER:PASSWORD@HOST:5432/DATABASE');
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(
      'DATABASE_URL does not parse as a URL: percent-encode special characters in the user and password (@ as %40, # as %23, / as %2F, : as %3A)',
    );
  }
  if (!url.hostname && !url.searchParams.get('host')) throw new ConfigError('DATABASE_URL names no host: write postgres://USER:PASSWORD@HOST:5432/DATABASE');
  return value;
}

export function loadRunConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Readonly<RunConfig> {
  const o = parseOptions(RUN_OPTIONS, argv, env);
  const config = {
    ...(o as unknown as RunConfig),
    databaseUrl: requireDatabaseUrl(o.databaseUrl),
    namespaces: Object.freeze([...new Set(o.namespaces as string[])].sort()),
    holder: (o.holder as string | null) ?? `${os.hostname()}:${process.pid}`,
  };
  if (config.backoffMaxMs < config.backoffInitialMs) throw new ConfigError('BACKOFF_MAX_MS must be >= BACKOFF_INITIAL_MS');
  if (config.watchIdleTimeoutMs <= 1000) throw new ConfigError('WATCH_IDLE_TIMEOUT_MS must be > 1000');
  if (config.metricsAddr) Object.freeze(config.metricsAddr);
  return Object.freeze(config);
}

export function loadMigrateConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Readonly<MigrateConfig> {
  const o = parseOptions(MIGRATE_OPTIONS, argv, env);
  return Object.freeze({ databaseUrl: requireDatabaseUrl(o.databaseUrl), logLevel: o.logLevel as string });
}

export function loadListenConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Readonly<ListenConfig> {
  const o = parseOptions(LISTEN_OPTIONS, argv, env);
  return Object.freeze({
    databaseUrl: requireDatabaseUrl(o.databaseUrl),
    since: o.since as number | null,
    channel: o.channel as string,
    logLevel: o.logLevel as string,
  });
}

function formatDefault(spec: OptionSpec): string {
  const d = spec.default;
  if (d === null) return '';
  if (Array.isArray(d)) return d.length ? d.join(',') : '';
  return String(d);
}

/** The option table of a command's --help: flag, environment variable, default, meaning. */
export function optionsHelp(specs: readonly OptionSpec[]): string {
  const rows = specs.map((s) => {
    const flag = s.type === 'bool' ? `${s.flag}, --no-${s.flag.slice(2)}` : `${s.flag} <${s.type === 'list' ? 'a,b' : s.type === 'int' ? 'n' : 'value'}>`;
    const def = formatDefault(s);
    return [flag, s.env.join(' | '), `${s.help}${def ? ` [default: ${def}]` : ''}`];
  });
  const w0 = Math.max(...rows.map((r) => r[0]!.length));
  const w1 = Math.max(...rows.map((r) => r[1]!.length));
  return rows.map((r) => `  ${r[0]!.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]}`).join('\n');
}
