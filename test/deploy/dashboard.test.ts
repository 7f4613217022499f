// deploy/monitoring/dashboard.json: a Grafana dashboard whose every query names only series the
// watcher exports (src/watcher/metrics.ts's registry, default metrics included).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/lib/paths.js';
import type { Doc } from '../helpers/rbac-rules.js';
import { exportedSeriesNames, metricNames } from './promql.js';

const dashboard = JSON.parse(fs.readFileSync(path.join(packageRoot, 'deploy', 'monitoring', 'dashboard.json'), 'utf8')) as Doc;

function panels(list: Doc[]): Doc[] {
  return list.flatMap((p) => [p, ...panels(p.panels ?? [])]);
}

test('the dashboard is a Grafana dashboard with a Prometheus data source variable and unique panel ids', () => {
  assert.equal(typeof dashboard.title, 'string');
  assert.equal(typeof dashboard.uid, 'string');
  assert.ok(Number.isInteger(dashboard.schemaVersion));
  assert.ok(dashboard.templating.list.some((v: Doc) => v.type === 'datasource' && v.query === 'prometheus'));
  const ids = panels(dashboard.panels).map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const p of panels(dashboard.panels)) {
    assert.ok(p.gridPos && p.gridPos.w > 0 && p.gridPos.h > 0, `panel ${p.title} has a place`);
    if (p.type !== 'row') assert.ok((p.targets ?? []).length > 0, `panel ${p.title} has queries`);
  }
});

test("every query names only exported series, and the dashboard shows each of the watcher's own metrics", async () => {
  const exported = await exportedSeriesNames();
  const used = new Set<string>();
  const queries = [
    ...panels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((t: Doc) => ({ where: p.title, expr: String(t.expr) }))),
    ...dashboard.templating.list.filter((v: Doc) => v.type === 'query').map((v: Doc) => ({ where: `variable ${v.name}`, expr: String(v.definition).replace(/^label_values\(([^,]+),.*$/, '$1') })),
  ];
  for (const q of queries) {
    const names = metricNames(q.expr);
    assert.ok(names.length > 0, `${q.where}: ${q.expr} reads a metric`);
    for (const n of names) {
      assert.ok(exported.has(n), `${q.where}: ${n} is not exported by the watcher`);
      used.add(n.replace(/_(bucket|sum|count)$/, ''));
    }
  }
  const own = [...exported].filter((n) => !/^ssvirt_vm_sync_(process|nodejs)_/.test(n) && !/_(sum|count)$/.test(n)).map((n) => n.replace(/_bucket$/, ''));
  for (const n of own) assert.ok(used.has(n), `the dashboard does not show ${n}`);
});

test('the checker would catch a query of a metric that does not exist', async () => {
  const exported = await exportedSeriesNames();
  assert.ok(!metricNames('rate(ssvirt_vm_sync_made_up_total[5m])').every((n) => exported.has(n)));
});
