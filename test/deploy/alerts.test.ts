// The PrometheusRule's alerts, checked and unit-tested by the real promtool (Debian's prometheus
// package; .ci/run installs it): `promtool check rules`, and `promtool test rules` on
// test/deploy/alerts-cases.yaml, which must hold a firing and a silent case for every alert. Every
// expression names only series the watcher exports; a broken rule makes the unit tests fail.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { packageRoot } from '../../src/lib/paths.js';
import type { Doc } from '../helpers/rbac-rules.js';
import { exportedSeriesNames, metricNames } from './promql.js';

const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';
const skip = fs.existsSync(PROMTOOL) ? false : `promtool not found at ${PROMTOOL}: install Debian's prometheus package (.ci/run does)`;
const RULE_FILE = path.join(packageRoot, 'deploy', 'monitoring', 'prometheusrule.yaml');
const CASES_FILE = path.join(packageRoot, 'test', 'deploy', 'alerts-cases.yaml');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsync-alerts-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const rule = yaml.load(fs.readFileSync(RULE_FILE, 'utf8')) as Doc;
const alerts: Doc[] = rule.spec.groups.flatMap((g: Doc) => g.rules.filter((r: Doc) => r.alert));
const cases = yaml.load(fs.readFileSync(CASES_FILE, 'utf8')) as Doc;

/** Runs promtool; resolves with its output, rejects (with the output) on a non-zero exit. */
async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await promisify(execFile)(PROMTOOL, args, { maxBuffer: 8 << 20 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args[0]} ${args[1]} failed: ${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

/** Writes the PrometheusRule's groups as a rule file (annotations off for unit tests, see the cases file). */
function writeRules(name: string, groups: Doc[], withAnnotations: boolean): string {
  const copy = structuredClone(groups);
  if (!withAnnotations) for (const g of copy) for (const r of g.rules) delete r.annotations;
  const file = path.join(dir, name);
  fs.writeFileSync(file, yaml.dump({ groups: copy }));
  return file;
}

function writeCases(rulesFile: string): string {
  const file = path.join(dir, `cases-${path.basename(rulesFile)}`);
  fs.writeFileSync(file, yaml.dump({ ...cases, rule_files: [rulesFile] }));
  return file;
}

describe('alerts', { skip }, () => {
  test('promtool check rules accepts the PrometheusRule', async () => {
    const out = await promtool('check', 'rules', writeRules('rules.yaml', rule.spec.groups, true));
    assert.match(out, new RegExp(`SUCCESS: ${rule.spec.groups.flatMap((g: Doc) => g.rules).length} rules found`));
  });

  test('promtool test rules: every case passes', async () => {
    const out = await promtool('test', 'rules', writeCases(writeRules('unit.yaml', rule.spec.groups, false)));
    assert.match(out, /SUCCESS/);
  });

  test('every alert has a firing and a silent case, a severity, a summary and a description', () => {
    const tests: Doc[] = cases.tests.flatMap((t: Doc) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = tests.filter((t) => t.alertname === a.alert);
      assert.ok(mine.some((t) => (t.exp_alerts ?? []).length > 0), `${a.alert}: a case where it fires`);
      assert.ok(mine.some((t) => (t.exp_alerts ?? []).length === 0), `${a.alert}: a case where it stays silent`);
      assert.ok(['critical', 'warning', 'info'].includes(a.labels?.severity), `${a.alert}: severity`);
      assert.ok(a.annotations?.summary && a.annotations?.description, `${a.alert}: summary and description`);
    }
    const names = new Set(alerts.map((a) => a.alert));
    for (const t of tests) assert.ok(names.has(t.alertname), `a case for an alert that does not exist: ${t.alertname}`);
  });

  test('the expressions read only series the watcher exports', async () => {
    const exported = await exportedSeriesNames();
    for (const a of alerts) {
      const names = metricNames(a.expr);
      assert.ok(names.length > 0, `${a.alert} reads some metric`);
      for (const n of names) assert.ok(exported.has(n), `${a.alert} reads ${n}, which the watcher does not export`);
    }
  });

  test('the unit tests fail on a broken rule (an inverted threshold, a lost filter)', async () => {
    const broken = structuredClone(rule.spec.groups) as Doc[];
    const noLeader = broken[0]!.rules.find((r: Doc) => r.alert === 'SsvirtVmSyncNoLeader');
    noLeader.expr = noLeader.expr.replace('< 1', '> 0');
    await assert.rejects(promtool('test', 'rules', writeCases(writeRules('broken1.yaml', broken, false))), /SsvirtVmSyncNoLeader/);
    const relist = structuredClone(rule.spec.groups) as Doc[];
    const storm = relist[0]!.rules.find((r: Doc) => r.alert === 'SsvirtVmSyncRelistStorm');
    storm.expr = storm.expr.replace(', reason!="cold_start"', '');
    // With the cold start counted, the quiet case still passes but the storm case's early eval fires.
    const stale = relist[0]!.rules.find((r: Doc) => r.alert === 'SsvirtVmSyncStale');
    stale.expr = stale.expr.replace(', type=~"ADDED|MODIFIED|DELETED"', '');
    await assert.rejects(promtool('test', 'rules', writeCases(writeRules('broken2.yaml', relist, false))), /SsvirtVmSyncStale/);
  });

  test('the metric-name parser finds names and skips functions, labels and variables', () => {
    assert.deepEqual(metricNames('sum by (kind) (rate(foo_total{job="x", a=~"b|c"}[5m])) / on (kind) bar > 3 and baz'), ['bar', 'baz', 'foo_total']);
    assert.deepEqual(metricNames('histogram_quantile(0.95, sum by (le) (rate(h_bucket{namespace="$namespace"}[$__rate_interval])))'), ['h_bucket']);
    assert.deepEqual(metricNames('time() - max(g) > 600'), ['g']);
  });
});
