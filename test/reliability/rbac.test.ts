// The Kubernetes side stays read-only: every Role/ClusterRole in deploy/ grants only get, list and
// watch on kubevirt.io virtualmachines and virtualmachineinstances (and their /status), bindings
// bind only those roles, and no manifest carries a credential.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import yaml from 'js-yaml';
import { packageRoot } from '../../src/lib/paths.js';

type Doc = Record<string, any>;

const ALLOWED_RESOURCES = new Set(['virtualmachines', 'virtualmachineinstances', 'virtualmachines/status', 'virtualmachineinstances/status']);
const ALLOWED_VERBS = new Set(['get', 'list', 'watch']);

function manifests(): { file: string; doc: Doc }[] {
  const dir = path.join(packageRoot, 'deploy');
  const out: { file: string; doc: Doc }[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of yaml.loadAll(fs.readFileSync(path.join(dir, file), 'utf8'))) {
      if (doc && typeof doc === 'object') out.push({ file, doc: doc as Doc });
    }
  }
  return out;
}

/** Problems with a rule, or [] when it is read-only on the KubeVirt resources. */
export function ruleProblems(rule: Doc): string[] {
  const problems: string[] = [];
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);
  if (rule.nonResourceURLs) problems.push(`nonResourceURLs ${JSON.stringify(rule.nonResourceURLs)}`);
  for (const g of list(rule.apiGroups)) if (g !== 'kubevirt.io') problems.push(`apiGroup ${JSON.stringify(g)}`);
  if (list(rule.apiGroups).length === 0) problems.push('no apiGroups (the core group)');
  for (const r of list(rule.resources)) if (!ALLOWED_RESOURCES.has(r)) problems.push(`resource ${JSON.stringify(r)}`);
  for (const v of list(rule.verbs)) if (!ALLOWED_VERBS.has(v)) problems.push(`verb ${JSON.stringify(v)}`);
  return problems;
}

test('the checker of rules refuses what it must (so the manifest test can fail)', () => {
  assert.deepEqual(ruleProblems({ apiGroups: ['kubevirt.io'], resources: ['virtualmachines'], verbs: ['get', 'list', 'watch'] }), []);
  assert.equal(ruleProblems({ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }).length, 3);
  assert.deepEqual(ruleProblems({ apiGroups: ['kubevirt.io'], resources: ['virtualmachines'], verbs: ['patch'] }), ['verb "patch"']);
  assert.deepEqual(ruleProblems({ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }), ['apiGroup ""', 'resource "secrets"']);
  assert.deepEqual(ruleProblems({ apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances/console'], verbs: ['get'] }), ['resource "virtualmachineinstances/console"']);
  assert.ok(ruleProblems({ nonResourceURLs: ['/metrics'], verbs: ['get'] }).length > 0);
});

test('every Role and ClusterRole in deploy/ is read-only on KubeVirt VMs and VMIs', () => {
  const docs = manifests();
  const roles = docs.filter((d) => d.doc.kind === 'ClusterRole' || d.doc.kind === 'Role');
  assert.ok(roles.length > 0, 'deploy/ defines the watcher role');
  const granted = new Set<string>();
  for (const { file, doc } of roles) {
    assert.equal(doc.aggregationRule, undefined, `${file}: ${doc.metadata?.name} aggregates other roles`);
    for (const rule of doc.rules ?? []) {
      assert.deepEqual(ruleProblems(rule), [], `${file}: ${doc.kind} ${doc.metadata?.name} rule ${JSON.stringify(rule)}`);
      for (const r of rule.resources ?? []) for (const v of rule.verbs ?? []) granted.add(`${v} ${r}`);
    }
  }
  // ...and enough for what the watcher does.
  for (const needed of ['list virtualmachines', 'watch virtualmachines', 'list virtualmachineinstances', 'watch virtualmachineinstances']) {
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
