// HTTPS_PROXY carries the watcher's requests, as kubectl's: a CONNECT tunnel to an https API server.
// The server's name (kube.test) resolves nowhere but in the proxy, so only a tunnelled request can
// reach it; the proxy counts the tunnels. Also: how the proxy is chosen (NO_PROXY, loopback) and
// how KUBECONFIG lists merge, both without a process.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { KubeCredentials } from '../../src/watcher/kube-auth.js';
import { proxyFor } from '../../src/watcher/kube-proxy.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm } from '../helpers/vms.js';
import { startWatcher, stopAllWatchers, tempDir } from '../helpers/watcher.js';

const NS = 'vdc-proxy';
const HOST = 'kube.test';

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

test('the proxy for a server: HTTPS_PROXY for https, HTTP_PROXY for http, NO_PROXY and loopback excluded', () => {
  const env = { HTTPS_PROXY: 'http://proxy:3128', HTTP_PROXY: 'proxy:8080', NO_PROXY: 'internal.example,.corp.example,10.0.0.0/8,api.other:6443' };
  assert.equal(proxyFor('https://api.cluster.example:6443', env), 'http://proxy:3128');
  assert.equal(proxyFor('http://api.cluster.example', env), 'http://proxy:8080');
  assert.equal(proxyFor('https://internal.example:6443', env), null);
  assert.equal(proxyFor('https://x.internal.example', env), null, 'a domain covers its subdomains');
  assert.equal(proxyFor('https://api.corp.example', env), null);
  assert.equal(proxyFor('https://10.1.2.3:6443', env), null, 'CIDR');
  assert.equal(proxyFor('https://11.1.2.3:6443', env), 'http://proxy:3128');
  assert.equal(proxyFor('https://api.other:6443', env), null, 'host:port');
  assert.equal(proxyFor('https://api.other:443', env), 'http://proxy:3128', 'another port');
  assert.equal(proxyFor('https://127.0.0.1:6443', env), null, 'loopback is never proxied (as in Go)');
  assert.equal(proxyFor('https://localhost:6443', env), null);
  assert.equal(proxyFor('https://api.cluster.example', { https_proxy: 'http://lower:1' }), 'http://lower:1', 'lower case too');
  assert.equal(proxyFor('https://api.cluster.example', { HTTPS_PROXY: 'http://p:1', NO_PROXY: '*' }), null);
  assert.equal(proxyFor('https://api.cluster.example', {}), null);
});

test('KUBECONFIG=a:b merges like kubectl: the first file wins each name and current-context; a missing file is skipped', () => {
  const dir = tempDir('merge');
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  const a = file('a', `apiVersion: v1\nkind: Config\ncurrent-context: one\nclusters: [{name: shared, cluster: {server: "https://first.example:6443"}}]\nusers: [{name: u, user: {token: first}}]\ncontexts: [{name: one, context: {cluster: shared, user: u}}]\n`);
  const b = file('b', `apiVersion: v1\nkind: Config\ncurrent-context: two\nclusters: [{name: shared, cluster: {server: "https://second.example:6443"}}, {name: other, cluster: {server: "https://other.example"}}]\nusers: [{name: u, user: {token: second}}]\ncontexts: [{name: two, context: {cluster: other, user: u}}]\n`);
  const both = new KubeCredentials({ files: [a, path.join(dir, 'missing'), b], inClusterRoot: null }, {});
  assert.equal(both.server, 'https://first.example:6443', 'current-context and cluster of the first file');
  const swapped = KubeCredentials.fromConfig([b, a].join(path.delimiter), {});
  assert.equal(swapped.server, 'https://other.example', 'the first file sets current-context');
  assert.throws(() => KubeCredentials.fromConfig([path.join(dir, 'x'), path.join(dir, 'y')].join(path.delimiter), {}), /none of the kubeconfig files/);
});

describe('a CONNECT proxy from HTTPS_PROXY carries every request', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let front: https.Server;
  let proxy: http.Server;
  const tunnels: string[] = [];
  const sockets = new Set<net.Socket>();

  before(async () => {
    db = await createTestDatabase('watcher_proxy');
    sim = await startSimulator({ bookmarkIntervalMs: 200 });
    const dir = tempDir('proxy');
    fs.writeFileSync(path.join(dir, 'server.ext'), `subjectAltName=DNS:${HOST}\nextendedKeyUsage=serverAuth\n`);
    openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=vmsync-proxy-ca');
    openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${HOST}`);
    openssl(dir, 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'server.ext');
    const read = (f: string) => fs.readFileSync(path.join(dir, f));
    // The API server over TLS: a front end that forwards to the (plain http) simulator.
    front = https.createServer({ key: read('server.key'), cert: read('server.crt') }, (req, res) => {
      const up = http.request({ host: '127.0.0.1', port: sim.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      req.pipe(up);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', () => resolve()));
    const frontPort = (front.address() as net.AddressInfo).port;
    // The proxy: CONNECT only; it alone knows where kube.test is.
    proxy = http.createServer((_req, res) => {
      res.writeHead(405);
      res.end('CONNECT only\n');
    });
    proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      tunnels.push(req.url ?? '');
      sockets.add(client);
      const [host, port] = (req.url ?? '').split(':');
      if (host !== HOST || Number(port) !== frontPort) {
        client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        return;
      }
      const upstream = net.connect(frontPort, '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      upstream.on('close', () => client.destroy());
      client.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
    const proxyPort = (proxy.address() as net.AddressInfo).port;
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://${HOST}:${frontPort}", certificate-authority: ${JSON.stringify(path.join(dir, 'ca.crt'))}}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
    );
    await sim.createVM(NS, 'p-1', { running: true, cpu: { cores: 2 }, memory: '1Gi' });
    await insertVmRow(db, { vmName: 'p-1', namespace: NS });
    startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'proxied', env: { HTTPS_PROXY: `http://127.0.0.1:${proxyPort}` } });
  });

  after(async () => {
    await stopAllWatchers();
    for (const s of sockets) s.destroy();
    proxy?.closeAllConnections?.();
    front?.closeAllConnections();
    await new Promise((r) => proxy?.close(r));
    await new Promise((r) => front?.close(r));
    await sim?.close();
    await db?.drop();
  });

  test('lists and watches through the tunnel', async () => {
    await expectVm(db, NS, 'p-1', { status: 'POWERED_ON', cpu_count: 2 }, 'cold start through the proxy');
    await sim.hotplugCPU(NS, 'p-1', 3);
    await expectVm(db, NS, 'p-1', { cpu_count: 6 }, 'watch event through the proxy (3 sockets x 2 cores)');
    assert.ok(tunnels.length >= 3, `requests tunnelled: ${tunnels.length}`);
    assert.ok(tunnels.every((t) => t.startsWith(`${HOST}:`)), `every tunnel went to the API server: ${tunnels.join(', ')}`);
  });
});
