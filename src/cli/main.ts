#!/usr/bin/env node
// The `ssvirt-vm-sync` command: migrate, run, listen, status, demo. Output of its own is the only console use.
import {
  LISTEN_OPTIONS,
  loadListenConfig,
  loadMigrateConfig,
  loadRunConfig,
  MIGRATE_OPTIONS,
  optionsHelp,
  RUN_OPTIONS,
} from '../lib/config.js';
import { createLogger, redactUrl } from '../lib/log.js';
import { brief, EXIT_MISCONFIGURED, fromPgError, operatorLine, urlParts } from '../lib/operator-error.js';
import { isTransient } from '../pg/errors.js';
import { packageVersion } from '../lib/paths.js';

type Command = (argv: string[]) => Promise<number>;

const USAGE = `ssvirt-vm-sync ${packageVersion}: keeps SSVirt's vms table in step with KubeVirt VMs and VMIs

usage: ssvirt-vm-sync <command> [options]

commands:
  migrate   apply the database migrations to DATABASE_URL
  run       the watcher: list+watch VirtualMachines and VirtualMachineInstances into PostgreSQL
  listen    print vm_changed notifications as JSON lines
  status    the sync's health, read from the database
  doctor    check the setup step by step (database, role, kubeconfig, RBAC, pooler), with fixes
  demo      the whole system on an embedded database and a simulated cluster

Options come from flags, else environment variables, else defaults.
Run \`ssvirt-vm-sync <command> --help\` for a command's options.`;

const HELP: Record<string, string> = {
  migrate: `usage: ssvirt-vm-sync migrate [options]\n\nApplies the numbered migrations (idempotent, serialised by an advisory lock).\n\noptions:\n${optionsHelp(MIGRATE_OPTIONS)}`,
  run: `usage: ssvirt-vm-sync run [options]\n\nLists and watches kubevirt.io/v1 VirtualMachines and VirtualMachineInstances and feeds them to\nvm_sync.apply_batch in batches. Replicas elect one leader in the database; the others stand by.\nServes /metrics, /healthz and /readyz on the metrics address.\n\noptions:\n${optionsHelp(RUN_OPTIONS)}`,
  listen: `usage: ssvirt-vm-sync listen [options]\n\nPrints each vm_changed notification as one JSON line. Reconnects forever; after a reconnect,\nchanges notified meanwhile are read from vm_sync.changes so none is missed.\n\noptions:\n${optionsHelp(LISTEN_OPTIONS)}`,
};

function wantsHelp(argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** Resolves SIGTERM/SIGINT into an AbortSignal; a second signal forces the exit. */
function shutdownSignal(onSecond: () => void): AbortSignal {
  const controller = new AbortController();
  const handler = (): void => {
    if (controller.signal.aborted) onSecond();
    else controller.abort();
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return controller.signal;
}

function databaseUrlGiven(argv: string[]): boolean {
  return argv.some((a) => a === '--database-url' || a.startsWith('--database-url=')) || !!process.env.DATABASE_URL;
}

/**
 * The embedded default: without DATABASE_URL, `migrate` and `run` start the project's own PostgreSQL
 * (.data/pg on 127.0.0.1:54329, kept between runs) and stop it when they finish.
 */
async function withDefaultDatabase(
  argv: string[],
  validate: (argv: string[], env: NodeJS.ProcessEnv) => unknown,
  fn: (env: NodeJS.ProcessEnv) => Promise<number>,
): Promise<number> {
  if (databaseUrlGiven(argv)) return fn(process.env);
  // Flags are checked before anything starts: a typo must not cost an initdb first.
  validate(argv, { ...process.env, DATABASE_URL: 'postgres://embedded@127.0.0.1/validation' });
  const { startDefaultEmbeddedPostgres } = await import('../dev/embedded/server.js');
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
  const server = await startDefaultEmbeddedPostgres(logger);
  console.error(`ssvirt-vm-sync: DATABASE_URL is not set; using the embedded PostgreSQL at ${redactUrl(server.url)} (data in .data/pg)`);
  try {
    return await fn({ ...process.env, DATABASE_URL: server.url });
  } finally {
    await server.stop();
  }
}

/** `listen` follows whatever the default database is: the embedded one, if it runs. */
async function defaultDatabaseEnv(argv: string[]): Promise<NodeJS.ProcessEnv> {
  if (databaseUrlGiven(argv)) return process.env;
  const { embeddedServerInfo } = await import('../dev/embedded/server.js');
  const info = embeddedServerInfo();
  return info ? { ...process.env, DATABASE_URL: info.url } : process.env;
}

const commands: Record<string, Command> = {
  migrate: (argv) => {
    if (wantsHelp(argv)) return Promise.resolve(printHelp('migrate'));
    return withDefaultDatabase(argv, loadMigrateConfig, (env) => migrateCommand(argv, env));
  },

  run: (argv) => {
    if (wantsHelp(argv)) return Promise.resolve(printHelp('run'));
    return withDefaultDatabase(argv, loadRunConfig, (env) => runCommand(argv, env));
  },

  async listen(argv) {
    if (wantsHelp(argv)) return printHelp('listen');
    const config = loadListenConfig(argv, await defaultDatabaseEnv(argv));
    const logger = createLogger({ level: config.logLevel });
    const signal = shutdownSignal(() => process.exit(1));
    const { runListen } = await import('./listen.js');
    await runListen(config, { logger, signal });
    return 0;
  },

  status: (argv) => delegate('./status.js', 'runStatus', argv),
  doctor: (argv) => delegate('./doctor.js', 'runDoctor', argv),
  demo: (argv) => delegate('../dev/demo/demo.js', 'runDemo', argv),
};

async function migrateCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const config = loadMigrateConfig(argv, env);
  const logger = createLogger({ level: config.logLevel });
  const { migrate } = await import('../pg/migrate.js');
  const result = await migrate(config.databaseUrl, logger).catch((err: unknown) => {
    const parts = urlParts(config.databaseUrl);
    const known = fromPgError(err, { phase: 'migrate', ...parts });
    if (known) throw known;
    if (isTransient(err)) throw new Error(`cannot reach PostgreSQL at ${parts.host ?? '?'}: ${brief(err)}`);
    throw err;
  });
  const target = redactUrl(config.databaseUrl);
  console.log(
    result.applied.length
      ? `applied ${result.applied.length} migration(s) to ${target}: ${result.applied.join(', ')}`
      : `${target}: no migration to apply`,
  );
  console.log(
    result.reappliedSqlFiles.length
      ? `re-applied ${result.reappliedSqlFiles.length} sql/ file(s) (changed: ${result.changedSqlFiles.join(', ')})`
      : 'sql/ files unchanged since they were last applied',
  );
  return 0;
}

async function runCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const config = loadRunConfig(argv, env);
  const logger = createLogger({ level: config.logLevel });
  const signal = shutdownSignal(() => process.exit(1));
  const { runWatcher } = await import('../watcher/run.js');
  return runWatcher(config, { logger, signal });
}

/** Commands owned by other modules, loaded by a computed path so this file compiles without them. */
async function delegate(modulePath: string, exportName: string, argv: string[]): Promise<number> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(modulePath)) as Record<string, unknown>;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(modulePath.slice(2))) {
      console.error(`ssvirt-vm-sync: this build has no ${modulePath.slice(2, -3)} command`);
      return 2;
    }
    throw err;
  }
  const fn = mod[exportName];
  if (typeof fn !== 'function') throw new Error(`${modulePath} does not export ${exportName}`);
  return (fn as Command)(argv);
}

function printHelp(command?: string): number {
  console.log(command ? HELP[command] : USAGE);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === 'help' && rest[0] && HELP[rest[0]]) return printHelp(rest[0]);
    return printHelp();
  }
  if (name === '--version' || name === '-v') {
    console.log(packageVersion);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`ssvirt-vm-sync: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (err) {
    const line = operatorLine(err);
    if (line !== null) {
      console.error(`ssvirt-vm-sync ${name}: ${redactSecrets(line)}`);
      return EXIT_MISCONFIGURED;
    }
    // Anything else is one line too; the stack only for those who asked for it.
    const debug = /^(debug|trace)$/i.test(process.env.LOG_LEVEL ?? '');
    const message = err instanceof Error ? (debug ? err.stack ?? err.message : oneLine(err)) : String(err);
    console.error(`ssvirt-vm-sync ${name}: ${redactSecrets(message)}`);
    return 1;
  }
}

/** An unexpected error's message, with the errno code and address of a socket error. */
function oneLine(err: Error): string {
  const e = err as Error & { code?: string; address?: string; port?: number; errors?: Error[] };
  // A connection refused on every address comes as an AggregateError with an empty message.
  const inner = !e.message && e.errors?.length ? e.errors[0]! : e;
  const msg = inner.message || e.name;
  return (e.code && !msg.includes(e.code) ? `${msg} (${e.code})` : msg).split('\n')[0]!;
}

/** Connection URLs in error messages keep their user and host but lose their password. */
function redactSecrets(text: string): string {
  return text.replace(/postgres(ql)?:\/\/[^\s'"]+/g, (url) => redactUrl(url));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Stray handles (a half-open socket, a timer) must not keep a finished command alive.
    // Output written to a pipe is flushed first: a JSON report cut short is worse than a late exit.
    setTimeout(() => process.stdout.write('', () => process.stderr.write('', () => process.exit(code))), 500).unref();
  },
  (err) => {
    console.error(`ssvirt-vm-sync: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
