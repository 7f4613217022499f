// What the watcher may be granted in Kubernetes: read-only verbs on what it lists and watches, and
// one write exception, `create, patch` on core Events (it posts an Event on an object it cannot
// store); and `get` of the one namespace kube-system, by name only (its uid identifies the cluster).
// Shared by the RBAC test (the files in deploy/) and the manifest test (rendered overlays).

export type Doc = Record<string, any>;

export const READ_VERBS = new Set(['get', 'list', 'watch']);

/** apiGroup -> resources the watcher may read. */
export const READABLE: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['kubevirt.io', new Set(['virtualmachines', 'virtualmachineinstances', 'virtualmachines/status', 'virtualmachineinstances/status'])],
  [
    'instancetype.kubevirt.io',
    new Set(['virtualmachineinstancetypes', 'virtualmachineclusterinstancetypes', 'virtualmachinepreferences', 'virtualmachineclusterpreferences']),
  ],
  ['apps', new Set(['controllerrevisions'])],
]);

/** The one write exception: core-group events, create and patch (and reading them is harmless). */
export const EVENT_VERBS = new Set(['create', 'patch', 'get', 'list', 'watch']);

/** The one namespace the watcher reads (cluster-identity.ts), and only with `get` of it by name. */
export const CLUSTER_IDENTITY_NAMESPACE = 'kube-system';

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);

/** Problems with one RBAC rule, or [] when every (group, resource, verb) it grants is allowed. */
export function ruleProblems(rule: Doc): string[] {
  const problems: string[] = [];
  if (rule.nonResourceURLs) problems.push(`nonResourceURLs ${JSON.stringify(rule.nonResourceURLs)}`);
  if (rule.resourceNames !== undefined && !Array.isArray(rule.resourceNames)) problems.push('resourceNames not a list');
  const groups = list(rule.apiGroups);
  const resources = list(rule.resources);
  const verbs = list(rule.verbs);
  if (groups.length === 0) problems.push('no apiGroups');
  if (resources.length === 0 && !rule.nonResourceURLs) problems.push('no resources');
  if (verbs.length === 0) problems.push('no verbs');
  const names = list(rule.resourceNames);
  const onlyKubeSystem = names.length === 1 && names[0] === CLUSTER_IDENTITY_NAMESPACE;
  for (const g of groups) {
    for (const r of resources) {
      for (const v of verbs) {
        const readable = READABLE.get(g)?.has(r) === true && READ_VERBS.has(v);
        const eventWrite = g === '' && r === 'events' && EVENT_VERBS.has(v);
        const identity = g === '' && r === 'namespaces' && v === 'get' && onlyKubeSystem;
        if (g === '' && r === 'namespaces' && v === 'get' && !onlyKubeSystem) {
          problems.push(`get core/namespaces ${names.length ? `named ${names.join(', ')}` : 'of every namespace'} (only resourceNames: [${CLUSTER_IDENTITY_NAMESPACE}])`);
        } else if (!readable && !eventWrite && !identity) problems.push(`${v} ${g || 'core'}/${r}`);
      }
    }
  }
  return problems;
}

/** Problems with a Role or ClusterRole. */
export function roleProblems(doc: Doc): string[] {
  const where = `${doc.kind} ${doc.metadata?.name}`;
  const problems: string[] = [];
  if (doc.aggregationRule !== undefined) problems.push(`${where}: aggregates other roles`);
  for (const rule of doc.rules ?? []) for (const p of ruleProblems(rule)) problems.push(`${where}: ${p}`);
  return problems;
}
