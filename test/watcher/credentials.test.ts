// Kubernetes credentials end to end, with the real watcher process: a token that expires mid-run is
// replaced by editing the kubeconfig and the sync goes on without a restart; an exec plugin runs
// once per credential lifetime (counted), with KUBERNETES_EXEC_INFO, and again after a 401.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm } from '../helpers/vms.js';
import { startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';

const NS = 'vdc-creds';

function kubeconfig(server: string, user: string[]): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: sim',
    '  cluster:',
    `    server: ${server}`,
    '    insecure-skip-tls-verify: true',
    'users:',
    '- name: u',
    '  user:',
    ...user.map((l) => `    ${l}`),
    'contexts:',
    '- name: c',
    '  context: {cluster: sim, user: u}',
    'current-context: c',
    '',
  ].join('\n');
}

/** Writes a file whole at once (rename), as `oc login` or a config tool would. */
function replaceFile(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

describe('watcher credentials: token expiry, kubeconfig refresh, exec plugins', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let dir: string;

  before(async () => {
    db = await createTestDatabase('watcher_credentials');
    sim = await startSimulator({ bookmarkIntervalMs: 200 });
    dir = tempDir('credentials');
    for (const name of ['t-1', 'e-1']) {
      await sim.createVM(NS, name, { running: true, cpu: { cores: 1 }, memory: '1Gi' });
      await insertVmRow(db, { vmName: name, namespace: NS });
    }
  });

  after(async () => {
    await stopAllWatchers();
    await sim?.close();
    await db?.drop();
  });

  test('a token that expires mid-run: the refreshed kubeconfig is read on the 401, no restart', async () => {
    sim.auth.allow('token-one', { user: 'oc-user' });
    const file = path.join(dir, 'token.kubeconfig');
    replaceFile(file, kubeconfig(sim.url, ['token: token-one']));
    const w: WatcherProcess = startWatcher({ databaseUrl: db.url, kubeconfig: file, holder: 'token' });
    await expectVm(db, NS, 't-1', { status: 'POWERED_ON', cpu_count: 1 }, 'synced with the first token');
    const pid = w.pid;

    // The token expires: the server answers 401 from now on; open streams are cut.
    sim.auth.revoke('token-one');
    sim.auth.allow('token-two', { user: 'oc-user' });
    const before401 = sim.auth.unauthorized;
    sim.dropStreams();
    await eventually(() => sim.auth.unauthorized >= before401 + 2, 180_000, 'the watcher met the 401 (and re-read the unchanged kubeconfig)');

    // The operator logs in again: a new token in the kubeconfig. The sync continues.
    replaceFile(file, kubeconfig(sim.url, ['token: token-two']));
    await sim.hotplugCPU(NS, 't-1', 3);
    await expectVm(db, NS, 't-1', { cpu_count: 3 }, 'synced with the refreshed token');
    assert.ok(w.alive, 'no restart');
    assert.equal(w.pid, pid);
    assert.ok(!w.output.join('').includes('token-two'), 'the token is not logged');
    await w.kill('SIGTERM');
  });

  test('an exec plugin runs once per credential lifetime, with KUBERNETES_EXEC_INFO, and again after a 401', async () => {
    const counter = path.join(dir, 'exec-count');
    const info = path.join(dir, 'exec-info');
    const plugin = path.join(dir, 'plugin.mjs');
    // Each run issues the next token: exec-token-1, exec-token-2, ...; valid for an hour.
    fs.writeFileSync(
      plugin,
      `import fs from 'node:fs';
const [counter, info] = process.argv.slice(2);
const n = (fs.existsSync(counter) ? Number(fs.readFileSync(counter, 'utf8')) : 0) + 1;
fs.writeFileSync(counter, String(n));
fs.writeFileSync(info, process.env.KUBERNETES_EXEC_INFO ?? '');
console.log(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential',
  status: { token: 'exec-token-' + n, expirationTimestamp: new Date(Date.now() + 3600_000).toISOString() } }));
`,
    );
    sim.auth.allow('exec-token-1', { user: 'exec-user' });
    const file = path.join(dir, 'exec.kubeconfig');
    replaceFile(
      file,
      kubeconfig(sim.url, [
        'exec:',
        '  apiVersion: client.authentication.k8s.io/v1',
        `  command: ${process.execPath}`,
        `  args: [${JSON.stringify(plugin)}, ${JSON.stringify(counter)}, ${JSON.stringify(info)}]`,
        '  interactiveMode: Never',
      ]),
    );
    const requestsBefore = sim.counters().requests;
    const w = startWatcher({ databaseUrl: db.url, kubeconfig: file, holder: 'exec' });
    await expectVm(db, NS, 'e-1', { status: 'POWERED_ON', cpu_count: 1 }, 'synced with the exec credential');
    // More requests on the same credential: streams cut twice, each reconnect a new request.
    for (const cores of [2, 4]) {
      sim.dropStreams();
      await sim.hotplugCPU(NS, 'e-1', cores);
      await expectVm(db, NS, 'e-1', { cpu_count: cores }, `synced after reconnect (${cores})`);
    }
    const requests = sim.counters().requests - requestsBefore;
    assert.ok(requests >= 6, `several requests were made (${requests})`);
    assert.equal(fs.readFileSync(counter, 'utf8'), '1', `the plugin ran once for ${requests} requests`);
    const execInfo = JSON.parse(fs.readFileSync(info, 'utf8')) as { kind: string; apiVersion: string; spec: { interactive: boolean } };
    assert.equal(execInfo.kind, 'ExecCredential');
    assert.equal(execInfo.apiVersion, 'client.authentication.k8s.io/v1');
    assert.equal(execInfo.spec.interactive, false);

    // The credential is revoked before it expires: the 401 makes the watcher run the plugin again.
    sim.auth.revoke('exec-token-1');
    sim.auth.allow('exec-token-2', { user: 'exec-user' });
    sim.dropStreams();
    await sim.hotplugCPU(NS, 'e-1', 6);
    await expectVm(db, NS, 'e-1', { cpu_count: 6 }, 'synced with the re-issued credential');
    assert.equal(fs.readFileSync(counter, 'utf8'), '2', 'one more run after the 401');
    assert.ok(w.alive);
    await w.kill('SIGTERM');
  });
});
