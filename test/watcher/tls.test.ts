// `run` against an API server that looks like a real one: HTTPS with its own CA, a client
// certificate required, and a bearer token checked. (An HTTPS front end proxies to the simulator.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm } from '../helpers/vms.js';
import { startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';

const NS = 'vdc-tls';
const TOKEN = 'tls-test-token-0123456789';

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** A throwaway CA with a server certificate for 127.0.0.1 and a client certificate. */
function makePki(dir: string): void {
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  fs.writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=vmsync-test-ca');
  for (const who of ['server', 'client']) {
    openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=vmsync-${who}`);
    openssl(dir, 'x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.crt`, '-days', '1', '-extfile', `${who}.ext`);
  }
}

describe('watcher against an HTTPS API server with CA, client certificate and token', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let front: https.Server;
  let watcher: WatcherProcess;
  let unauthorized = 0;

  before(async () => {
    db = await createTestDatabase('watcher_tls');
    sim = await startSimulator({ bookmarkIntervalMs: 200 });
    const dir = tempDir('tls');
    makePki(dir);
    const read = (f: string) => fs.readFileSync(path.join(dir, f));
    front = https.createServer({ key: read('server.key'), cert: read('server.crt'), ca: read('ca.crt'), requestCert: true, rejectUnauthorized: true }, (req, res) => {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        unauthorized++;
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Unauthorized', code: 401 }));
        return;
      }
      const upstream = http.request({ host: '127.0.0.1', port: sim.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      res.on('close', () => upstream.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', () => resolve()));
    const port = (front.address() as { port: number }).port;
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: tls',
        '  cluster:',
        `    server: https://127.0.0.1:${port}`,
        `    certificate-authority: ${path.join(dir, 'ca.crt')}`,
        'users:',
        '- name: tls',
        '  user:',
        `    token: ${TOKEN}`,
        `    client-certificate-data: ${read('client.crt').toString('base64')}`,
        `    client-key-data: ${read('client.key').toString('base64')}`,
        'contexts:',
        '- name: tls',
        '  context: {cluster: tls, user: tls}',
        'current-context: tls',
        '',
      ].join('\n'),
    );
    await sim.createVM(NS, 't-1', { running: true, cpu: { cores: 2 }, memory: '1Gi' });
    await insertVmRow(db, { vmName: 't-1', namespace: NS });
    watcher = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'tls' });
  });

  after(async () => {
    await stopAllWatchers();
    front?.closeAllConnections();
    await new Promise((r) => front?.close(r));
    await sim?.close();
    await db?.drop();
  });

  test('lists and watches over TLS', async () => {
    await expectVm(db, NS, 't-1', { status: 'POWERED_ON', cpu_count: 2, memory_mb: 1024 }, 'cold start over TLS');
    await sim.hotplugCPU(NS, 't-1', 2);
    await expectVm(db, NS, 't-1', { cpu_count: 4 }, 'watch event over TLS');
    assert.equal(unauthorized, 0, 'every request carried the token');
    assert.ok(!watcher.output.join('').includes(TOKEN), 'the token never reaches the logs');
  });
});
