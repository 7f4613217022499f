// The demo's story: the SSVirt rows it seeds, the VMs it creates, and each step's action and the
// vms values that must follow from it (the demo fails when they do not: it doubles as a check).
import type pg from 'pg';
import type { Simulator } from '../../sim/index.js';
import { FEDORA } from '../../sim/index.js';
import { textTable } from '../../cli/text-table.js';

export interface VmsRow {
  name: string;
  namespace: string | null;
  vm_name: string | null;
  status: string | null;
  cpu_count: number | null;
  memory_mb: number | null;
  guest_os: string | null;
}

type Expected = Partial<Pick<VmsRow, 'status' | 'cpu_count' | 'memory_mb' | 'guest_os'>>;

export interface Step {
  title: string;
  act(sim: Simulator, db: pg.Client): Promise<void>;
  /** Row name -> the values it must reach. */
  expect: Record<string, Expected>;
}

const RHEL = {
  id: 'rhel',
  name: 'Red Hat Enterprise Linux',
  prettyName: 'Red Hat Enterprise Linux 9.4 (Plow)',
  version: '9.4 (Plow)',
  versionId: '9.4',
  kernelRelease: '5.14.0-427.13.1.el9_4.x86_64',
  machine: 'x86_64',
};
const FEDORA_PRETTY = String(FEDORA.prettyName);

/** Rows SSVirt created before the sync runs: cpu, memory and guest OS unknown. */
const SSVIRT_ROWS = [
  { n: 1, name: 'web-01', namespace: 'shop', vm_name: 'web-01' },
  { n: 2, name: 'db-01', namespace: 'shop', vm_name: 'db-01' },
  { n: 3, name: 'cache-01', namespace: 'shop', vm_name: 'cache-01' },
];

export async function seedRows(db: pg.Client): Promise<void> {
  const id = (n: number) => `urn:vcloud:vm:00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  for (const r of SSVIRT_ROWS) {
    await db.query(
      `insert into public.vms (id, name, vapp_id, vm_name, namespace, status, created_at, updated_at)
       values ($1, $2, 'urn:vcloud:vapp:00000000-0000-4000-8000-0000000000aa', $3, $4, 'POWERED_OFF', now(), now())`,
      [id(r.n), r.name, r.vm_name, r.namespace],
    );
  }
  // A row whose VM lives outside KubeVirt's view: the sync must leave it exactly as it is.
  await db.query(
    `insert into public.vms (id, name, vapp_id, vm_name, namespace, status, cpu_count, memory_mb, guest_os, created_at, updated_at)
     values ($1, 'legacy-01', 'urn:vcloud:vapp:00000000-0000-4000-8000-0000000000aa', 'legacy-01', 'shop', 'POWERED_ON', 2, 2048, 'Ubuntu 22.04.4 LTS', now(), now())`,
    [id(9)],
  );
}

/** The cluster as the watcher first finds it: four stopped VMs, one of them without a vms row yet. */
export async function createInitialVms(sim: Simulator): Promise<void> {
  await sim.createVM('shop', 'web-01', { cpu: { cores: 2 }, memory: '4Gi', osHint: 'fedora' });
  await sim.createVM('shop', 'db-01', { cpu: { cores: 4 }, memory: '16Gi', osHint: 'rhel9' });
  await sim.createVM('shop', 'cache-01', { cpu: { cores: 1 }, memory: '1536Mi', memoryAsGuest: false });
  await sim.createVM('analytics', 'report-01', { cpu: { sockets: 2, cores: 2 }, memory: '8Gi', osHint: 'windows2k22' });
}

export const STEPS: Step[] = [
  {
    title: 'The watcher lists the cluster: rows are filled from the VM specs (OS from the vm.kubevirt.io/os hint)',
    act: async () => undefined,
    expect: {
      'web-01': { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 4096, guest_os: 'fedora' },
      'db-01': { status: 'POWERED_OFF', cpu_count: 4, memory_mb: 16384, guest_os: 'rhel9' },
      'cache-01': { status: 'POWERED_OFF', cpu_count: 1, memory_mb: 1536, guest_os: null },
    },
  },
  {
    title: 'web-01 and db-01 start (virtctl start): Starting, a VMI is scheduled and runs',
    act: async (sim) => {
      await Promise.all([sim.startVM('shop', 'web-01'), sim.startVM('shop', 'db-01')]);
    },
    expect: { 'web-01': { status: 'POWERED_ON' }, 'db-01': { status: 'POWERED_ON' } },
  },
  {
    title: 'Their guest agents connect: the OS they report replaces the hint',
    act: async (sim) => {
      await sim.connectGuestAgent('shop', 'web-01', FEDORA);
      await sim.connectGuestAgent('shop', 'db-01', RHEL);
    },
    expect: { 'web-01': { guest_os: FEDORA_PRETTY }, 'db-01': { guest_os: RHEL.prettyName } },
  },
  {
    title: 'Hotplug: web-01 goes from 1 to 2 sockets (2 -> 4 vCPUs), db-01 from 16Gi to 24Gi',
    act: async (sim) => {
      await sim.hotplugCPU('shop', 'web-01', 2);
      await sim.hotplugMemory('shop', 'db-01', '24Gi');
    },
    expect: { 'web-01': { cpu_count: 4 }, 'db-01': { memory_mb: 24576 } },
  },
  {
    title: 'SSVirt adds a row for analytics/report-01, a VM the sync staged earlier: reconcile fills it',
    act: async (_sim, db) => {
      await db.query(
        `insert into public.vms (id, name, vapp_id, vm_name, namespace, created_at, updated_at)
         values ('urn:vcloud:vm:00000000-0000-4000-8000-000000000004', 'report-01',
                 'urn:vcloud:vapp:00000000-0000-4000-8000-0000000000bb', 'report-01', 'analytics', now(), now())`,
      );
    },
    expect: { 'report-01': { status: 'POWERED_OFF', cpu_count: 4, memory_mb: 8192, guest_os: 'windows2k22' } },
  },
  {
    title: 'web-01 stops: its VMI goes away, cpu and memory come from the VM spec, the reported OS stays',
    act: async (sim) => {
      await sim.stopVM('shop', 'web-01');
    },
    expect: { 'web-01': { status: 'POWERED_OFF', cpu_count: 4, memory_mb: 4096, guest_os: FEDORA_PRETTY } },
  },
  {
    title: 'SSVirt creates shop/app-01 from the u1.2xlarge instancetype and never starts it: KubeVirt stores a ControllerRevision, the row reads 8 vCPUs / 32768 MB',
    act: async (sim, db) => {
      await db.query(
        `insert into public.vms (id, name, vapp_id, vm_name, namespace, status, created_at, updated_at)
         values ('urn:vcloud:vm:00000000-0000-4000-8000-000000000005', 'app-01',
                 'urn:vcloud:vapp:00000000-0000-4000-8000-0000000000aa', 'app-01', 'shop', 'POWERED_OFF', now(), now())`,
      );
      await sim.createVM('shop', 'app-01', { instancetype: 'u1.2xlarge' });
    },
    expect: { 'app-01': { status: 'POWERED_OFF', cpu_count: 8, memory_mb: 32768 } },
  },
  {
    title: 'app-01 is resized to u1.medium while stopped: a new revision, the row reads 1 vCPU / 4096 MB before any start',
    act: async (sim) => {
      await sim.setInstancetype('shop', 'app-01', 'u1.medium');
    },
    expect: { 'app-01': { status: 'POWERED_OFF', cpu_count: 1, memory_mb: 4096 } },
  },
  {
    title: 'db-01 is deleted (kubectl delete vm): the row is marked DELETED, its last values kept',
    act: async (sim) => {
      await sim.deleteVM('shop', 'db-01');
    },
    expect: { 'db-01': { status: 'DELETED', memory_mb: 24576, guest_os: RHEL.prettyName } },
  },
];

/** The final word: legacy-01 has no VM, so the sync never touched it. */
export const UNTOUCHED = { 'legacy-01': { status: 'POWERED_ON', cpu_count: 2, memory_mb: 2048, guest_os: 'Ubuntu 22.04.4 LTS' } } as const;

export async function readRows(db: pg.Client): Promise<Map<string, VmsRow>> {
  const { rows } = await db.query<VmsRow>(
    `select name, namespace, vm_name, status, cpu_count, memory_mb, guest_os from public.vms where deleted_at is null order by namespace, name`,
  );
  return new Map(rows.map((r) => [r.name, r]));
}

/** What still differs from `expect`, as "web-01.status is X, want Y"; empty when all is met. */
export function unmet(rows: Map<string, VmsRow>, expect: Record<string, Expected>): string[] {
  const out: string[] = [];
  for (const [name, want] of Object.entries(expect)) {
    const row = rows.get(name);
    if (!row) {
      out.push(`${name}: no row`);
      continue;
    }
    for (const [field, value] of Object.entries(want)) {
      const got = row[field as keyof VmsRow];
      if (got !== value) out.push(`${name}.${field} is ${JSON.stringify(got)}, want ${JSON.stringify(value)}`);
    }
  }
  return out;
}

export function vmsTable(rows: Map<string, VmsRow>): string {
  return textTable(
    ['name', 'namespace/vm_name', 'status', 'cpu_count', 'memory_mb', 'guest_os'],
    [...rows.values()].map((r) => [r.name, `${r.namespace ?? '-'}/${r.vm_name ?? '-'}`, r.status, r.cpu_count, r.memory_mb, r.guest_os]),
    '    ',
  );
}

/** One notification as one line: "#12 shop/web-01  status POWERED_OFF -> POWERING_ON, cpu_count 2 -> 4". */
export function formatNotification(payload: string): { seq: number; line: string } {
  let p: { seq?: number; namespace?: string; vm_name?: string; id?: string; changes?: Record<string, { old: unknown; new: unknown }>; truncated?: boolean };
  try {
    p = JSON.parse(payload);
  } catch {
    return { seq: 0, line: `(unparseable) ${payload.slice(0, 200)}` };
  }
  const show = (v: unknown) => (v === null || v === undefined ? 'null' : typeof v === 'string' ? JSON.stringify(v) : String(v));
  const changes = Object.entries(p.changes ?? {})
    .map(([col, c]) => `${col} ${show(c.old)} -> ${show(c.new)}`)
    .join(', ');
  const who = p.namespace && p.vm_name ? `${p.namespace}/${p.vm_name}` : (p.id ?? '?');
  return { seq: Number(p.seq ?? 0), line: `#${p.seq ?? '?'} ${who}  ${p.truncated ? '(truncated payload)' : changes}` };
}
