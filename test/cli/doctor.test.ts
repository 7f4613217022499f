// `ssvirt-vm-sync doctor` on a correct setup passes every check; on each broken setup the first FAIL
// names the broken step (one test per step), and --json says the same.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { cleanEnv, runCli, STACK } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { pgbouncerMissing, startPgBouncer } from '../helpers/pgbouncer.js';
import { admin, serverUrl, withDatabase } from '../helpers/server.js';
import { freePort, tempDir } from '../helpers/watcher.js';


interface Report {
  ok: boolean;
  checks: Array<{ name: string; verdict: string; detail: string; fix?: string }>;
}

const vmRule = { verbs: ['get', 'list', 'watch'], apiGroups: ['kubevirt.io'], resources: ['virtualmachines', 'virtualmachineinstances'] };
const instancetypeRule = { verbs: ['get', 'list', 'watch'], apiGroups: ['instancetype.kubevirt.io', 'apps'], resources: ['*'] };
const identityRule = { verbs: ['get'], apiGroups: [''], resources: ['namespaces'] };

describe('doctor', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let bare: Simulator;
  let dir: string;
  let kubeconfig: string;
  const suffix = crypto.randomBytes(4).toString('hex');
  const emptyDb = `vmsync_t_docempty_${suffix}`;
  const reader = `vmsync_t_docreader_${suffix}`;
  const password = `pw-${suffix}`;

  const kc = (server: string, token: string): string => {
    const file = path.join(dir, `${token}.kubeconfig`);
    fs.writeFileSync(file, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: ${token}}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`);
    return file;
  };

  async function doctor(env: Record<string, string | undefined>): Promise<{ code: number | null; report: Report; text: string }> {
    const base = cleanEnv({ DATABASE_URL: db.url, KUBECONFIG: kubeconfig, DOCTOR_TIMEOUT_MS: '20000', ...env });
    const [json, plain] = await Promise.all([runCli(['doctor', '--json'], base), runCli(['doctor'], base)]);
    assert.doesNotMatch(json.stdout + json.stderr + plain.stdout + plain.stderr, STACK);
    assert.equal(json.code, plain.code);
    return { code: json.code, report: JSON.parse(json.stdout) as Report, text: plain.stdout };
  }

  function firstFailure(r: Report): string | undefined {
    return r.checks.find((c) => c.verdict === 'fail')?.name;
  }

  before(async () => {
    db = await createTestDatabase('doctor');
    sim = await startSimulator();
    bare = await startSimulator({ instancetypeApi: false });
    dir = tempDir('doctor');
    sim.auth.allow('good', { user: 'watcher' });
    sim.auth.allow('no-rbac', { user: 'nobody', rules: [{ verbs: ['get'], apiGroups: ['kubevirt.io'], resources: ['virtualmachines'] }] });
    // VMs and VMIs readable; the instancetype API served but not readable by this identity.
    sim.auth.allow('no-instancetypes', { user: 'partial', rules: [vmRule, identityRule] });
    // Everything read, but not the kube-system namespace: the cluster identity falls back to the URL.
    sim.auth.allow('no-identity', { user: 'urlonly', rules: [vmRule, instancetypeRule] });
    kubeconfig = kc(sim.url, 'good');
    await admin(`create database ${emptyDb} template template0`);
    await admin(`create role ${reader} login password '${password}' in role vm_sync_reader`);
  });

  after(async () => {
    await stopBouncer();
    await sim?.close();
    await bare?.close();
    await db?.drop();
    await admin(`drop database if exists ${emptyDb} with (force)`);
    await admin(`drop role if exists ${reader}`);
  });

  test('a correct setup passes every check (exit 0), in the documented order', async () => {
    const { code, report, text } = await doctor({});
    assert.equal(code, 0, text);
    assert.deepEqual(
      report.checks.map((c) => c.name),
      ['database URL', 'database server answers', 'authentication', 'schema version', 'role privileges', 'kubeconfig and cluster', 'RBAC: list and watch', 'RBAC: cluster identity', 'instancetype API', 'pooler (session mode)'],
    );
    assert.ok(report.checks.every((c) => c.verdict === 'ok'), text);
    assert.equal(text.trim().split('\n').length, report.checks.length, 'one line per check');
    assert.match(text, /^ok +RBAC: list and watch +\d+ SelfSubjectAccessReviews allowed/m);
    assert.ok(sim.auth.accessReviews > 0, 'the simulator answered SelfSubjectAccessReviews');
  });

  const broken: Array<[string, string, () => Record<string, string>, RegExp]> = [
    ['database URL', 'an unparseable DATABASE_URL', () => ({ DATABASE_URL: 'postgres://u:p#x@h/db' }), /percent-encode/],
    ['database server answers', 'nothing listens on the port', () => ({ DATABASE_URL: `postgres://postgres@127.0.0.1:${deadPort}/postgres` }), /check the host and port/],
    ['authentication', 'a role that cannot log in', () => ({ DATABASE_URL: asRole(withDatabase(serverUrl(), db.name), `vmsync_t_nobody_${suffix}`, 'x') }), /check the user and password/],
    ['schema version', 'a database never migrated', () => ({ DATABASE_URL: withDatabase(serverUrl(), emptyDb) }), /run `ssvirt-vm-sync migrate`/],
    ['role privileges', 'a reader role for the watcher', () => ({ DATABASE_URL: roleUrl() }), /grant vm_sync_writer to/],
    ['kubeconfig and cluster', 'a kubeconfig file that does not exist', () => ({ KUBECONFIG: path.join(dir, 'missing') }), /point KUBECONFIG/],
    ['RBAC: list and watch', 'a token without list and watch', () => ({ KUBECONFIG: kc(sim.url, 'no-rbac') }), /denied: list virtualmachines\.kubevirt\.io cluster-wide/],
    [
      'instancetype API',
      'the instancetype API is served but RBAC forbids reading it',
      () => ({ KUBECONFIG: kc(sim.url, 'no-instancetypes') }),
      /instancetype\.kubevirt\.io served at v1beta1, but denied: list virtualmachineclusterinstancetypes\.instancetype\.kubevirt\.io cluster-wide.*list controllerrevisions\.apps.*; fix: grant get, list and watch on those resources to u/,
    ],
    ['pooler (session mode)', 'the database URL goes through a transaction-pooling PgBouncer', () => ({ DATABASE_URL: pooledUrl }), /transaction pooling.*pool_mode = session/],
  ];
  /** Set once a transaction-mode PgBouncer runs (the pooler case); skipped without the binary. */
  let pooledUrl = '';
  let stopBouncer = async (): Promise<void> => undefined;
  const skipOf = (step: string): string | false => (step === 'pooler (session mode)' ? pgbouncerMissing() ?? false : false);
  let deadPort = 0;
  // Through the URL API: the embedded server's URL carries the admin's password, which a string
  // replace of 'postgres@' would leave in place (and log in as the admin after all).
  const asRole = (url: string, user: string, pass: string): string => {
    const u = new URL(url);
    u.username = user;
    u.password = pass;
    return u.toString();
  };
  const roleUrl = (): string => asRole(db.url, reader, password);

  for (const [step, what, env, fix] of broken) {
    test(`names "${step}" first when ${what}`, { skip: skipOf(step) }, async () => {
      deadPort ||= await freePort();
      if (step === 'pooler (session mode)' && !pooledUrl) {
        const b = await startPgBouncer(db.url, 'transaction');
        pooledUrl = b.url;
        stopBouncer = () => b.stop();
      }
      const { code, report, text } = await doctor(env());
      assert.equal(code, 1, text);
      assert.equal(firstFailure(report), step, text);
      const line = text.split('\n').find((l) => l.startsWith('FAIL'))!;
      assert.match(line, new RegExp(`^FAIL  ${step.replace(/[()]/g, '\\$&')}`));
      assert.match(line, fix);
      assert.match(line, /; fix: /);
    });
  }

  test('RBAC without the kube-system namespace is a warning (the checkpoints are keyed by the URL), not a failure', async () => {
    const { code, report, text } = await doctor({ KUBECONFIG: kc(sim.url, 'no-identity') });
    assert.equal(code, 0, text);
    const check = report.checks.find((c) => c.name === 'RBAC: cluster identity')!;
    assert.equal(check.verdict, 'warn', text);
    assert.match(check.detail, /denied: get namespace kube-system/);
    assert.match(check.fix ?? '', /grant get on namespaces with resourceNames \[kube-system\] to u/);
    assert.match(text, /^WARN +RBAC: cluster identity +denied: get namespace kube-system.*; fix: /m);
    assert.equal(report.checks.find((c) => c.name === 'instancetype API')!.verdict, 'ok', 'the later steps still run');
  });

  test('a cluster without the instancetype API is a warning, not a failure', async () => {
    const { code, report, text } = await doctor({ KUBECONFIG: kc(bare.url, 'anything') });
    assert.equal(code, 0, text);
    const check = report.checks.find((c) => c.name === 'instancetype API')!;
    assert.equal(check.verdict, 'warn');
    assert.match(check.detail, /instancetype\.kubevirt\.io is not served/);
  });
});
