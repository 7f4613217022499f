// Kubernetes credentials as kubectl reads them. @kubernetes/client-node 1.4.0 does most of it: parsing
// a kubeconfig (loadFromFile, relative paths), the in-cluster service account (loadFromCluster, its
// token file re-read every minute), TLS options, tokens, token-file, client certificates, and agents
// for a kubeconfig's proxy-url (hpagent: CONNECT for https servers, absolute-URI for http ones).
// Written here, because 1.4.0 lacks it or does it otherwise than kubectl:
// - KUBECONFIG=a:b: client-node merges, but the LAST file's current-context wins, a name defined
//   twice throws, and a missing file throws; kubectl lets the first file win for every name and for
//   current-context and skips missing files.
// - no kubeconfig and no service account: client-node silently targets http://localhost:8080;
//   we refuse with one line (OperatorError).
// - HTTPS_PROXY / HTTP_PROXY / NO_PROXY: ignored by client-node; kubectl honours them.
// - exec plugins: client-node runs the plugin again on every request when the credential has no
//   expirationTimestamp, runs it once per concurrent request, never re-runs it on a 401 and sets no
//   KUBERNETES_EXEC_INFO. ExecCredentials (kube-exec.ts) replaces it through addAuthenticator.
// - a 401: nothing is re-read; here the kubeconfig (and with it token-file and the service account
//   token) is read again and exec credentials are dropped, once per 401 (refresh()).
import fs from 'node:fs';
import type https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig, type Cluster, type User } from '@kubernetes/client-node';
import { OperatorError } from '../lib/operator-error.js';
import { ExecCredentials, type ExecConfig } from './kube-exec.js';
import { proxyFor } from './kube-proxy.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface CredentialSource {
  /** Kubeconfig files in precedence order (first wins), or empty for the in-cluster account. */
  files: string[];
  /** Prefix of the service account directory (tests only: VM_SYNC_IN_CLUSTER_ROOT). */
  inClusterRoot: string | null;
}

/** Where the credentials come from, in kubectl's order: --kubeconfig/KUBECONFIG, ~/.kube/config, in-cluster. */
export function findCredentials(explicit: string | null, env: NodeJS.ProcessEnv = process.env): CredentialSource {
  const hint = 'point KUBECONFIG (or --kubeconfig) at a kubeconfig file, or unset it to use ~/.kube/config or the in-cluster service account';
  if (explicit) {
    const listed = explicit.split(path.delimiter).filter((f) => f !== '');
    const files = listed.filter((f) => fs.existsSync(f));
    if (files.length === 0) {
      const what = listed.length === 1 ? `kubeconfig file ${listed[0]} does not exist` : `none of the kubeconfig files ${listed.join(path.delimiter)} exists`;
      throw new OperatorError(what, hint);
    }
    return { files, inClusterRoot: null };
  }
  const home = env.HOME || os.homedir();
  const homeConfig = home ? path.join(home, '.kube', 'config') : '';
  if (homeConfig && fs.existsSync(homeConfig)) return { files: [homeConfig], inClusterRoot: null };
  const root = env.VM_SYNC_IN_CLUSTER_ROOT ?? '';
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && fs.existsSync(`${root}${SERVICE_ACCOUNT_DIR}/token`)) {
    return { files: [], inClusterRoot: root };
  }
  throw new OperatorError(
    `no Kubernetes credentials found: KUBECONFIG is not set, ${homeConfig || '~/.kube/config'} does not exist and this is not a pod with a service account`,
    'set KUBECONFIG (or --kubeconfig) to a kubeconfig file, or run in a pod with a service account',
  );
}

/** Merges kubeconfig files as kubectl does: the first file to define a name, or current-context, wins. */
function loadMerged(files: string[]): { kc: KubeConfig; userFiles: Map<string, string> } {
  const userFiles = new Map<string, string>();
  const clusters = new Map<string, Cluster>();
  const users = new Map<string, User>();
  const contexts = new Map<string, ReturnType<KubeConfig['getContexts']>[number]>();
  let currentContext = '';
  for (const file of files) {
    if (!fs.existsSync(file)) continue; // kubectl skips a listed file that is not there
    const kc = new KubeConfig();
    try {
      kc.loadFromFile(file);
    } catch (err) {
      throw new OperatorError(`kubeconfig ${file} cannot be read: ${(err as Error).message.split('\n')[0]}`, 'fix the file or point KUBECONFIG elsewhere', { cause: err });
    }
    for (const c of kc.getClusters()) if (!clusters.has(c.name)) clusters.set(c.name, c);
    for (const u of kc.getUsers()) {
      if (users.has(u.name)) continue;
      users.set(u.name, u);
      userFiles.set(u.name, file);
    }
    for (const x of kc.getContexts()) if (!contexts.has(x.name)) contexts.set(x.name, x);
    if (!currentContext && kc.getCurrentContext()) currentContext = kc.getCurrentContext();
  }
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [...clusters.values()], users: [...users.values()], contexts: [...contexts.values()], currentContext });
  return { kc, userFiles };
}

/** A relative exec command with a path separator is relative to its kubeconfig's folder, as in kubectl. */
function execCommand(command: string, file: string | undefined): string {
  if (!file || !command.includes('/') || path.isAbsolute(command)) return command;
  return path.resolve(path.dirname(file), command);
}

/** The credentials of the watcher's current context, re-readable on a 401. */
export class KubeCredentials {
  private kc!: KubeConfig;
  private readonly exec: ExecCredentials;
  private proxy: string | null = null;
  server = '';
  /** For the log and doctor: where the credentials came from. */
  description = '';
  /** Times the kubeconfig was read again after a 401. */
  refreshes = 0;

  constructor(
    private readonly source: CredentialSource,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.exec = new ExecCredentials(env);
    this.load();
  }

  static fromConfig(explicit: string | null, env: NodeJS.ProcessEnv = process.env): KubeCredentials {
    return new KubeCredentials(findCredentials(explicit, env), env);
  }

  private load(): void {
    const { kc, userFiles } = this.source.files.length ? loadMerged(this.source.files) : { kc: new KubeConfig(), userFiles: new Map<string, string>() };
    if (!this.source.files.length) kc.loadFromCluster(this.source.inClusterRoot ?? '');
    const where = this.source.files.length ? `kubeconfig ${this.source.files.join(path.delimiter)}` : 'the in-cluster service account';
    const context = kc.getCurrentContext();
    if (this.source.files.length && (!context || !kc.getContextObject(context))) {
      throw new OperatorError(
        context ? `${where} has no context named ${JSON.stringify(context)}` : `${where} sets no current-context`,
        'run `kubectl config use-context NAME` or set current-context in the file',
      );
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster) {
      throw new OperatorError(
        `${where}: context ${JSON.stringify(context)} names no cluster that the file defines`,
        'add the cluster (kubectl config set-cluster) or fix the context\'s cluster name',
      );
    }
    // exec users are served by ExecCredentials; without `exec` client-node's own ExecAuth skips them.
    const execs = new Map<string, ExecConfig>();
    for (const user of kc.getUsers()) {
      const exec = user.exec as ExecConfig | undefined;
      if (!exec?.command) continue;
      execs.set(user.name, { ...exec, command: execCommand(exec.command, userFiles.get(user.name)) });
      (user as { exec?: unknown }).exec = undefined;
    }
    this.exec.configure(execs, cluster);
    kc.addAuthenticator(this.exec);
    // A proxy-url in the kubeconfig wins; else the environment's, as kubectl (Go's ProxyFromEnvironment).
    this.proxy = cluster.proxyUrl ?? proxyFor(cluster.server, this.env);
    if (this.proxy) (cluster as { proxyUrl?: string }).proxyUrl = this.proxy;
    if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify && !this.proxy) {
      throw new OperatorError(
        `${where}: cluster ${JSON.stringify(cluster.name)} is plain http (${cluster.server}) without insecure-skip-tls-verify`,
        'use the https URL of the API server, or set insecure-skip-tls-verify: true for a plain-http test server',
      );
    }
    this.kc = kc;
    this.server = cluster.server.replace(/\/+$/, '');
    this.description = `${where}, context ${JSON.stringify(context)}`;
  }

  get proxyUrl(): string | null {
    return this.proxy;
  }

  get user(): string | null {
    return this.kc.getCurrentUser()?.name ?? null;
  }

  /** Headers, TLS options and agent (with its proxy) for one request. */
  async applyTo(opts: https.RequestOptions): Promise<void> {
    await this.kc.applyToHTTPSOptions(opts);
  }

  /**
   * After a 401: read the kubeconfig (or service account) again and forget exec credentials, so the
   * next request carries whatever the operator or the platform rotated in. A file that became
   * unreadable keeps the previous credentials.
   */
  refresh(): void {
    this.refreshes++;
    this.exec.invalidate();
    try {
      this.load();
    } catch {
      // The previous credentials stay; the caller backs off and the next 401 tries again.
    }
  }
}
