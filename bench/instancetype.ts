// `node dist/bench/instancetype.js [--vms 10000]`: what one instancetype or revision event costs
// when many stopped VMs name it (docs/contract.md#3b-instancetypes). N stopped instancetype VMs, all naming the cluster
// instancetype bench.shared; half of them pinned by a staged ControllerRevision, half sized by the
// live object. Measured, each on the warm database:
//   instancetype event  bench.shared edited: every VM naming it is re-merged (the unpinned half changes)
//   revision event      one VM's revision arrives with new data: that VM is re-merged
//   replay everything   every VM, revision and instancetype again: nothing staged, nothing written
// The nested statements each event runs are counted with auto_explain (PostgreSQL contrib): a
// set-based merge runs the same few statements whatever N is; a loop per VM would run N.
// Prints a table and one JSON line.
import type pg from 'pg';
import { renderVm, type VmModel } from '../src/sim/kubevirt.js';
import { instancetypeObject, revisionObject } from '../src/sim/instancetypes.js';
import { modelsFor, batchesOf, type WatchEvent } from './fixtures.js';
import { connect, createBenchDatabase, seedVmsRows } from './pg.js';

type Obj = Record<string, any>;

function itVmObject(vm: VmModel, revision: string | undefined, rv: number): Obj {
  const o = renderVm({ ...vm, vmi: undefined, printableStatus: 'Stopped', runStrategy: 'Halted' }) as Obj;
  const { cpu: _c, memory: _m, resources: _r, ...domain } = o.spec.template.spec.domain;
  return {
    ...o,
    metadata: { ...o.metadata, resourceVersion: String(rv) },
    spec: { ...o.spec, instancetype: { kind: 'virtualmachineclusterinstancetype', name: 'bench.shared' }, template: { ...o.spec.template, spec: { ...o.spec.template.spec, domain } } },
    status: { ...o.status, ...(revision ? { instancetypeRef: { kind: 'virtualmachineclusterinstancetype', name: 'bench.shared', controllerRevisionRef: { name: revision } } } : {}) },
  };
}

async function ingest(client: pg.Client, events: unknown[]): Promise<Obj> {
  const r = await client.query<{ s: Obj }>('select vm_sync.ingest($1::jsonb) as s', [JSON.stringify(events)]);
  return r.rows[0]!.s;
}

/** Runs `fn` with auto_explain reporting each nested statement to this session; returns the plans. */
async function explained<T>(client: pg.Client, fn: () => Promise<T>): Promise<{ result: T; plans: string[]; ms: number }> {
  const plans: string[] = [];
  const onNotice = (n: { message?: string }) => {
    if (n.message?.startsWith('duration:')) plans.push(n.message);
  };
  client.on('notice', onNotice);
  try {
    const t0 = performance.now();
    const result = await fn();
    return { result, plans, ms: performance.now() - t0 };
  } finally {
    client.off('notice', onNotice);
  }
}

async function main(): Promise<void> {
  const arg = process.argv.indexOf('--vms');
  const n = arg > 0 ? Number(process.argv[arg + 1]) : 10_000;
  const db = await createBenchDatabase('instancetype');
  const client = await connect(db.url);
  try {
    await seedVmsRows(client, n);
    let rv = 1_000_000;
    const shared = instancetypeObject('bench.shared', 2, '8Gi');
    const setup: WatchEvent[] = [{ type: 'ADDED', object: { ...shared, metadata: { ...shared.metadata, resourceVersion: String(rv++) } } }];
    const revisions = new Map<number, Obj>();
    for (let i = 1; i <= n; i++) {
      const { vm } = modelsFor(i);
      const pinned = i % 2 === 0;
      const rev = pinned ? revisionObject(vm, shared) : undefined;
      if (rev) {
        rev.metadata.resourceVersion = String(rv++);
        revisions.set(i, rev);
        setup.push({ type: 'ADDED', object: rev });
      }
      setup.push({ type: 'ADDED', object: itVmObject(vm, rev?.metadata.name, rv++) });
    }
    const tFill = performance.now();
    for (const batch of batchesOf(setup, 500)) await ingest(client, batch);
    const fillMs = performance.now() - tFill;
    const filled = (await client.query(`select count(*)::int as n from public.vms where cpu_count = 2 and memory_mb = 8192`)).rows[0].n;
    await client.query('vacuum analyze vm_sync.snapshots');
    await client.query('vacuum analyze public.vms');

    let explain = true;
    try {
      await client.query(`load 'auto_explain'`);
      await client.query(`set auto_explain.log_min_duration = 0; set auto_explain.log_nested_statements = on; set auto_explain.log_level = notice; set auto_explain.log_format = text`);
    } catch {
      explain = false;
    }

    // 1. The live instancetype is edited: 2 -> 4 vCPUs. Pinned VMs keep 2, the others take 4.
    const edited = { ...shared, metadata: { ...shared.metadata, generation: 2, resourceVersion: String(rv++) }, spec: { cpu: { guest: 4 }, memory: { guest: '8Gi' } } };
    const it = await explained(client, () => ingest(client, [{ type: 'MODIFIED', object: edited }]));
    // 2. One revision arrives again with other data (a restore): its VM alone is re-merged.
    const rev2 = revisions.get(2)!;
    const revEvent = { ...rev2, metadata: { ...rev2.metadata, resourceVersion: String(rv++) }, data: { ...rev2.data, spec: { cpu: { guest: 6 }, memory: { guest: '8Gi' } } } };
    const rev = await explained(client, () => ingest(client, [{ type: 'MODIFIED', object: revEvent }]));
    if (explain) await client.query(`set auto_explain.log_min_duration = -1`);
    // 3. Everything again, as a relist would deliver it: nothing staged, nothing written.
    const replayEvents = [...setup.filter((e) => (e.object as Obj).kind !== 'VirtualMachineClusterInstancetype'), { type: 'MODIFIED', object: edited }].map((e) =>
      (e.object as Obj).metadata.name === rev2.metadata.name ? { type: 'MODIFIED', object: revEvent } : e,
    );
    const tReplay = performance.now();
    let replayStaged = 0;
    let replayUpdated = 0;
    for (const batch of batchesOf(replayEvents, 500)) {
      const s = await ingest(client, batch);
      replayStaged += Number(s.staged);
      replayUpdated += Number(s.vms_updated);
    }
    const replayMs = performance.now() - tReplay;

    // The plan part of an auto_explain message (after the query text).
    const planOf = (m: string | undefined): string => {
      if (!m) return '';
      const lines = m.split('\n');
      const start = lines.findIndex((l) => /\(cost=/.test(l));
      return start < 0 ? '' : lines.slice(start).join('\n');
    };
    const stagePlan = planOf(it.plans.find((p) => /sizers as/.test(p)));
    const inputsPlan = planOf(it.plans.find((p) => /with affected as/.test(p)));
    const results = {
      vms: n,
      pinned: revisions.size,
      fill_ms: Math.round(fillMs),
      filled,
      instancetype_event: { ms: Math.round(it.ms), vms_updated: it.result.vms_updated, statements: explain ? it.plans.length : null },
      revision_event: { ms: Math.round(rev.ms), vms_updated: rev.result.vms_updated, statements: explain ? rev.plans.length : null },
      replay: { events: replayEvents.length, ms: Math.round(replayMs), staged: replayStaged, vms_updated: replayUpdated },
    };
    const rows: [string, string, string, string][] = [
      ['fill (VMs, revisions, instancetype)', `${setup.length} events`, `${results.fill_ms} ms`, `${filled} rows sized 2 / 8192`],
      ['instancetype event (bench.shared 2 -> 4 vCPUs)', '1 event', `${results.instancetype_event.ms} ms`, `${it.result.vms_updated} rows updated, ${results.instancetype_event.statements ?? '?'} statements`],
      ['revision event (one VM\'s revision, new data)', '1 event', `${results.revision_event.ms} ms`, `${rev.result.vms_updated} row updated, ${results.revision_event.statements ?? '?'} statements`],
      ['replay everything', `${replayEvents.length} events`, `${results.replay.ms} ms`, `${replayStaged} staged, ${replayUpdated} rows written`],
    ];
    const w = [0, 1, 2, 3].map((k) => Math.max(...rows.map((r) => r[k]!.length)));
    process.stdout.write(`instancetype VMs: ${n} (${revisions.size} pinned by a revision)\n`);
    for (const r of rows) process.stdout.write(r.map((c, k) => c.padEnd(w[k]!)).join('  ') + '\n');
    if (process.argv.includes('--plans')) {
      process.stdout.write(`\nstaging, with the VMs that name what was staged (auto_explain, estimates):\n${stagePlan}\n`);
      process.stdout.write(`\nmerge inputs of those VMs, instancetype_size inlined (auto_explain, estimates):\n${inputsPlan}\n`);
    }
    process.stdout.write(JSON.stringify(results) + '\n');
  } finally {
    await client.end();
    await db.drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench instancetype: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
