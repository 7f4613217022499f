// Exec credential plugins (`users[].user.exec`: oc, kubelogin, aws eks get-token...) as kubectl runs
// them. Replaces client-node 1.4.0's ExecAuth, which re-runs the plugin on every request when the
// credential has no expirationTimestamp, once per concurrent request, never after a 401, and without
// KUBERNETES_EXEC_INFO (see kube-auth.ts). Here a credential is cached until its
// status.expirationTimestamp (for ever when it has none), concurrent requests share one run, and
// invalidate() (on a 401) makes the next request run the plugin again.
import { spawn } from 'node:child_process';
import type https from 'node:https';
import type { Cluster, User } from '@kubernetes/client-node';
import { OperatorError } from '../lib/operator-error.js';

export interface ExecConfig {
  apiVersion?: string;
  command: string;
  args?: string[];
  env?: Array<{ name: string; value: string }> | null;
  provideClusterInfo?: boolean;
  interactiveMode?: string;
}

interface ExecCredential {
  apiVersion?: string;
  kind?: string;
  status?: { token?: string; clientCertificateData?: string; clientKeyData?: string; expirationTimestamp?: string };
}

interface Cached {
  credential: ExecCredential;
  /** ms since epoch; Infinity without expirationTimestamp. */
  expiresAt: number;
}

const DEFAULT_API_VERSION = 'client.authentication.k8s.io/v1';
const PLUGIN_TIMEOUT_MS = 60_000;

export class ExecCredentials {
  private configs = new Map<string, ExecConfig>();
  private cluster: Cluster | null = null;
  private readonly cache = new Map<string, Cached>();
  private readonly pending = new Map<string, Promise<Cached>>();
  /** How often a plugin ran (for metrics and tests). */
  runs = 0;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  /** The exec users of the (re)loaded kubeconfig. A changed plugin configuration drops its credential. */
  configure(configs: Map<string, ExecConfig>, cluster: Cluster): void {
    for (const [name, config] of configs) {
      if (JSON.stringify(this.configs.get(name)) !== JSON.stringify(config)) this.cache.delete(name);
    }
    this.configs = configs;
    this.cluster = cluster;
  }

  /** After a 401: the next request runs the plugins again. */
  invalidate(): void {
    this.cache.clear();
  }

  isAuthProvider(user: User): boolean {
    return this.configs.has(user.name);
  }

  async applyAuthentication(user: User, opts: https.RequestOptions): Promise<void> {
    const { credential } = await this.get(user.name);
    const status = credential.status ?? {};
    if (status.clientCertificateData) opts.cert = status.clientCertificateData;
    if (status.clientKeyData) opts.key = status.clientKeyData;
    if (status.token) opts.headers = { ...opts.headers, Authorization: `Bearer ${status.token}` };
  }

  private async get(name: string): Promise<Cached> {
    const cached = this.cache.get(name);
    if (cached && cached.expiresAt > Date.now()) return cached;
    let run = this.pending.get(name);
    if (!run) {
      run = this.run(name, this.configs.get(name)!).finally(() => this.pending.delete(name));
      this.pending.set(name, run);
    }
    return run;
  }

  private async run(name: string, config: ExecConfig): Promise<Cached> {
    this.runs++;
    const apiVersion = config.apiVersion || DEFAULT_API_VERSION;
    const spec: Record<string, unknown> = { interactive: false };
    if (config.provideClusterInfo && this.cluster) {
      spec.cluster = {
        server: this.cluster.server,
        'tls-server-name': this.cluster.tlsServerName,
        'insecure-skip-tls-verify': this.cluster.skipTLSVerify || undefined,
        'certificate-authority-data': this.cluster.caData,
        'proxy-url': this.cluster.proxyUrl,
      };
    }
    const env: NodeJS.ProcessEnv = { ...this.env, KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion, kind: 'ExecCredential', spec }) };
    for (const e of config.env ?? []) env[e.name] = e.value;
    const stdout = await runPlugin(config.command, config.args ?? [], env, name);
    let credential: ExecCredential;
    try {
      credential = JSON.parse(stdout) as ExecCredential;
    } catch {
      throw new OperatorError(`exec plugin ${config.command} of user ${JSON.stringify(name)} printed no ExecCredential JSON`, 'run the plugin by hand and fix its output');
    }
    if (credential.apiVersion && credential.apiVersion !== apiVersion) {
      throw new OperatorError(
        `exec plugin ${config.command} answered ${credential.apiVersion}, the kubeconfig asks for ${apiVersion}`,
        'set users[].user.exec.apiVersion to what the plugin speaks',
      );
    }
    const s = credential.status ?? {};
    if (!s.token && !(s.clientCertificateData && s.clientKeyData)) {
      throw new OperatorError(`exec plugin ${config.command} of user ${JSON.stringify(name)} returned neither a token nor a client certificate`, 'run the plugin by hand and log in again');
    }
    const expires = s.expirationTimestamp ? Date.parse(s.expirationTimestamp) : Infinity;
    const cached = { credential, expiresAt: Number.isNaN(expires) ? Infinity : expires };
    this.cache.set(name, cached);
    return cached;
  }
}

function runPlugin(command: string, args: string[], env: NodeJS.ProcessEnv, user: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: PLUGIN_TIMEOUT_MS });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) =>
      reject(
        (e as NodeJS.ErrnoException).code === 'ENOENT'
          ? new OperatorError(`exec plugin ${command} of user ${JSON.stringify(user)} is not installed (not found on PATH)`, 'install it or fix users[].user.exec.command')
          : e,
      ),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      // A failing plugin may be transient (an identity provider down): the caller retries with backoff.
      else reject(new Error(`exec plugin ${command} exited with ${code}: ${err.trim().split('\n').slice(-1)[0] ?? ''}`));
    });
  });
}
