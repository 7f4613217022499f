// The checks of `ssvirt-vm-sync doctor`, in the order a setup is built: each returns a verdict, what
// it found and, when it did not pass, the fix. A check that depends on an earlier failed one is
// skipped, so the first FAIL is the step to repair.
import net from 'node:net';
import pg from 'pg';
import { checkDatabaseUrl, ConfigError } from '../lib/config.js';
import { brief, fromPgError, OperatorError, urlParts } from '../lib/operator-error.js';
import { probeSessionPooling } from '../pg/pooler.js';
import { readSchemaState, schemaProblem, writerProblem, type SchemaState } from '../pg/schema-check.js';
import { KubeCredentials } from '../watcher/kube-auth.js';
import { KubeApiError, KubeClient } from '../watcher/kube-client.js';
import { CORE_RESOURCES, INSTANCETYPE_GROUP, instancetypeResources, scopesOf, type Resource } from '../watcher/resources.js';

export type Verdict = 'ok' | 'warn' | 'fail' | 'skip';

export interface Check {
  name: string;
  verdict: Verdict;
  /** What was found. */
  detail: string;
  /** What to do, when the verdict is not ok. */
  fix?: string;
}

export interface DoctorInput {
  databaseUrl: string | null;
  kubeconfig: string | null;
  namespaces: readonly string[];
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
}

const fail = (name: string, err: unknown, fallbackFix: string): Check =>
  err instanceof OperatorError
    ? { name, verdict: 'fail', detail: err.message, fix: err.hint }
    : { name, verdict: 'fail', detail: brief(err), fix: fallbackFix };

/** Runs every check; never throws. */
export async function runChecks(input: DoctorInput): Promise<Check[]> {
  const [database, kubernetes] = await Promise.all([databaseChecks(input), kubernetesChecks(input)]);
  // The pooler check runs with the database ones but reads best last (it needs a working setup).
  const pooler = database.pop()!;
  return [...database, ...kubernetes, pooler];
}

async function databaseChecks(input: DoctorInput): Promise<Check[]> {
  const names = ['database URL', 'database server answers', 'authentication', 'schema version', 'role privileges', 'pooler (session mode)'];
  const out: Check[] = [];
  const skipRest = (): Check[] => [...out, ...names.slice(out.length).map((name) => ({ name, verdict: 'skip' as const, detail: 'an earlier step failed' }))];

  // 1. the URL parses
  const url = input.databaseUrl;
  try {
    if (!url) throw new ConfigError('DATABASE_URL is not set');
    checkDatabaseUrl(url);
    const p = urlParts(url);
    out.push({ name: names[0]!, verdict: 'ok', detail: `user ${p.user ?? '(default)'}, host ${p.host ?? '(socket)'}, database ${p.database ?? '(default)'}` });
  } catch (err) {
    out.push({ name: names[0]!, verdict: 'fail', detail: (err as Error).message, fix: 'set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/DATABASE (percent-encode special characters)' });
    return skipRest();
  }
  // 2. something listens there
  const u = new URL(url);
  const host = u.hostname || u.searchParams.get('host') || 'localhost';
  const port = Number(u.port || 5432);
  if (!host.startsWith('/')) {
    try {
      await tcpProbe(host.replace(/^\[|\]$/g, ''), port, input.timeoutMs);
      out.push({ name: names[1]!, verdict: 'ok', detail: `${host}:${port} accepts connections` });
    } catch (err) {
      out.push({ name: names[1]!, verdict: 'fail', detail: `${host}:${port}: ${brief(err)}`, fix: 'check the host and port in DATABASE_URL, that PostgreSQL runs, and that no firewall or NetworkPolicy blocks it' });
      return skipRest();
    }
  } else {
    out.push({ name: names[1]!, verdict: 'ok', detail: `Unix socket ${host}` });
  }
  // 3. the login
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: input.timeoutMs, application_name: 'ssvirt-vm-sync doctor' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const who = await client.query<{ user: string; db: string; version: string }>(`select current_user as user, current_database() as db, current_setting('server_version') as version`);
    out.push({ name: names[2]!, verdict: 'ok', detail: `logged in as ${who.rows[0]!.user} to ${who.rows[0]!.db} (PostgreSQL ${who.rows[0]!.version})` });
  } catch (err) {
    await client.end().catch(() => undefined);
    out.push(fail(names[2]!, fromPgError(err, { phase: 'connect', ...urlParts(url) }) ?? err, 'check DATABASE_URL'));
    return skipRest();
  }
  try {
    // 4. the schema, 5. the privileges
    let state: SchemaState;
    try {
      state = await readSchemaState(client);
    } catch (err) {
      out.push(fail(names[3]!, fromPgError(err, { phase: 'run', ...urlParts(url) }) ?? err, 'run `ssvirt-vm-sync migrate` as the database owner'));
      return skipRest();
    }
    const schema = schemaProblem(state);
    if (schema) {
      out.push(fail(names[3]!, schema, ''));
      return skipRest();
    }
    out.push({ name: names[3]!, verdict: 'ok', detail: `migrated to ${state.version}` });
    const writer = writerProblem(state);
    if (writer) out.push(fail(names[4]!, writer, ''));
    else out.push({ name: names[4]!, verdict: 'ok', detail: `${state.role} is ${state.owner ? 'the schema owner' : 'a vm_sync_writer member'}: it may run the watcher` });
  } finally {
    await client.end().catch(() => undefined);
  }
  // The pooler: session-level behaviour (the same backend across two transactions), shared with `run`.
  try {
    const probe = await probeSessionPooling(url, { timeoutMs: input.timeoutMs });
    out.push(
      probe?.problem
        ? { name: names[5]!, verdict: 'fail', detail: probe.problem, fix: 'connect the watcher directly, or through a pooler in session mode (pool_mode = session); see docs/deployment.md' }
        : { name: names[5]!, verdict: 'ok', detail: 'the same server session across transactions' },
    );
  } catch (err) {
    out.push(fail(names[5]!, err, 'check the connection (the probe opens two sessions)'));
  }
  return out;
}

async function kubernetesChecks(input: DoctorInput): Promise<Check[]> {
  const names = ['kubeconfig and cluster', 'RBAC: list and watch', 'RBAC: cluster identity', 'instancetype API'];
  const out: Check[] = [];
  const skipRest = (): Check[] => [...out, ...names.slice(out.length).map((name) => ({ name, verdict: 'skip' as const, detail: 'an earlier step failed' }))];
  const signal = AbortSignal.timeout(Math.max(input.timeoutMs * 4, 10_000));
  let kube: KubeClient;
  try {
    const credentials = KubeCredentials.fromConfig(input.kubeconfig, input.env);
    kube = new KubeClient({ kubeconfig: input.kubeconfig, requestTimeoutMs: input.timeoutMs, credentials });
    const version = (await kube.getJson('/version', signal)) as { gitVersion?: string };
    out.push({ name: names[0]!, verdict: 'ok', detail: `${kube.server} (${version.gitVersion ?? 'version unknown'}) via ${credentials.description}${credentials.proxyUrl ? `, proxy ${credentials.proxyUrl}` : ''}` });
  } catch (err) {
    const fix = err instanceof KubeApiError && err.status === 401 ? 'log in again (oc login / refresh the token) or fix the user in the kubeconfig' : 'check the server URL, CA and network path to the API server';
    out.push(fail(names[0]!, err, fix));
    return skipRest();
  }
  const who = kube.credentials.user ?? 'this identity';
  /** The SelfSubjectAccessReviews of `verbs` on `resources`, as "verb resource.group scope" of each denied. */
  const denials = async (resources: readonly Resource[], verbs: readonly string[]): Promise<{ asked: number; denied: string[] }> => {
    const denied: string[] = [];
    let asked = 0;
    for (const r of resources) {
      for (const scope of scopesOf(r, input.namespaces)) {
        for (const verb of verbs) {
          asked++;
          if (!(await allowed(kube, { verb, group: r.group, resource: r.plural, ...(scope ? { namespace: scope } : {}) }, signal))) {
            denied.push(`${verb} ${r.plural}${r.group ? `.${r.group}` : ''} ${scope ? `in ${scope}` : 'cluster-wide'}`);
          }
        }
      }
    }
    return { asked, denied };
  };
  // VMs and VMIs: without them the watcher cannot start (exit 2 on the cold-start list).
  try {
    const { asked, denied } = await denials(CORE_RESOURCES, ['list', 'watch']);
    out.push(
      denied.length
        ? { name: names[1]!, verdict: 'fail', detail: `denied: ${denied.join('; ')}`, fix: `grant get, list and watch on those resources to ${who} (deploy/ has the ClusterRole)` }
        : { name: names[1]!, verdict: 'ok', detail: `${asked} SelfSubjectAccessReviews allowed (${CORE_RESOURCES.map((r) => r.plural).join(', ')})` },
    );
  } catch (err) {
    out.push(fail(names[1]!, err, 'the API server must answer SelfSubjectAccessReview (authorization.k8s.io/v1)'));
    return skipRest();
  }
  // The cluster identity: without it the watcher keys its checkpoints by the server URL (a warning).
  try {
    const ok = await allowed(kube, { verb: 'get', group: '', resource: 'namespaces', name: 'kube-system' }, signal);
    out.push(
      ok
        ? { name: names[2]!, verdict: 'ok', detail: 'get namespace kube-system allowed (its uid identifies the cluster)' }
        : {
            name: names[2]!,
            verdict: 'warn',
            detail: 'denied: get namespace kube-system; the checkpoints are keyed by the API server URL instead of the cluster',
            fix: `grant get on namespaces with resourceNames [kube-system] to ${who} (deploy/ has the rule)`,
          },
    );
  } catch (err) {
    out.push(fail(names[2]!, err, 'the API server must answer SelfSubjectAccessReview (authorization.k8s.io/v1)'));
    return skipRest();
  }
  // The instancetype API is optional; served but unreadable, its watches never start (/readyz stays false).
  let group: Awaited<ReturnType<KubeClient['discoverGroup']>>;
  try {
    group = await kube.discoverGroup(INSTANCETYPE_GROUP, signal);
  } catch (err) {
    out.push(fail(names[3]!, err, 'check the API server'));
    return out;
  }
  if (!group) {
    out.push({ name: names[3]!, verdict: 'warn', detail: `${INSTANCETYPE_GROUP} is not served`, fix: 'VMs and VMIs sync; VMs created from an instancetype get their size only while they run (install the instancetype API to size stopped ones)' });
    return out;
  }
  const resources = instancetypeResources(group.preferredVersion);
  try {
    const { asked, denied } = await denials(resources, ['list', 'watch']);
    out.push(
      denied.length
        ? {
            name: names[3]!,
            verdict: 'fail',
            detail: `${INSTANCETYPE_GROUP} served at ${group.preferredVersion}, but denied: ${denied.join('; ')}`,
            fix: `grant get, list and watch on those resources to ${who} (deploy/ has the ClusterRole): the watcher watches them when the API is served`,
          }
        : { name: names[3]!, verdict: 'ok', detail: `${INSTANCETYPE_GROUP} served at ${group.preferredVersion}; ${asked} SelfSubjectAccessReviews allowed (${resources.map((r) => r.plural).join(', ')})` },
    );
  } catch (err) {
    out.push(fail(names[3]!, err, 'the API server must answer SelfSubjectAccessReview (authorization.k8s.io/v1)'));
  }
  return out;
}

/** One SelfSubjectAccessReview: may the caller do this? */
async function allowed(kube: KubeClient, attributes: Record<string, string>, signal: AbortSignal): Promise<boolean> {
  const review = await kube.post(
    '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
    { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: attributes } },
    signal,
  );
  return (review.body as { status?: { allowed?: boolean } }).status?.allowed === true;
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => socket.destroy(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.end();
      resolve();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
