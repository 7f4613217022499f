// TLS to PostgreSQL: through a TLS-only front end (a throwaway CA, a server certificate for
// 127.0.0.1), the watcher syncs with sslmode=verify-full; a client trusting another CA, or asking
// for no TLS, does not get in.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { packageRoot } from '../../src/lib/paths.js';
import { startPgTlsProxy } from '../helpers/pgproxy.js';
import { startWatcher, tempDir } from '../helpers/watcher.js';
import { Rig } from './harness.js';

const cli = path.join(packageRoot, 'dist', 'src', 'cli', 'main.js');
let r: Rig | undefined;
let proxy: Awaited<ReturnType<typeof startPgTlsProxy>> | undefined;
after(async () => {
  await r?.stop();
  await proxy?.close();
});

function certificates(dir: string): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  for (const ca of ['ca', 'other-ca']) {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '1', '-subj', `/CN=vmsync-${ca}`);
  }
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'server.ext');
}

test('the watcher syncs over TLS with sslmode=verify-full; wrong CA and plaintext are refused', { timeout: 240_000 }, async () => {
  const dir = tempDir('pgtls');
  certificates(dir);
  r = new Rig({ label: 'rel_tls', seed: 9, vms: 6 });
  await r.start();
  proxy = await startPgTlsProxy(r.db.url, { key: fs.readFileSync(path.join(dir, 'server.key')), cert: fs.readFileSync(path.join(dir, 'server.crt')) });
  const via = (params: string): string => {
    const u = new URL(r!.db.url);
    u.hostname = '127.0.0.1';
    u.port = String(proxy!.port);
    u.search = params;
    return u.toString();
  };

  const w = startWatcher({ databaseUrl: via(`sslmode=verify-full&sslrootcert=${path.join(dir, 'ca.crt')}`), kubeconfig: r.kubeconfig, holder: 'tls' });
  r.watchers.push(w);
  await r.awaitConvergence('over TLS');
  r.startChurn();
  await new Promise((res) => setTimeout(res, 1000));
  await r.stopChurn();
  await r.awaitConvergence('changes over TLS');
  assert.ok(proxy.tlsSessions() >= 1, 'the watcher connected with TLS');
  assert.equal(proxy.refusedPlain(), 0);
  const [writer] = await r.db.query(`select l.pid from vm_sync.leader l`);
  assert.ok(writer.pid, 'it leads through the TLS connection');

  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
  // Asynchronously: the TLS front end lives in this process and must keep answering.
  const status = (params: string) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [cli, 'status', '--json'], { env: { ...env, DATABASE_URL: via(params) }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ status: code, stdout, stderr });
      });
    });
  const good = await status(`sslmode=verify-full&sslrootcert=${path.join(dir, 'ca.crt')}`);
  const report = JSON.parse(good.stdout) as Record<string, unknown>;
  assert.equal(report.error, undefined, `status over TLS: ${good.stdout}`);
  const wrongCa = await status(`sslmode=verify-full&sslrootcert=${path.join(dir, 'other-ca.crt')}`);
  assert.notEqual(wrongCa.status, 0, 'a server certificate from another CA is refused');
  assert.match(`${wrongCa.stdout}${wrongCa.stderr}`, /certificate|self.signed|verify/i);
  const before = proxy.refusedPlain();
  const plain = await status('sslmode=disable');
  assert.notEqual(plain.status, 0, 'no TLS, no connection');
  assert.ok(proxy.refusedPlain() > before);
});
