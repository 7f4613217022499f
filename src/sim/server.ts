// The Kubernetes side of the HTTP server: discovery, list (limit/continue/resourceVersion,
// selectors), get, and watch for kubevirt.io/v1 VirtualMachines and VirtualMachineInstances.
// Fault injection is applied here; the /sim/v1 control API is routed elsewhere.
import { stringifyDeep } from '../lib/json.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SimAuth } from './auth.js';
import type { Faults, RequestKind } from './faults.js';
import { combine, parseFieldSelector, parseLabelSelector, SelectorError } from './selectors.js';
import { sendJson, sendStatus } from './status.js';
import { ExpiredError, KINDS, RESOURCES, type Resource, type Store } from './store.js';
import { WatchStream } from './watch.js';
import { CoreEvents } from './events.js';
import { aggregatedDiscovery, AGGREGATED_TYPE, coreResourceList, namespaceList, wantsAggregated } from './discovery.js';
import { decodeContinue, encodeContinue } from './continue-token.js';
import { includeObjectOf, toTable, wantsTable, type IncludeObject } from './table.js';

export interface ApiOptions {
  /** Serve instancetype.kubevirt.io (default true); false: a cluster without KubeVirt's instancetype API. */
  instancetypeApi?: boolean;
  /** Interval between BOOKMARK events for allowWatchBookmarks=true watches (real server: ~1 minute). */
  bookmarkIntervalMs: number;
  /** Watch timeout when the client gives no timeoutSeconds (real server: 30-60 minutes). */
  defaultWatchTimeoutSeconds: number;
  /** Unread bytes after which a watch is forcibly closed. */
  maxWatchBufferBytes: number;
}

type PerResource = Record<Resource, number>;
const perResource = (): PerResource => Object.fromEntries(RESOURCES.map((r) => [r, 0])) as PerResource;

/** What the server has done, for tests to assert "relisted" or "resumed without relisting". */
export interface Counters {
  /** Every Kubernetes API request (not /sim/v1). */
  requests: number;
  lists: PerResource;
  watches: PerResource;
  gets: PerResource;
  /** ADDED/MODIFIED/DELETED events written to watch streams. */
  eventsSent: PerResource;
  bookmarksSent: number;
  /** Watches answered 410 Expired (as HTTP status or as an ERROR event). */
  watchesExpired: number;
  /** Continue tokens refused with 410 Expired. */
  listsExpired: number;
  /** Requests answered with an injected failure status. */
  injectedFailures: number;
  /** Watch streams open right now. */
  activeWatches: PerResource;
}

export function newCounters(): Counters {
  return {
    requests: 0,
    lists: perResource(),
    watches: perResource(),
    gets: perResource(),
    eventsSent: perResource(),
    bookmarksSent: 0,
    watchesExpired: 0,
    listsExpired: 0,
    injectedFailures: 0,
    activeWatches: perResource(),
  };
}

const GROUP = 'kubevirt.io';

const groupOf = (r: Resource): string => KINDS[r].group ?? GROUP;
const versionsOf = (r: Resource): string[] => KINDS[r].versions ?? ['v1'];

function apiResourceList(group: string, version: string, served: readonly Resource[]): unknown {
  const resources: unknown[] = [];
  for (const r of served) {
    const k = KINDS[r];
    if (groupOf(r) !== group || !versionsOf(r).includes(version)) continue;
    const namespaced = k.namespaced !== false;
    resources.push({ name: r, singularName: k.singular, namespaced, kind: k.kind, verbs: ['get', 'list', 'watch'], ...(k.shortNames.length ? { shortNames: k.shortNames } : {}), ...(group === GROUP ? { categories: ['all'] } : {}) });
    if (group === GROUP) resources.push({ name: `${r}/status`, singularName: '', namespaced, kind: k.kind, verbs: ['get'] });
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: `${group}/${version}`, resources };
}

/** The APIGroup document of each group the served resources belong to. */
function groupBodies(served: readonly Resource[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const r of served) {
    const group = groupOf(r);
    if (out.has(group)) continue;
    const versions = versionsOf(r);
    out.set(group, {
      name: group,
      versions: versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v })),
      preferredVersion: { groupVersion: `${group}/${versions[0]}`, version: versions[0] },
    });
  }
  return out;
}

function parseRv(value: string): number | undefined {
  return /^\d+$/.test(value) ? Number(value) : undefined;
}

interface Route {
  resource: Resource;
  groupVersion: string;
  namespace?: string;
  name?: string;
}

/** /apis/{group}/{version}[/namespaces/{ns}]/{resource}[/{name}[/status]], for the served resources. */
function parseRoute(path: string, served: readonly Resource[]): Route | undefined {
  const m = /^\/apis\/([^/]+)\/([^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+)(\/status)?)?\/?$/.exec(path);
  if (!m) return undefined;
  const resource = m[4] as Resource;
  if (!served.includes(resource) || groupOf(resource) !== m[1] || !versionsOf(resource).includes(m[2]!)) return undefined;
  const namespaced = KINDS[resource].namespaced !== false;
  if (!namespaced && m[3] !== undefined) return undefined; // a cluster-scoped kind has no namespaced path
  if (namespaced && m[5] !== undefined && m[3] === undefined) return undefined; // namespaced objects have no cluster-scope get
  // Cluster-scoped objects are stored under "/<name>".
  return { resource, groupVersion: `${m[1]}/${m[2]}`, namespace: namespaced ? m[3] && decodeURIComponent(m[3]) : undefined, name: m[5] && decodeURIComponent(m[5]) };
}

export class ApiServer {
  readonly streams = new Set<WatchStream>();
  /** Core v1 Events (POST, PATCH, GET, list). */
  readonly coreEvents = new CoreEvents();
  /** Called whenever something countable happens (request, event sent, stream closed): wakes waiters. */
  onActivity: () => void = () => undefined;
  /** Tokens and RBAC (off until a token is allowed), SelfSubjectAccessReview, kube-system. */
  readonly auth = new SimAuth();

  /** The resources this server serves: all of them, or all but the instancetype API's. */
  private served: readonly Resource[];

  constructor(
    private readonly store: Store,
    private readonly faults: Faults,
    readonly counters: Counters,
    private readonly opts: ApiOptions,
  ) {
    this.served = opts.instancetypeApi === false ? RESOURCES.filter((r) => groupOf(r) !== 'instancetype.kubevirt.io') : RESOURCES;
    store.onChange((ev) => {
      for (const s of this.streams) s.deliver(ev);
    });
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    this.counters.requests++;
    this.onActivity();
    const who = this.auth.authenticate(req);
    if (!who) {
      this.auth.unauthorized++;
      return sendStatus(res, 401, 'Unauthorized', { reason: 'Unauthorized' });
    }
    if (this.auth.handle(req, res, url, who)) return;
    const route = parseRoute(url.pathname, this.served);
    const isWatch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    const kind: RequestKind = !route ? 'discovery' : route.name ? 'get' : isWatch ? 'watch' : 'list';
    if (route) {
      const asked = { verb: kind, group: groupOf(route.resource), resource: route.resource, namespace: route.namespace };
      if (!this.auth.can(who, asked)) return this.auth.refuse(res, who, asked, route.name);
    }
    const failure = this.faults.failureAnswerFor(kind);
    if (failure !== undefined) {
      this.counters.injectedFailures++;
      return sendStatus(res, failure.status, failure.status === 429 ? 'Too many requests, please try again later.' : `simulated failure (HTTP ${failure.status})`, {
        retryAfterSeconds: failure.retryAfterSeconds,
      });
    }
    if (this.faults.slowMs > 0) await new Promise((r) => setTimeout(r, this.faults.slowMs));
    if (res.destroyed) return;
    if (!route && CoreEvents.matches(url.pathname)) return this.coreEvents.handle(req, res, url);
    if (req.method !== 'GET') return sendStatus(res, 405, `the server does not allow this method on the requested resource`);
    if (!route) return this.discovery(url.pathname, req, res);
    if (route.name !== undefined) return this.get(route, res);
    try {
      const match = combine(parseLabelSelector(url.searchParams.get('labelSelector')), parseFieldSelector(url.searchParams.get('fieldSelector')));
      const table = wantsTable(req.headers.accept) ? includeObjectOf(url.searchParams) : undefined;
      if (isWatch) return this.watch(route, url.searchParams, match, res, table);
      return this.list(route, url.searchParams, match, res, table);
    } catch (err) {
      if (err instanceof SelectorError) return sendStatus(res, 400, err.message);
      throw err;
    }
  }

  private discovery(path: string, req: IncomingMessage, res: ServerResponse): void {
    const p = path.replace(/\/+$/, '') || '/';
    const aggregated = wantsAggregated(req.headers.accept);
    if (aggregated && (p === '/api' || p === '/apis')) {
      return sendJson(res, 200, aggregatedDiscovery(p, aggregated, this.served), { 'Content-Type': AGGREGATED_TYPE.replace('v=v2', `v=${aggregated}`) });
    }
    switch (p) {
      case '/version':
        return sendJson(res, 200, {
          major: '1',
          minor: '33',
          gitVersion: 'v1.33.1',
          gitCommit: '0000000000000000000000000000000000000000',
          gitTreeState: 'clean',
          buildDate: '2025-05-15T00:00:00Z',
          goVersion: 'go1.24.2',
          compiler: 'gc',
          platform: 'linux/amd64',
        });
      case '/api':
        return sendJson(res, 200, {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: req.headers.host ?? '127.0.0.1' }],
        });
      case '/api/v1':
        return sendJson(res, 200, coreResourceList());
      case '/api/v1/namespaces':
        return sendJson(res, 200, namespaceList(this.store));
      case '/apis':
        return sendJson(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [...groupBodies(this.served).values()] });
      case '/healthz':
      case '/readyz':
      case '/livez':
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        return void res.end('ok');
      default: {
        // /apis/{group} and /apis/{group}/{version} of the served groups.
        const m = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(p);
        const body = m ? (groupBodies(this.served).get(m[1]!) as { versions: { version: string }[] } | undefined) : undefined;
        if (m && body && m[2] === undefined) return sendJson(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...body });
        if (m && body && body.versions.some((v) => v.version === m[2])) return sendJson(res, 200, apiResourceList(m[1]!, m[2]!, this.served));
        return sendStatus(res, 404, 'the server could not find the requested resource');
      }
    }
  }

  private get(route: Route, res: ServerResponse): void {
    this.counters.gets[route.resource]++;
    const obj = this.store.get(route.resource, `${route.namespace ?? ''}/${route.name}`);
    if (obj === undefined) {
      const group = groupOf(route.resource);
      return sendStatus(res, 404, `${route.resource}.${group} "${route.name}" not found`, {
        details: { name: route.name, group, kind: route.resource },
      });
    }
    sendJson(res, 200, obj);
  }

  private list(route: Route, q: URLSearchParams, match: ((o: unknown) => boolean) | undefined, res: ServerResponse, table?: IncludeObject): void {
    this.counters.lists[route.resource]++;
    const limit = Math.max(0, Number.parseInt(q.get('limit') ?? '0', 10) || 0);
    const token = q.get('continue');
    const rvParam = q.get('resourceVersion') ?? '';
    const rvMatch = q.get('resourceVersionMatch') ?? '';
    const current = this.store.resourceVersion;
    let snapshotRv = current;
    let after = '';
    let pageNo = 1;
    if (token) {
      if (rvParam !== '' && rvParam !== '0') return sendStatus(res, 400, 'specifying resource version is not allowed when using continue');
      const t = decodeContinue(token);
      if (!t) return sendStatus(res, 400, 'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
      after = t.after;
      pageNo = t.page + 1;
      // rv 0 marks the "inconsistent" token handed out with a 410: continue at the latest state.
      snapshotRv = t.rv === 0 ? current : t.rv;
    } else if (rvParam !== '' && rvParam !== '0') {
      const n = parseRv(rvParam);
      if (n === undefined) return sendStatus(res, 400, `invalid resource version: ${rvParam}`);
      if (n > current) {
        return sendStatus(res, 504, `Too large resource version: ${n}, current: ${current}`, {
          reason: 'Timeout',
          details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 },
        });
      }
      // Exact explicitly, or legacy semantics: a non-zero resourceVersion with limit is an exact snapshot.
      if (rvMatch === 'Exact' || (rvMatch === '' && limit > 0)) snapshotRv = n;
    }
    const pageFailure = this.faults.pageFailureFor(route.resource, pageNo);
    if (pageFailure?.mode === 'status') {
      this.counters.injectedFailures++;
      return sendStatus(res, pageFailure.status, `simulated failure of list page ${pageNo} (HTTP ${pageFailure.status})`, { retryAfterSeconds: pageFailure.retryAfterSeconds });
    }
    let page;
    try {
      page = this.store.page(route.resource, { snapshotRv, after, namespace: route.namespace, limit, match });
    } catch (err) {
      if (!(err instanceof ExpiredError)) throw err;
      this.counters.listsExpired++;
      if (token) {
        return sendStatus(
          res,
          410,
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
          { continue: encodeContinue(0, after, pageNo - 1) },
        );
      }
      return sendStatus(res, 410, `too old resource version: ${snapshotRv} (${this.store.oldestResourceVersion})`);
    }
    const meta: Record<string, unknown> = { resourceVersion: String(snapshotRv) };
    if (page.nextAfter !== undefined) {
      meta.continue = encodeContinue(snapshotRv, page.nextAfter, pageNo);
      if (page.remaining !== undefined) meta.remainingItemCount = page.remaining;
    }
    if (table) return sendJson(res, 200, toTable(route.resource, page.items, meta, table), { 'Content-Type': 'application/json;as=Table;v=v1;g=meta.k8s.io' });
    // Items are serialized one by one into the envelope: no intermediate list object.
    const { listKind } = KINDS[route.resource];
    const body = `{"apiVersion":"${route.groupVersion}","items":[${page.items.map((o) => stringifyDeep(o)).join(',')}],"kind":"${listKind}","metadata":${JSON.stringify(meta)}}`;
    if (pageFailure?.mode === 'cut') {
      // Headers and half the page, then the connection drops (a proxy or the server restarting).
      this.counters.injectedFailures++;
      const bytes = Buffer.from(body, 'utf8');
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': bytes.length });
      res.write(bytes.subarray(0, bytes.length >> 1), () => res.destroy());
      return;
    }
    sendJson(res, 200, body);
  }

  private watch(route: Route, q: URLSearchParams, match: ((o: unknown) => boolean) | undefined, res: ServerResponse, table?: IncludeObject): void {
    this.counters.watches[route.resource]++;
    const rvParam = q.get('resourceVersion') ?? '';
    let sinceRv: number | undefined;
    if (rvParam !== '' && rvParam !== '0') {
      sinceRv = parseRv(rvParam);
      if (sinceRv === undefined) return sendStatus(res, 400, `invalid resource version: ${rvParam}`);
    }
    const timeoutSeconds = Number.parseInt(q.get('timeoutSeconds') ?? '', 10);
    const stream = new WatchStream(
      res,
      this.store,
      {
        resource: route.resource,
        namespace: route.namespace,
        match,
        sinceRv,
        allowBookmarks: q.get('allowWatchBookmarks') === 'true',
        bookmarkIntervalMs: this.opts.bookmarkIntervalMs,
        timeoutMs: (Number.isFinite(timeoutSeconds) && timeoutSeconds > 0 ? timeoutSeconds : this.opts.defaultWatchTimeoutSeconds) * 1000,
        maxBufferedBytes: this.opts.maxWatchBufferBytes,
        table: table ? (obj, first) => toTable(route.resource, [obj], {}, table, first) : undefined,
      },
      {
        onEventSent: (resource, type) => {
          if (type === 'BOOKMARK') this.counters.bookmarksSent++;
          else if (type !== 'ERROR') this.counters.eventsSent[resource]++;
          this.onActivity();
        },
        onClose: (s) => {
          if (this.streams.delete(s)) this.counters.activeWatches[s.spec.resource]--;
          this.onActivity();
        },
      },
    );
    const forced = this.faults.takeForced410(route.resource);
    const expire = (mode: 'event' | 'http', message: string): void => {
      this.counters.watchesExpired++;
      if (mode === 'http') sendStatus(res, 410, message);
      else stream.fail(410, message);
    };
    if (forced) return expire(forced, `too old resource version: ${rvParam || 0} (${this.store.resourceVersion})`);
    const current = this.store.resourceVersion;
    if (sinceRv !== undefined && sinceRv > current) {
      // The watch cache waits ~3s for the revision, then gives up with a 504 Timeout error event.
      return stream.fail(504, `Too large resource version: ${sinceRv}, current: ${current}`, 'Timeout');
    }
    this.streams.add(stream);
    this.counters.activeWatches[route.resource]++;
    this.onActivity();
    try {
      stream.start(this.faults.stallNew);
    } catch (err) {
      if (!(err instanceof ExpiredError)) throw err;
      expire(this.faults.expiredMode, err.message);
    }
  }

  /** Installs (or removes) the instancetype API while running, as installing KubeVirt's CRDs would. */
  setInstancetypeApi(on: boolean): void {
    this.served = on ? RESOURCES : RESOURCES.filter((r) => groupOf(r) !== 'instancetype.kubevirt.io');
  }

  /** Ends every open watch (of `resource` only, when given): abruptly (socket destroyed) or cleanly (terminating chunk). */
  dropStreams(graceful = false, resource?: Resource): number {
    const all = [...this.streams].filter((s) => !resource || s.spec.resource === resource);
    for (const s of all) (graceful ? s.end(false) : s.drop());
    return all.length;
  }

  stallStreams(): void {
    for (const s of this.streams) s.stall();
  }

  resumeStreams(): void {
    for (const s of [...this.streams]) s.resume();
  }
}
