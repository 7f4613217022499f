// What an operator sees for each usual mistake: the real CLI, exit status 2 and ONE line that names
// what is wrong and what to do, never a stack trace; transient trouble is retried at info level and
// a SIGTERM during those retries exits 0.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { cleanEnv, plainLines, runCli, STACK, type CliResult } from '../helpers/cli.js';
import { expectedSchemaVersion } from '../../src/pg/schema-check.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { admin, serverUrl, withDatabase } from '../helpers/server.js';
import { freePort, tempDir } from '../helpers/watcher.js';


/** Exit 2, exactly one plain line on stderr matching `line`, no stack trace anywhere. */
function assertOneLine(r: CliResult, line: RegExp, what: string): void {
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 2, `${what}: exit status\n${out}`);
  assert.doesNotMatch(out, STACK, `${what}: a stack trace was printed\n${out}`);
  const lines = plainLines(r.stderr);
  assert.equal(lines.length, 1, `${what}: one line on stderr, got\n${r.stderr}`);
  assert.match(lines[0]!, line, what);
}

function kubeconfigText(server: string, opts: { cluster?: string; contextCluster?: string; token?: string; skipTls?: boolean } = {}): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${opts.cluster ?? 'sim'}`,
    '  cluster:',
    `    server: ${server}`,
    ...(opts.skipTls === false ? [] : ['    insecure-skip-tls-verify: true']),
    'users:',
    '- name: u',
    '  user:',
    `    token: ${opts.token ?? 'dummy'}`,
    'contexts:',
    '- name: c',
    `  context: {cluster: ${opts.contextCluster ?? opts.cluster ?? 'sim'}, user: u}`,
    'current-context: c',
    '',
  ].join('\n');
}

describe('operator errors of the real CLI', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let dir: string;
  let kubeconfig: string;
  const suffix = crypto.randomBytes(4).toString('hex');
  const emptyDb = `vmsync_t_empty_${suffix}`;
  const writer = `vmsync_t_writer_${suffix}`;
  const stranger = `vmsync_t_stranger_${suffix}`;
  const password = `pw-${suffix}`;
  const roleUrl = (role: string, database: string): string => {
    const u = new URL(withDatabase(serverUrl(), database));
    u.username = role;
    u.password = password;
    return u.toString();
  };

  before(async () => {
    db = await createTestDatabase('cli_errors');
    sim = await startSimulator();
    dir = tempDir('cli-errors');
    kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, kubeconfigText(sim.url));
    await admin(`create database ${emptyDb} template template0`);
    await admin(`create role ${writer} login password '${password}' in role vm_sync_writer`);
    await admin(`create role ${stranger} login password '${password}'`);
    await admin(`grant connect on database ${db.name} to ${writer}, ${stranger}`);
  });

  after(async () => {
    await sim?.close();
    await db?.drop();
    await admin(`drop database if exists ${emptyDb} with (force)`);
    await admin(`drop role if exists ${writer}`);
    await admin(`drop role if exists ${stranger}`);
  });

  test('no credentials at all: refused, never a silent localhost:8080', async () => {
    const r = await runCli(['run', '--no-migrate'], cleanEnv({ DATABASE_URL: db.url, HOME: tempDir('nohome') }));
    assertOneLine(r, /^ssvirt-vm-sync run: no Kubernetes credentials found: .*: set KUBECONFIG/, 'no credentials');
    assert.doesNotMatch(r.stdout + r.stderr, /localhost:8080/);
  });

  test('a kubeconfig file that does not exist', async () => {
    const missing = path.join(dir, 'nope.yaml');
    const r = await runCli(['run', '--no-migrate'], cleanEnv({ DATABASE_URL: db.url, KUBECONFIG: missing }));
    assertOneLine(r, new RegExp(`kubeconfig file ${missing} does not exist: point KUBECONFIG`), 'missing kubeconfig');
  });

  test('a kubeconfig whose context names no cluster', async () => {
    const file = path.join(dir, 'nocluster.yaml');
    fs.writeFileSync(file, kubeconfigText(sim.url, { contextCluster: 'elsewhere' }));
    const r = await runCli(['run', '--no-migrate'], cleanEnv({ DATABASE_URL: db.url, KUBECONFIG: file }));
    assertOneLine(r, /context "c" names no cluster that the file defines: add the cluster/, 'no cluster');
  });

  test('a plain-http server without insecure-skip-tls-verify', async () => {
    const file = path.join(dir, 'http.yaml');
    fs.writeFileSync(file, kubeconfigText(sim.url, { skipTls: false }));
    const r = await runCli(['run', '--no-migrate'], cleanEnv({ DATABASE_URL: db.url, KUBECONFIG: file }));
    assertOneLine(r, /is plain http .* without insecure-skip-tls-verify: use the https URL/, 'plain http');
  });

  test('a DATABASE_URL that does not parse', async () => {
    const r = await runCli(['migrate'], cleanEnv({ DATABASE_URL: 'postgres://me:se#cret@db.example/sync' }));
    assertOneLine(r, /^ssvirt-vm-sync migrate: DATABASE_URL does not parse as a URL: percent-encode/, 'bad URL');
    assert.doesNotMatch(r.stderr, /se#cret/, 'the password is not echoed');
  });

  test('a database that does not exist', async () => {
    const r = await runCli(['migrate'], cleanEnv({ DATABASE_URL: withDatabase(serverUrl(), `vmsync_t_missing_${suffix}`) }));
    assertOneLine(r, /database "vmsync_t_missing_\w+" does not exist: create it \(createdb/, 'missing database');
  });

  test('authentication refused', async () => {
    // A role that does not exist fails the login on a trust server and on a SCRAM one alike.
    const r = await runCli(['migrate'], cleanEnv({ DATABASE_URL: roleUrl(`vmsync_t_nobody_${suffix}`, db.name) }));
    assertOneLine(r, /PostgreSQL refused the login: .*: check the user and password in DATABASE_URL/, 'login refused');
    assert.doesNotMatch(r.stderr, new RegExp(password), 'the password is not echoed');
  });

  test('the schema is missing and MIGRATE=false', async () => {
    const r = await runCli(['run'], cleanEnv({ DATABASE_URL: withDatabase(serverUrl(), emptyDb), KUBECONFIG: kubeconfig, MIGRATE: 'false' }));
    assertOneLine(r, /the vm_sync schema is not installed .*: run `ssvirt-vm-sync migrate` as the database owner/, 'no schema');
  });

  test('the schema is older than this version (the newest migration missing) and MIGRATE=false', async () => {
    const older = await createTestDatabase('cli_older');
    try {
      // As if the previous release had migrated it: the newest migration is not recorded. (What it
      // added may stay: the check reads the migrations table, before anything uses the schema.)
      const newest = expectedSchemaVersion();
      await older.pool.query('delete from vm_sync.migrations where name = $1', [newest]);
      const r = await runCli(['run'], cleanEnv({ DATABASE_URL: older.url, KUBECONFIG: kubeconfig, MIGRATE: 'false' }));
      assertOneLine(
        r,
        new RegExp(`the vm_sync schema of database "${older.name}" is older than this ssvirt-vm-sync \\(at \\d+_[\\w-]+, needs ${newest}\\): run \`ssvirt-vm-sync migrate\``),
        'older schema',
      );
    } finally {
      await older.drop();
    }
  });

  test('the API server refuses the token (401) at startup', async () => {
    const file = path.join(dir, 'badtoken.yaml');
    fs.writeFileSync(file, kubeconfigText(sim.url, { token: 'not-the-token' }));
    sim.auth.allow('the-token');
    try {
      const r = await runCli(['run'], cleanEnv({ DATABASE_URL: db.url, KUBECONFIG: file, MIGRATE: 'false' }));
      assertOneLine(r, /the Kubernetes API server at http:\/\/127\.0\.0\.1:\d+ refused the credentials of user "u" in kubeconfig \S+badtoken\.yaml, context "c" \(401 Unauthorized\): log in again/, 'unauthorized');
      assert.doesNotMatch(r.stderr, /not-the-token/, 'the token is not echoed');
    } finally {
      sim.auth.allow('dummy');
    }
  });

  test('the writer role with the default MIGRATE=true', async () => {
    const r = await runCli(['run'], cleanEnv({ DATABASE_URL: roleUrl(writer, db.name), KUBECONFIG: kubeconfig }));
    assertOneLine(r, new RegExp(`role "${writer}" may not migrate: .*: set MIGRATE=false`), 'writer migrating');
  });

  test('a role that is neither owner nor writer', async () => {
    const r = await runCli(['run'], cleanEnv({ DATABASE_URL: roleUrl(stranger, db.name), KUBECONFIG: kubeconfig, MIGRATE: 'false' }));
    assertOneLine(r, new RegExp(`role "${stranger}" (lacks a privilege|may not use the vm_sync schema).*grant vm_sync_writer to ${stranger}`), "stranger");
  });

  test('RBAC forbids the list', async () => {
    const file = path.join(dir, 'rbac.yaml');
    fs.writeFileSync(file, kubeconfigText(sim.url, { token: 'no-rights' }));
    sim.auth.allow('no-rights', { user: 'system:serviceaccount:ssvirt:vm-sync', rules: [] });
    try {
      const r = await runCli(['run'], cleanEnv({ DATABASE_URL: db.url, KUBECONFIG: file, MIGRATE: 'false' }));
      assertOneLine(r, /forbids listing VirtualMachines cluster-wide: .*cannot list resource "virtualmachines".*: grant get, list and watch/, 'forbidden');
    } finally {
      sim.auth.allow('dummy');
    }
  });

  test('a bad flag is reported before any embedded PostgreSQL starts', async () => {
    const r = await runCli(['run', '--batch-max-events=lots'], cleanEnv({ HOME: tempDir('home') }));
    assertOneLine(r, /^ssvirt-vm-sync run: invalid --batch-max-events="lots": expected an integer$/, 'bad flag');
    assert.doesNotMatch(r.stdout + r.stderr, /embedded/i, 'no embedded server was started');
  });

  test('a dead database port: retried at info level without stack traces, and SIGTERM exits 0', async () => {
    const port = await freePort();
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    let retries = 0;
    const r = await runCli(['run'], cleanEnv({ DATABASE_URL: url, KUBECONFIG: kubeconfig, BACKOFF_INITIAL_MS: '20', BACKOFF_MAX_MS: '50' }), (out) => {
      retries = (out.match(/failed; retrying/g) ?? []).length;
      return retries >= 2 ? 'SIGTERM' : undefined;
    });
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 0, `SIGTERM during retries exits 0\n${out}`);
    assert.doesNotMatch(out, STACK, 'no stack trace');
    const logs = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; err?: unknown });
    const retryLines = logs.filter((l) => l.msg.endsWith('failed; retrying'));
    assert.ok(retryLines.length >= 2, 'the retries are logged');
    for (const l of retryLines) {
      assert.equal(l.level, 30, 'at info level');
      assert.equal(typeof l.err, 'string', 'the error is one line, not an object with a stack');
    }
  });
});
