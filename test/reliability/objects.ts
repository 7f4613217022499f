// Small builders for KubeVirt objects and watch events, shaped like the API server serves them.
import crypto from 'node:crypto';

export type Obj = Record<string, any>;
export interface Event {
  type: string;
  object: Obj;
}

export interface VmSpec {
  namespace?: string;
  name: string;
  uid?: string;
  rv?: string | number;
  cpu?: { sockets?: number; cores?: number; threads?: number };
  memory?: string;
  printableStatus?: string;
  runStrategy?: string;
  osHint?: string;
}

export function vm(s: VmSpec): Obj {
  const domain: Obj = { resources: { requests: { memory: s.memory ?? '2Gi' } } };
  if (s.cpu) domain.cpu = s.cpu;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: {
      name: s.name,
      namespace: s.namespace ?? 'default',
      uid: s.uid ?? uidFor('vm', s.namespace ?? 'default', s.name),
      resourceVersion: String(s.rv ?? 1),
      ...(s.osHint ? { annotations: { 'vm.kubevirt.io/os': s.osHint } } : {}),
    },
    spec: {
      runStrategy: s.runStrategy ?? 'Always',
      template: { metadata: {}, spec: { domain } },
    },
    status: s.printableStatus === undefined ? {} : { printableStatus: s.printableStatus },
  };
}

export interface VmiSpec {
  namespace?: string;
  name: string;
  owner?: string;
  uid?: string;
  rv?: string | number;
  cpu?: { sockets?: number; cores?: number; threads?: number };
  memory?: string;
  guestOS?: Obj;
}

export function vmi(s: VmiSpec): Obj {
  const ns = s.namespace ?? 'default';
  const owner = s.owner ?? s.name;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: {
      name: s.name,
      namespace: ns,
      uid: s.uid ?? uidFor('vmi', ns, s.name),
      resourceVersion: String(s.rv ?? 1),
      ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: owner, uid: uidFor('vm', ns, owner) }],
    },
    spec: { domain: { cpu: { sockets: 1, cores: 1, threads: 1 }, memory: { guest: s.memory ?? '2Gi' } } },
    status: {
      phase: 'Running',
      ...(s.cpu ? { currentCPUTopology: s.cpu } : {}),
      ...(s.memory ? { memory: { guestCurrent: s.memory } } : {}),
      guestOSInfo: s.guestOS ?? {},
    },
  };
}

export function ev(type: string, object: Obj): Event {
  return { type, object };
}

/** A stable uid per object so replays of the same object keep it. */
export function uidFor(kind: string, ns: string, name: string): string {
  const h = crypto.createHash('sha1').update(`${kind}/${ns}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** SQL inserting live vms rows for (namespace, vm_name) pairs, as SSVirt would create them. */
export function vmsRowsSql(rows: { namespace: string; name: string }[]): { sql: string; params: unknown[] } {
  return {
    sql: `insert into public.vms (id, name, vapp_id, vm_name, namespace)
          select 'urn:vcloud:vm:' || md5(r.ns || '/' || r.n), r.n, 'urn:vcloud:vapp:test', r.n, r.ns
            from unnest($1::text[], $2::text[]) as r(ns, n)
          on conflict (id) do nothing`,
    params: [rows.map((r) => r.namespace), rows.map((r) => r.name)],
  };
}
