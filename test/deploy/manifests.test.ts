// Both overlays, rendered by the real `kubectl kustomize`, checked object by object: every pod spec
// against OpenShift's restricted-v2 SCC and Pod Security "restricted" (test/deploy/pod-rules.ts),
// every Role/ClusterRole for read-only verbs (the Events exception aside), every container for
// probes, requests/limits and no credentials; the Service, ServiceMonitor, PDB and NetworkPolicy
// select the pods. The checkers are also run on mutated manifests, so this test can fail.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { roleProblems, type Doc } from '../helpers/rbac-rules.js';
import { credentialLike, podSpecOf, podSpecProblems } from './pod-rules.js';
import { kubectlMissing, kustomize } from './render.js';

const skip = kubectlMissing() ?? false;
const OVERLAYS = ['deploy/overlays/openshift', 'deploy/overlays/kubernetes', 'deploy'] as const;
const rendered = new Map<string, Doc[]>();

const clone = <T>(v: T): T => structuredClone(v);
const one = (docs: Doc[], kind: string): Doc => {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!;
};
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

before(async () => {
  if (skip) return;
  for (const dir of OVERLAYS) rendered.set(dir, await kustomize(dir));
});

describe('rendered overlays', { skip }, () => {
  for (const dir of OVERLAYS) {
    test(`${dir}: every pod spec passes restricted-v2 and Pod Security restricted, with probes and limits`, () => {
      const docs = rendered.get(dir)!;
      const workloads = docs.filter((d) => podSpecOf(d) !== null);
      assert.ok(workloads.length > 0);
      for (const w of workloads) assert.deepEqual(podSpecProblems(podSpecOf(w)!), [], `${w.kind} ${w.metadata.name}`);
    });

    test(`${dir}: every Role and ClusterRole is read-only, Events create/patch aside`, () => {
      const roles = rendered.get(dir)!.filter((d) => d.kind === 'Role' || d.kind === 'ClusterRole');
      assert.ok(roles.length > 0);
      for (const r of roles) assert.deepEqual(roleProblems(r), []);
      // The cluster identity: get of the kube-system namespace, by name and nothing more.
      const identity = roles.flatMap((r) => r.rules ?? []).filter((rule: Doc) => (rule.resources ?? []).includes('namespaces'));
      assert.deepEqual(
        identity.map((rule: Doc) => [rule.apiGroups, rule.resourceNames, rule.verbs]),
        [[[''], ['kube-system'], ['get']]],
        'the watcher reads namespace kube-system (its uid keys the checkpoints) and no other',
      );
      const bindings = rendered.get(dir)!.filter((d) => d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding');
      const names = new Set(roles.map((r) => `${r.kind}/${r.metadata.name}`));
      for (const b of bindings) {
        assert.ok(names.has(`${b.roleRef.kind}/${b.roleRef.name}`), `${b.metadata.name} binds a role of ours`);
        for (const s of b.subjects) assert.deepEqual([s.kind, s.name, s.namespace], ['ServiceAccount', 'ssvirt-vm-sync', 'ssvirt']);
      }
    });

    test(`${dir}: two replicas, a PDB, a metrics Service and a NetworkPolicy that select them; no credentials`, () => {
      const docs = rendered.get(dir)!;
      const dep = one(docs, 'Deployment');
      assert.equal(dep.spec.replicas, 2);
      assert.equal(dep.metadata.namespace, 'ssvirt');
      const podLabels = dep.spec.template.metadata.labels;
      assert.ok(matches(dep.spec.selector.matchLabels, podLabels));
      const pdb = one(docs, 'PodDisruptionBudget');
      assert.ok(matches(pdb.spec.selector.matchLabels, podLabels));
      assert.ok(pdb.spec.maxUnavailable === 1 || pdb.spec.minAvailable === 1, 'a drain leaves one replica');
      const svc = one(docs, 'Service');
      assert.ok(matches(svc.spec.selector, podLabels));
      assert.equal(svc.spec.publishNotReadyAddresses, true, 'an unready leader (watches down) is still scraped');
      const containerPorts = dep.spec.template.spec.containers.flatMap((c: Doc) => c.ports ?? []);
      assert.ok(containerPorts.some((p: Doc) => p.name === svc.spec.ports[0].targetPort), 'the Service targets the metrics port');
      const np = one(docs, 'NetworkPolicy');
      assert.ok(matches(np.spec.podSelector.matchLabels, podLabels));
      assert.deepEqual([...np.spec.policyTypes].sort(), ['Egress', 'Ingress']);
      assert.deepEqual(np.spec.ingress.flatMap((r: Doc) => r.ports.map((p: Doc) => p.port)), ['metrics'], 'ingress only to the metrics port');
      for (const r of np.spec.ingress) assert.ok(r.from?.length > 0, 'ingress only from named sources');
      const egressPorts = new Set(np.spec.egress.flatMap((r: Doc) => r.ports.map((p: Doc) => p.port)));
      for (const port of [53, 443, 6443, 5432]) assert.ok(egressPorts.has(port), `egress to port ${port}`);
      for (const d of docs) {
        assert.ok(!(d.kind === 'Secret' && (d.data || d.stringData)), `${d.kind} ${d.metadata?.name}: a Secret with data`);
        assert.doesNotMatch(JSON.stringify(d), /postgres(ql)?:\/\/[^/"\s]*:[^@"\s]+@/, `${d.kind} ${d.metadata?.name}: a database URL with a password`);
      }
      const env = dep.spec.template.spec.containers[0].env as Doc[];
      assert.ok(env.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef, 'DATABASE_URL comes from a Secret');
    });
  }

  test('the OpenShift overlay: ServiceMonitor for user-workload monitoring, PrometheusRule, monitoring namespaces admitted, no Namespace', () => {
    const docs = rendered.get('deploy/overlays/openshift')!;
    const sm = one(docs, 'ServiceMonitor');
    assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
    const svc = one(docs, 'Service');
    assert.ok(matches(sm.spec.selector.matchLabels, svc.metadata.labels), 'the ServiceMonitor selects the Service');
    assert.ok(sm.spec.endpoints.every((e: Doc) => svc.spec.ports.some((p: Doc) => p.name === e.port)));
    assert.equal(one(docs, 'PrometheusRule').apiVersion, 'monitoring.coreos.com/v1');
    const from = one(docs, 'NetworkPolicy').spec.ingress[0].from.map((f: Doc) => f.namespaceSelector?.matchLabels);
    assert.ok(from.some((l: Doc) => l?.['network.openshift.io/policy-group'] === 'monitoring'));
    assert.equal(docs.filter((d) => d.kind === 'Namespace').length, 0, '`oc new-project` makes the namespace');
    assert.deepEqual(rendered.get('deploy')!.map((d) => `${d.kind}/${d.metadata.name}`), docs.map((d) => `${d.kind}/${d.metadata.name}`), '`oc apply -k deploy/` is the OpenShift overlay');
  });

  test('the Kubernetes overlay: a Namespace enforcing Pod Security restricted', () => {
    const ns = one(rendered.get('deploy/overlays/kubernetes')!, 'Namespace');
    assert.equal(ns.metadata.name, 'ssvirt');
    assert.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted');
  });
});

describe('the checkers refuse what they must', { skip }, () => {
  const deployment = (): Doc => clone(one(rendered.get('deploy/overlays/openshift')!, 'Deployment'));
  const problemsAfter = (mutate: (spec: Doc, c: Doc) => void): string[] => {
    const d = deployment();
    mutate(d.spec.template.spec, d.spec.template.spec.containers[0]);
    return podSpecProblems(podSpecOf(d)!);
  };
  const cases: Array<[string, (spec: Doc, c: Doc) => void, RegExp]> = [
    ['runAsUser: 1000 on the pod', (s) => (s.securityContext.runAsUser = 1000), /runAsUser: 1000/],
    ['runAsGroup: 1000 on the pod', (s) => (s.securityContext.runAsGroup = 1000), /runAsGroup: 1000/],
    ['runAsUser: 1000 on the container', (_, c) => (c.securityContext.runAsUser = 1000), /runAsUser: 1000/],
    ['fsGroup', (s) => (s.securityContext.fsGroup = 2000), /fsGroup/],
    ['no livenessProbe', (_, c) => delete c.livenessProbe, /no livenessProbe/],
    ['no readinessProbe', (_, c) => delete c.readinessProbe, /no readinessProbe/],
    ['no memory limit', (_, c) => delete c.resources.limits.memory, /no memory limit/],
    ['no requests', (_, c) => delete c.resources.requests, /no cpu request/],
    ['allowPrivilegeEscalation true', (_, c) => (c.securityContext.allowPrivilegeEscalation = true), /allowPrivilegeEscalation/],
    ['allowPrivilegeEscalation unset', (_, c) => delete c.securityContext.allowPrivilegeEscalation, /allowPrivilegeEscalation/],
    ['capabilities not dropped', (_, c) => (c.securityContext.capabilities.drop = []), /drop must contain ALL/],
    ['a capability added', (_, c) => (c.securityContext.capabilities.add = ['NET_ADMIN']), /capabilities.add NET_ADMIN/],
    ['privileged', (_, c) => (c.securityContext.privileged = true), /privileged/],
    ['runAsNonRoot missing on pod and container', (s, c) => (delete s.securityContext.runAsNonRoot, delete c.securityContext.runAsNonRoot), /runAsNonRoot must be true/],
    ['seccomp Unconfined', (s) => (s.securityContext.seccompProfile.type = 'Unconfined'), /seccompProfile/],
    ['seccomp unset', (s) => delete s.securityContext.seccompProfile, /seccompProfile/],
    ['a writable root filesystem', (_, c) => (c.securityContext.readOnlyRootFilesystem = false), /readOnlyRootFilesystem/],
    ['a hostPath volume', (s) => s.volumes.push({ name: 'h', hostPath: { path: '/' } }), /type hostPath/],
    ['hostNetwork', (s) => (s.hostNetwork = true), /hostNetwork/],
    ['a hostPort', (_, c) => (c.ports[0].hostPort = 9090), /hostPort/],
    ['SELinux options', (s) => (s.securityContext.seLinuxOptions = { level: 's0:c1' }), /seLinuxOptions/],
    ['an unsafe sysctl', (s) => (s.securityContext.sysctls = [{ name: 'kernel.msgmax', value: '1' }]), /sysctl/],
    ['a password in env', (_, c) => c.env.push({ name: 'DATABASE_URL', value: 'postgres://u:secret@db/x' }), /credential/],
  ];
  for (const [name, mutate, expected] of cases) {
    test(name, () => {
      const problems = problemsAfter(mutate);
      assert.ok(problems.some((p) => expected.test(p)), `${expected} among ${JSON.stringify(problems)}`);
    });
  }

  test('a write verb in a rendered role, and aggregation', () => {
    const role = clone(rendered.get('deploy/overlays/openshift')!.find((d) => d.kind === 'ClusterRole')!);
    assert.deepEqual(roleProblems(role), []);
    role.rules[0].verbs.push('update');
    assert.ok(roleProblems(role).some((p) => /update kubevirt.io/.test(p)));
    const events = { kind: 'Role', metadata: { name: 'e' }, rules: [{ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch', 'delete'] }] };
    assert.deepEqual(roleProblems(events), ['Role e: delete core/events']);
    assert.ok(roleProblems({ kind: 'ClusterRole', metadata: { name: 'a' }, aggregationRule: { clusterRoleSelectors: [] } }).length > 0);
  });

  test('the kube-system rule widened to every namespace', () => {
    const role = clone(rendered.get('deploy/overlays/kubernetes')!.find((d) => d.kind === 'ClusterRole')!);
    const rule = role.rules.find((r: Doc) => (r.resources ?? []).includes('namespaces'));
    assert.ok(rule, 'the rendered role reads kube-system');
    delete rule.resourceNames;
    assert.ok(roleProblems(role).some((p) => /get core\/namespaces of every namespace/.test(p)), JSON.stringify(roleProblems(role)));
  });

  test('credential detection', () => {
    assert.ok(credentialLike('PGPASSWORD', 'x'));
    assert.ok(credentialLike('URL', 'postgres://u:p@h/db'));
    assert.ok(!credentialLike('URL', 'postgres://u@h/db'));
    assert.ok(!credentialLike('LOG_LEVEL', 'info'));
  });
});
