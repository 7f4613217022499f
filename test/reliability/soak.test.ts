// A seeded, randomized soak: three watchers (each behind its own cuttable proxy to PostgreSQL), a
// steady churn of VM lifecycle changes, and every fault the other tests inject, one after another
// at random. After each fault the churn pauses and the rows must converge (zero divergences); the
// fence audit and the lock sampler run throughout. ~75 s by default; SOAK_MINUTES=10 for nightly.
// SOAK_SEED replays a run. The figures are printed, and written to SOAK_REPORT when set.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { NIGHTLY, Rig, rng, sleep } from './harness.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 1.25);
const SEED = Number(process.env.SOAK_SEED ?? 20241126);
const WATCHERS = 3;

let r: Rig | undefined;
after(async () => {
  await r?.stop();
});

test(`soak: ${MINUTES} min of mixed faults (seed ${SEED})`, { timeout: (MINUTES * 60 + 240) * 1000 }, async () => {
  r = new Rig({ label: 'rel_soak', seed: SEED, vms: 40 });
  await r.start();
  const rig = r;
  const random = rng(SEED ^ 0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  for (let i = 0; i < WATCHERS; i++) await rig.startWatcher(`soak-${i}`, { proxied: true });
  const cold = await rig.awaitConvergence('cold start', 60_000);
  rig.startSampler();

  const started = Date.now();
  const until = started + MINUTES * 60_000;
  let checks = 1;
  let rowsChecked = cold.rowsChecked;
  let valuesChecked = cold.valuesDetermined;
  const longest: Record<string, number> = {};

  /** Keeps WATCHERS processes alive: a killed one is restarted under its name. */
  const replenish = (): void => {
    for (let i = 0; i < WATCHERS; i++) {
      const holder = `soak-${i}`;
      if (!rig.live().some((w) => w.holder === holder)) {
        const dead = [...rig.watchers].reverse().find((w) => w.holder === holder)!;
        rig.restartWatcher(dead);
      }
    }
  };

  const faults: Record<string, () => Promise<void>> = {
    'pg-outage': () => rig.pgOutage(1000 + Math.floor(random() * (NIGHTLY ? 12_000 : 5000))),
    'pg-partition-leader': async () => rig.pgOutage(1000 + Math.floor(random() * 4000), await rig.awaitLeader()),
    'sigkill-leader': async () => {
      await rig.killLeader();
      await sleep(random() * 1000);
    },
    'sigkill-mid-batch': async () => {
      await rig.killMidBatch(random() < 0.5);
    },
    'sigkill-standby': async () => {
      const l = await rig.awaitLeader();
      const standby = rig.live().find((w) => w !== l);
      if (standby) {
        await standby.kill('SIGKILL');
        rig.injected['sigkill-standby'] = (rig.injected['sigkill-standby'] ?? 0) + 1;
      }
    },
    'leader-session-terminated': () => rig.terminateLeaderSession(),
    'frozen-leader': () => rig.frozenLeader(),
    'drop-streams': () => rig.apiFault('drop-streams', 0),
    'drop-streams-graceful': () => rig.apiFault('drop-streams-graceful', 0),
    'stall-streams': () => rig.apiFault('stall-streams', 2500),
    'stall-all': () => rig.apiFault('stall-all', 1000 + random() * 3000),
    '410-event': () => rig.apiFault('410-event', 0),
    '410-http': () => rig.apiFault('410-http', 0),
    compact: () => rig.apiFault('compact', 0),
    'http-500': () => rig.apiFault('http-500', 1000 + random() * 3000),
    'http-503-lists': () => rig.apiFault('http-503-lists', 1000 + random() * 2000),
    slow: () => rig.apiFault('slow', 1500),
    'api-offline': () => rig.apiFault('api-offline', NIGHTLY && random() < 0.2 ? 30_000 : 1000 + random() * 4000),
  };
  const names = Object.keys(faults);

  while (Date.now() < until) {
    rig.startChurn(20);
    await sleep(200 + random() * 800);
    const name = pick(names);
    // Sometimes two faults at once: a database fault during an API fault.
    const apiFault = !/^(pg-|sigkill|leader-|frozen)/.test(name);
    const combo = apiFault && random() < 0.25 ? pick(['pg-outage', 'sigkill-leader', 'leader-session-terminated']) : null;
    await Promise.all([faults[name]!(), combo ? sleep(300).then(() => faults[combo]!()) : Promise.resolve()]);
    replenish();
    await sleep(300 + random() * 700);
    await rig.stopChurn();
    const t = Date.now();
    const report = await rig.awaitConvergence(`after ${name}${combo ? ` + ${combo}` : ''} (seed ${SEED})`, 60_000);
    longest[name] = Math.max(longest[name] ?? 0, Date.now() - t);
    checks++;
    rowsChecked += report.rowsChecked;
    valuesChecked += report.valuesDetermined;
    assert.ok(rig.live().length === WATCHERS, 'every watcher process is alive');
  }

  const sampled = await rig.stopSampler();
  const fence = await rig.assertFenced();
  const final = await rig.awaitConvergence('final');
  const [stats] = await rig.db.query(
    `select (select count(*)::int from vm_sync.changes) as changes, (select sum(relists)::int from vm_sync.watch_state) as relists,
            (select term::int from vm_sync.leader) as term`,
  );
  const figures = {
    seed: SEED,
    minutes: Number(((Date.now() - started) / 60_000).toFixed(2)),
    faultsInjected: Object.values(rig.injected).reduce((a, b) => a + b, 0),
    faults: rig.injected,
    clusterChanges: rig.ops,
    vms: final.rowsChecked,
    convergenceChecks: checks,
    rowsChecked,
    valuesChecked,
    divergences: 0,
    changeFeedRows: stats.changes,
    relists: stats.relists,
    leaderTerms: stats.term,
    fencedWrites: fence.writes,
    lockSamples: sampled.samples,
    maxLockHolders: sampled.maxHolders,
    slowestConvergenceMs: longest,
  };
  console.log(`soak figures ${JSON.stringify(figures)}`);
  if (process.env.SOAK_REPORT) fs.writeFileSync(process.env.SOAK_REPORT, JSON.stringify(figures, null, 2) + '\n');
  assert.equal(sampled.maxHolders, 1, 'never two sessions holding the leader lock');
  assert.ok(figures.faultsInjected >= Math.max(3, MINUTES * 6), `faults injected: ${figures.faultsInjected}`);
});
