// The Kubernetes side stays read-only: every Role/ClusterRole under deploy/ grants only get, list and
// watch on what the watcher reads (test/helpers/rbac-rules.ts), plus the one write exception
// (`create, patch` on core Events); bindings bind only those roles; no manifest carries a credential.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import yaml from 'js-yaml';
import { packageRoot } from '../../src/lib/paths.js';
import { roleProblems, ruleProblems, type Doc } from '../helpers/rbac-rules.js';

function yamlFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(e.name) ? [p] : [];
  });
}

/** Every document of every YAML file under deploy/ (base, overlays, monitoring). */
function manifests(): { file: string; doc: Doc }[] {
  const dir = path.join(packageRoot, 'deploy');
  const out: { file: string; doc: Doc }[] = [];
  for (const abs of yamlFiles(dir).sort()) {
    const file = path.relative(dir, abs);
    for (const doc of yaml.loadAll(fs.readFileSync(abs, 'utf8'))) {
      if (doc && typeof doc === 'object' && !Array.isArray(doc)) out.push({ file, doc: doc as Doc });
    }
  }
  return out;
}

test('the checker of rules refuses what it must (so the manifest test can fail)', () => {
  assert.deepEqual(ruleProblems({ apiGroups: ['kubevirt.io'], resources: ['virtualmachines'], verbs: ['get', 'list', 'watch'] }), []);
  assert.deepEqual(ruleProblems({ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }), []);
  assert.deepEqual(ruleProblems({ apiGroups: ['apps'], resources: ['controllerrevisions'], verbs: ['get', 'list', 'watch'] }), []);
  assert.deepEqual(ruleProblems({ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }), ['* */*']);
  assert.deepEqual(ruleProblems({ apiGroups: ['kubevirt.io'], resources: ['virtualmachines'], verbs: ['patch'] }), ['patch kubevirt.io/virtualmachines']);
  assert.deepEqual(ruleProblems({ apiGroups: [''], resources: ['events'], verbs: ['delete'] }), ['delete core/events']);
  assert.deepEqual(ruleProblems({ apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] }), ['create events.k8s.io/events']);
  assert.deepEqual(ruleProblems({ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] }), ['get apps/deployments']);
  assert.deepEqual(ruleProblems({ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }), ['get core/secrets']);
  assert.deepEqual(ruleProblems({ apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances/console'], verbs: ['get'] }), ['get kubevirt.io/virtualmachineinstances/console']);
  assert.deepEqual(ruleProblems({ apiGroups: [''], resources: ['namespaces'], resourceNames: ['kube-system'], verbs: ['get'] }), []);
  assert.deepEqual(ruleProblems({ apiGroups: [''], resources: ['namespaces'], verbs: ['get'] }), ['get core/namespaces of every namespace (only resourceNames: [kube-system])']);
  assert.deepEqual(ruleProblems({ apiGroups: [''], resources: ['namespaces'], resourceNames: ['kube-system', 'ssvirt'], verbs: ['get'] }), [
    'get core/namespaces named kube-system, ssvirt (only resourceNames: [kube-system])',
  ]);
  assert.deepEqual(ruleProblems({ apiGroups: [''], resources: ['namespaces'], resourceNames: ['kube-system'], verbs: ['get', 'list'] }), ['list core/namespaces']);
  assert.ok(ruleProblems({ nonResourceURLs: ['/metrics'], verbs: ['get'] }).length > 0);
  assert.ok(roleProblems({ kind: 'ClusterRole', metadata: { name: 'x' }, aggregationRule: {} }).length > 0);
});

test('every Role and ClusterRole under deploy/ is read-only (Events create/patch aside)', () => {
  const docs = manifests();
  const roles = docs.filter((d) => d.doc.kind === 'ClusterRole' || d.doc.kind === 'Role');
  assert.ok(roles.length > 0, 'deploy/ defines the watcher role');
  const granted = new Set<string>();
  for (const { file, doc } of roles) {
    assert.deepEqual(roleProblems(doc), [], file);
    for (const rule of doc.rules ?? []) for (const r of rule.resources ?? []) for (const v of rule.verbs ?? []) granted.add(`${v} ${r}`);
  }
  // ...and enough for what the watcher does.
  for (const needed of [
    'list virtualmachines', 'watch virtualmachines', 'list virtualmachineinstances', 'watch virtualmachineinstances',
    'list virtualmachineclusterinstancetypes', 'watch virtualmachineclusterinstancetypes',
    'list virtualmachineinstancetypes', 'watch virtualmachineinstancetypes', 'list controllerrevisions', 'watch controllerrevisions',
    // The cluster identity (the kube-system namespace's uid): without it the checkpoints are keyed by the URL.
    'get namespaces',
  ]) {
    assert.ok(granted.has(needed), `the watcher needs ${needed}`);
  }
});

test('bindings bind only those roles, to the watcher service account', () => {
  const docs = manifests();
  const ours = new Set(docs.filter((d) => d.doc.kind === 'ClusterRole' || d.doc.kind === 'Role').map((d) => `${d.doc.kind}/${d.doc.metadata?.name}`));
  const bindings = docs.filter((d) => d.doc.kind === 'ClusterRoleBinding' || d.doc.kind === 'RoleBinding');
  assert.ok(bindings.length > 0);
  for (const { file, doc } of bindings) {
    assert.ok(ours.has(`${doc.roleRef?.kind}/${doc.roleRef?.name}`), `${file}: binds ${doc.roleRef?.kind}/${doc.roleRef?.name}, not a role from deploy/`);
    for (const s of doc.subjects ?? []) assert.equal(s.kind, 'ServiceAccount', `${file}: binds a ${s.kind}`);
  }
});

test('no manifest carries a credential', () => {
  for (const { file, doc } of manifests()) {
    assert.ok(!(doc.kind === 'Secret' && (doc.data || doc.stringData)), `${file}: a Secret with data`);
    const text = JSON.stringify(doc);
    assert.doesNotMatch(text, /postgres(ql)?:\/\/[^/"\s]*:[^@"\s]+@/, `${file}: a database URL with a password`);
    assert.doesNotMatch(text, /"token"\s*:\s*"[^"]+"/, `${file}: a token`);
  }
});

test('the watcher may post and count its VMDataRejected Events (create, patch on core events), nothing more', () => {
  const rules = manifests()
    .filter((d) => d.doc.kind === 'ClusterRole' || d.doc.kind === 'Role')
    .flatMap((d) => d.doc.rules ?? [])
    .filter((r) => (r.resources ?? []).includes('events'));
  assert.ok(rules.length > 0, 'a role grants events');
  for (const r of rules) {
    assert.deepEqual(r.apiGroups, ['']);
    assert.deepEqual([...(r.verbs ?? [])].sort(), ['create', 'patch']);
  }
});
