// API discovery, legacy and aggregated, as `kubectl api-resources` and every kubectl command read it.
// - Legacy (server.ts): /api -> APIVersions, /api/v1 -> APIResourceList, /apis -> APIGroupList,
//   /apis/<group>/<version> -> APIResourceList. The core list must not be empty: kubectl treats an
//   empty v1 as a failed group ("received empty response for: v1") and exits 1.
// - Aggregated (KEP-3352, GA in Kubernetes 1.30): a client that sends
//   `Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList` to /api or
//   /apis gets every group, version and resource in one APIGroupDiscoveryList, with that media
//   type as Content-Type; kubectl 1.30+ asks for it first and falls back to the legacy documents.
// The core group lists namespaces, the one core resource the simulated cluster has (every VM
// lives in one), read-only like the rest.
import { KINDS, RESOURCES, type Resource, type Store } from './store.js';

export const GROUP = 'kubevirt.io';
const READ = ['get', 'list', 'watch'];

export const CORE_RESOURCES = [
  { name: 'events', singularName: 'event', namespaced: true, kind: 'Event', verbs: ['create', 'delete', 'get', 'list', 'patch'], shortNames: ['ev'] },
  { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: READ, shortNames: ['ns'] },
];

export function coreResourceList(): unknown {
  return { kind: 'APIResourceList', groupVersion: 'v1', resources: CORE_RESOURCES };
}

export const AGGREGATED_TYPE = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

/** The aggregated media type the client asked for (v2, or v2beta1 from older kubectl), if any. */
export function wantsAggregated(accept: string | undefined): 'v2' | 'v2beta1' | undefined {
  if (!accept) return undefined;
  for (const part of accept.split(',')) {
    const p = part.split(';').map((s) => s.trim());
    if (!p.includes('as=APIGroupDiscoveryList') || !p.includes('g=apidiscovery.k8s.io')) continue;
    if (p.includes('v=v2')) return 'v2';
    if (p.includes('v=v2beta1')) return 'v2beta1';
  }
  return undefined;
}

/** APIGroupDiscoveryList for /api (the core group) or /apis (every served group and version). */
export function aggregatedDiscovery(path: '/api' | '/apis', version: 'v2' | 'v2beta1', served: readonly Resource[]): unknown {
  if (path === '/api') {
    const resources = CORE_RESOURCES.map((r) => ({
      resource: r.name,
      responseKind: { group: '', version: 'v1', kind: r.kind },
      scope: r.namespaced ? 'Namespaced' : 'Cluster',
      singularResource: r.singularName,
      verbs: r.verbs,
      shortNames: r.shortNames,
    }));
    return list(version, [{ metadata: { creationTimestamp: null }, versions: [{ version: 'v1', resources, freshness: 'Current' }] }]);
  }
  const groups = new Map<string, Map<string, unknown[]>>();
  for (const r of served) {
    const k = KINDS[r];
    const group = k.group ?? GROUP;
    const byVersion = groups.get(group) ?? new Map<string, unknown[]>();
    groups.set(group, byVersion);
    for (const v of k.versions ?? ['v1']) {
      const responseKind = { group, version: v, kind: k.kind };
      const entry: Record<string, unknown> = {
        resource: r,
        responseKind,
        scope: k.namespaced === false ? 'Cluster' : 'Namespaced',
        singularResource: k.singular,
        verbs: READ,
      };
      if (k.shortNames.length) entry.shortNames = k.shortNames;
      if (group === GROUP) {
        entry.categories = ['all'];
        entry.subresources = [{ subresource: 'status', responseKind, verbs: ['get'] }];
      }
      byVersion.set(v, [...(byVersion.get(v) ?? []), entry]);
    }
  }
  const items = [...groups].map(([name, byVersion]) => ({
    metadata: { name, creationTimestamp: null },
    // The preferred version first, as the legacy APIGroup's preferredVersion.
    versions: [...byVersion].map(([v, resources]) => ({ version: v, resources, freshness: 'Current' })),
  }));
  return list(version, items);
}

function list(version: string, items: unknown[]): unknown {
  return { kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${version}`, metadata: {}, items };
}

/** The namespaces that hold the simulated objects (the cluster has no other namespaced objects). */
export function namespaceList(store: Store): unknown {
  const names = new Set<string>();
  for (const r of RESOURCES) {
    for (const o of store.all(r)) {
      const ns = (o as { metadata?: { namespace?: unknown } })?.metadata?.namespace;
      if (typeof ns === 'string' && ns) names.add(ns);
    }
  }
  const items = [...names].sort().map((name) => ({ metadata: { name, labels: { 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } }));
  return { kind: 'NamespaceList', apiVersion: 'v1', metadata: { resourceVersion: String(store.resourceVersion) }, items };
}
