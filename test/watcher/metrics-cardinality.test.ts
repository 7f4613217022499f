// ssvirt_vmi_data_updates_total keeps its namespace label, bounded: the real watcher syncing VMs in
// 10,000 namespaces serves at most METRICS_NAMESPACE_CAP of them (the rest as "other"), and says how
// many series it holds. Without the label (METRICS_NAMESPACE_LABEL=false) there is no namespace at all.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { Metrics } from '../../src/watcher/metrics.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startWatcher, stopAllWatchers, tempDir } from '../helpers/watcher.js';

const NAMESPACES = Number(process.env.CARD_NAMESPACES ?? 10_000);
const CAP = Number(process.env.CARD_CAP ?? 500);

function series(text: string): { lines: string[]; namespaces: Set<string>; gauge: number } {
  const lines = text.split('\n').filter((l) => l.startsWith('ssvirt_vmi_data_updates_total{'));
  const namespaces = new Set(lines.map((l) => /namespace="([^"]*)"/.exec(l)?.[1]).filter((n): n is string => n !== undefined));
  const g = text.split('\n').find((l) => l.startsWith('ssvirt_vm_sync_metric_series{metric="ssvirt_vmi_data_updates_total"}'));
  return { lines, namespaces, gauge: g ? Number(g.split(' ').pop()) : NaN };
}

describe('bounded metrics', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let kubeconfig: string;

  before(async () => {
    db = await createTestDatabase('watcher_metrics_cardinality');
    sim = await startSimulator({ bookmarkIntervalMs: 500 });
    kubeconfig = path.join(tempDir('metrics-card'), 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    for (let i = 0; i < NAMESPACES; i++) await sim.createVM(`tenant-${i}`, 'vm', { cpu: { cores: 2 }, memory: '1Gi' });
    await db.query(
      `insert into public.vms (id, name, vapp_id, vm_name, namespace)
       select 'urn:card:' || i, 'vm', 'v', 'vm', 'tenant-' || i from generate_series(0, $1::int - 1) as i`,
      [NAMESPACES],
    );
  });
  after(async () => {
    await stopAllWatchers();
    await sim?.close();
    await db?.drop();
  });

  test(`/metrics at ${NAMESPACES} namespaces stays under the cap of ${CAP}`, { timeout: 600_000 }, async () => {
    const port = await freePort();
    const w = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'card', env: { METRICS_ADDR: `127.0.0.1:${port}`, METRICS_NAMESPACE_CAP: String(CAP) } });
    await eventually(
      async () => (await db.query(`select count(*)::int as n from public.vms where memory_mb = 1024`))[0].n === NAMESPACES,
      540_000,
      `all ${NAMESPACES} rows synced`,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${w.tail()}`);
    });
    let s = series('');
    await eventually(
      async () => {
        s = series(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
        return s.namespaces.has('other');
      },
      60_000,
      'the overflow bucket appears',
    );
    assert.ok(s.namespaces.size <= CAP + 1, `${s.namespaces.size} namespaces in /metrics`);
    assert.ok(s.namespaces.has('other'));
    // Two fields (cpu_count, memory_mb) updated, and status, per namespace.
    assert.ok(s.lines.length <= (CAP + 1) * 4, `${s.lines.length} series`);
    assert.equal(s.gauge, s.lines.length, 'the series gauge counts them');
    console.log(`# ${NAMESPACES} namespaces: ${s.lines.length} series of ssvirt_vmi_data_updates_total, ${s.namespaces.size} namespace values`);
    assert.ok(w.alive);
  });

  test('without the namespace label, the counter has none', async () => {
    const m = new Metrics({ defaultMetrics: false, namespaceLabel: false });
    m.recordFieldUpdates([{ namespace: 'a', field: 'cpu_count', result: 'updated', count: 2 }, { namespace: 'b', field: 'cpu_count', result: 'updated', count: 3 }]);
    const s = series(await m.registry.metrics());
    assert.deepEqual(s.lines, ['ssvirt_vmi_data_updates_total{field="cpu_count",result="updated"} 5']);
    assert.equal(s.gauge, 1);
  });

  test('a custom cap: the first namespaces keep their name, later ones count as other', async () => {
    const m = new Metrics({ defaultMetrics: false, namespaceCap: 2 });
    for (const ns of ['a', 'b', 'c', 'd', 'a']) m.recordFieldUpdates([{ namespace: ns, field: 'memory_mb', result: 'updated', count: 1 }]);
    const s = series(await m.registry.metrics());
    assert.deepEqual([...s.namespaces].sort(), ['a', 'b', 'other']);
    assert.ok(s.lines.includes('ssvirt_vmi_data_updates_total{namespace="other",field="memory_mb",result="updated"} 2'), s.lines.join('\n'));
  });
});
