// `npm test`: picks a PostgreSQL server, migrates one template database, then runs every
// test file with Node's test runner, each file cloning the template into a database of its own.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { migrate } from '../src/pg/migrate.js';
import { migrationsDir, packageRoot, sqlDir } from '../src/lib/paths.js';
import { answers, LOCAL_DEFAULT_URL, withDatabase } from './helpers/server.js';

const distTestDir = path.join(packageRoot, 'dist', 'test');

function listFiles(dir: string, suffix: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith(suffix))
    .map((d) => path.join(d.parentPath ?? (d as unknown as { path: string }).path, d.name))
    .sort();
}

/** The template's name changes whenever a migration or SQL file does, so a stale one is never reused. */
function templateName(): string {
  const hash = crypto.createHash('sha256');
  for (const file of [...listFiles(migrationsDir, '.js'), ...listFiles(sqlDir, '.sql')]) {
    hash.update(path.relative(packageRoot, file));
    hash.update(fs.readFileSync(file));
  }
  return `vmsync_tpl_${hash.digest('hex').slice(0, 12)}`;
}

async function resolveServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => undefined };
  // VM_SYNC_PROBE_URL: where to look for a local server (set it to a dead address to exercise the embedded fallback).
  const probe = process.env.VM_SYNC_PROBE_URL || LOCAL_DEFAULT_URL;
  if (await answers(probe)) return { url: probe, stop: async () => undefined };
  console.log(`# no PostgreSQL at DATABASE_URL or ${new URL(probe).host}: starting an embedded one`);
  const { startEmbeddedPostgres } = await import('../src/dev/embedded/server.js');
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(packageRoot, '.data', 'test-pg'), ephemeral: true });
  return { url: embedded.url, stop: () => embedded.stop() };
}

/** Lock key that a run holds (shared) on its template for as long as it runs. */
function templateLockKey(name: string): string {
  return `ssvirt-vm-sync test template ${name}`;
}

/**
 * Builds the template once (under a lock, for concurrent runs sharing one server) and returns the
 * connection that holds a shared lock on it: no other run drops a template while a run uses it.
 */
async function prepareTemplate(serverUrl: string, name: string): Promise<pg.Client> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query('select pg_advisory_lock(hashtext($1))', ['ssvirt-vm-sync test template']);
  try {
    await admin.query('select pg_advisory_lock_shared(hashtext($1))', [templateLockKey(name)]);
    const exists = await admin.query('select 1 from pg_database where datname = $1', [name]);
    if (exists.rowCount === 0) {
      const building = `${name}_building`;
      await admin.query(`drop database if exists ${building} with (force)`);
      await admin.query(`create database ${building}`);
      await migrate(withDatabase(serverUrl, building));
      await admin.query(`alter database ${building} rename to ${name}`);
    }
    // Templates of older migration sets are dead weight, unless another run still holds one.
    const stale = await admin.query<{ datname: string }>(
      `select datname from pg_database where datname like 'vmsync\\_tpl\\_%' and datname <> $1 and datname not like '%\\_building'`,
      [name],
    );
    for (const row of stale.rows) {
      const free = await admin.query<{ ok: boolean }>('select pg_try_advisory_lock(hashtext($1)) as ok', [templateLockKey(row.datname)]);
      if (!free.rows[0]?.ok) continue;
      await admin.query(`drop database if exists ${row.datname} with (force)`).catch(() => undefined);
      await admin.query('select pg_advisory_unlock(hashtext($1))', [templateLockKey(row.datname)]);
    }
  } finally {
    await admin.query('select pg_advisory_unlock(hashtext($1))', ['ssvirt-vm-sync test template']);
  }
  return admin;
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const files = listFiles(distTestDir, '.test.js').filter(
    (f) => filters.length === 0 || filters.some((needle) => f.includes(needle)),
  );
  if (files.length === 0) {
    console.error(`no test files match ${filters.join(' ') || '(all)'} under ${distTestDir}`);
    return 1;
  }
  const server = await resolveServer();
  try {
    const template = templateName();
    const holder = await prepareTemplate(server.url, template);
    const concurrency = process.env.TEST_CONCURRENCY ?? '3';
    // --test-force-exit: a test file's process exits once its tests are done. Without it, one that
    // ended right after fault injection was seen spinning in Node's exit-time handle cleanup forever.
    // Two reporters: TAP on stdout as before, and one naming each test file (and, at the end, the
    // failed ones) on stderr.
    const reporters = [
      '--test-reporter=tap', '--test-reporter-destination=stdout',
      `--test-reporter=${path.join(distTestDir, 'file-reporter.js')}`, '--test-reporter-destination=stderr',
    ];
    const child = spawn(process.execPath, ['--test', '--test-force-exit', `--test-concurrency=${concurrency}`, ...reporters, ...files], {
      stdio: 'inherit',
      env: {
        ...process.env,
        VM_SYNC_TEST_SERVER: server.url,
        VM_SYNC_TEST_TEMPLATE: template,
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
      },
    });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const code = await new Promise<number>((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
    await holder.end().catch(() => undefined);
    return code;
  } finally {
    await server.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
