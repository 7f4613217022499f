// No secret leaves the process: the database password and the Kubernetes bearer token never appear
// in the logs (whatever goes wrong: database cut, API errors, 401s), in /metrics, or in the output
// of the other commands. The watcher runs as a LOGIN member of vm_sync_writer, so this is also the
// end-to-end proof that the least-privilege role is enough for `ssvirt-vm-sync run`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { kubeconfigYaml } from '../../src/sim/index.js';
import { startPgProxy, type PgProxy } from '../helpers/pgproxy.js';
import { freePort, startWatcher, tempDir } from '../helpers/watcher.js';
import { Rig, runCli, sleep } from './harness.js';

const PASSWORD = `pg-Secret-${crypto.randomBytes(6).toString('hex')}`;
const TOKEN = `kube-Bearer-${crypto.randomBytes(12).toString('hex')}`;
const ROLE = `vmsync_t_watcher_${crypto.randomBytes(4).toString('hex')}`;

let r: Rig | undefined;
let proxy: PgProxy | undefined;
after(async () => {
  await r?.stop();
  await proxy?.close();
  if (r) {
    const admin = new URL(r.db.url);
    admin.pathname = '/postgres';
    spawnSync('psql', ['-X', '-q', admin.toString(), '-c', `drop role if exists ${ROLE}`]);
  }
});

function leaks(text: string): string[] {
  const found: string[] = [];
  for (const [what, secret] of [
    ['password', PASSWORD],
    ['password (URL-encoded)', encodeURIComponent(PASSWORD)],
    ['token', TOKEN],
  ] as const) {
    if (text.includes(secret)) found.push(what);
  }
  return found;
}

test('neither the database password nor the bearer token reaches logs or /metrics', { timeout: 120_000 }, async () => {
  r = new Rig({ label: 'rel_secrets', seed: 5, vms: 12 });
  await r.start();
  await r.db.query(`create role ${ROLE} login password '${PASSWORD}' in role vm_sync_writer`);

  // The watcher's identity: a LOGIN role that is only a vm_sync_writer, with a password in the URL,
  // through a proxy we can cut; a kubeconfig whose user has a bearer token.
  proxy = await startPgProxy(r.db.url);
  const url = new URL(proxy.rewrite(r.db.url));
  url.username = ROLE;
  url.password = PASSWORD;
  const kubeconfig = path.join(tempDir('secrets'), 'kubeconfig');
  fs.writeFileSync(kubeconfig, kubeconfigYaml(r.sim.url).replace('token: simulator-dummy-token', `token: ${TOKEN}`));
  const port = await freePort();
  const w = startWatcher({
    databaseUrl: url.toString(),
    kubeconfig,
    holder: 'secrets',
    env: { METRICS_ADDR: `127.0.0.1:${port}`, LOG_LEVEL: 'debug' },
  });
  r.watchers.push(w);
  await r.awaitConvergence('the watcher as vm_sync_writer');

  // Make it log every error path it has: database gone, API errors, refused credentials.
  r.startChurn();
  await proxy.cut();
  await sleep(1500);
  await proxy.restore();
  for (const status of [401, 403, 500]) {
    r.sim.failRequests({ status, durationMs: 800 });
    r.sim.dropStreams();
    await sleep(1000);
  }
  await r.sim.goOffline();
  await sleep(800);
  await r.sim.goOnline();
  await sleep(500);
  await r.stopChurn();
  await r.awaitConvergence('after the errors');

  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  assert.match(metrics, /ssvirt_/, 'metrics are served');
  for (const p of ['/healthz', '/readyz']) await fetch(`http://127.0.0.1:${port}${p}`).then((res) => res.text());
  await w.kill('SIGTERM');
  const logs = w.output.join('');
  assert.ok(logs.length > 1000 && /"level":(40|50)/.test(logs), 'errors were logged');
  assert.deepEqual(leaks(logs), [], 'secrets in the watcher log');
  assert.deepEqual(leaks(metrics), [], 'secrets in /metrics');

  // The other commands, including their failure paths.
  const env = { LOG_LEVEL: 'debug' };
  const bad = new URL(url);
  bad.pathname = '/no_such_database_here';
  const refused = new URL(url);
  refused.port = String(await freePort());
  const runs = [
    await runCli(['status'], { ...env, DATABASE_URL: url.toString() }),
    await runCli(['status', '--json'], { ...env, DATABASE_URL: bad.toString() }),
    await runCli(['migrate'], { ...env, DATABASE_URL: url.toString() }),
    await runCli(['migrate'], { ...env, DATABASE_URL: refused.toString() }),
    await runCli(['run', '--metrics-addr', 'off', '--no-migrate', '--database-url', bad.toString()], { ...env, KUBECONFIG: kubeconfig }, 8000),
    await runCli(['run', '--batch-max-events', 'nonsense'], { ...env, DATABASE_URL: url.toString(), KUBECONFIG: kubeconfig }, 8000),
  ];
  for (const [i, run] of runs.entries()) {
    const out = `${run.stdout ?? ''}${run.stderr ?? ''}`;
    assert.deepEqual(leaks(out), [], `command ${i} (${run.status}) printed a secret:\n${out.slice(0, 2000)}`);
  }
  // A migrate as the writer role is refused (it may not create anything) and says so without the password.
  assert.notEqual(runs[2]!.status, 0, 'the writer role cannot migrate');
});
