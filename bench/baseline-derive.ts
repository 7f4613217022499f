// The contract's values for one VM or VMI object, computed in TypeScript: the change check a
// per-object reconcile loop does in the application. It follows CONTRACT section 3 closely enough
// to be a fair cost model (same fields read, same quantity parsing), without the reject bookkeeping.

export interface Derived {
  status?: string;
  cpuCount?: number;
  memoryMb?: number;
  guestOs?: string;
  guestOsHint?: string;
}

type Json = Record<string, any>;

const QUANTITY = /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([numkMGTPE])|[eE]([+-]?[0-9]+))?$/;
const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

export function parseQuantity(q: unknown): number | undefined {
  const s = typeof q === 'number' ? String(q) : typeof q === 'string' ? q : undefined;
  if (s === undefined || s.length > 128) return undefined;
  const m = QUANTITY.exec(s);
  if (!m) return undefined;
  const mantissa = Number(m[1]);
  if (m[2]) return mantissa * BINARY[m[2]]!;
  if (m[3]) return mantissa * DECIMAL[m[3]]!;
  if (m[4]) return mantissa * 10 ** Math.max(-200, Math.min(200, Number(m[4])));
  return mantissa;
}

function memoryMb(q: unknown): number | undefined {
  const bytes = parseQuantity(q);
  if (bytes === undefined || bytes <= 0) return undefined;
  const mb = Math.floor(Math.ceil(bytes) / 1048576);
  return mb >= 1 && mb <= 2147483647 ? mb : undefined;
}

function cpuOfQuantity(q: unknown): number | undefined {
  const v = parseQuantity(q);
  return v === undefined || v <= 0 || Math.ceil(v) > 2147483647 ? undefined : Math.ceil(v);
}

function cpuOfTopology(t: unknown): number | undefined {
  if (!t || typeof t !== 'object') return undefined;
  const o = t as Json;
  if (!('sockets' in o) && !('cores' in o) && !('threads' in o)) return undefined;
  let total = 1;
  for (const f of ['sockets', 'cores', 'threads']) {
    const x = o[f];
    if (x === undefined || x === null) continue;
    if (typeof x !== 'number' || x < 0 || !Number.isInteger(x)) return undefined;
    if (x > 0) total *= x;
  }
  return total <= 2147483647 ? total : undefined;
}

function text(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  // eslint-disable-next-line no-control-regex
  return s === '' || s.length > 255 || /[\u0000-\u001f\u007f\ufffd]/.test(s) ? undefined : s;
}

function guestOs(info: unknown): string | undefined {
  if (!info || typeof info !== 'object') return undefined;
  const o = info as Json;
  const pretty = text(o.prettyName);
  const name = text(o.name);
  const version = text(o.version);
  const os = pretty ?? (name && version ? `${name} ${version}` : undefined) ?? name ?? text(o.id);
  return os && os.length <= 255 ? os : undefined;
}

const STATUS: Record<string, string> = {
  Running: 'POWERED_ON',
  Migrating: 'POWERED_ON',
  Stopped: 'POWERED_OFF',
  Starting: 'POWERING_ON',
  Stopping: 'POWERING_OFF',
  Terminating: 'POWERING_OFF',
  Provisioning: 'STARTING',
  WaitingForVolumeBinding: 'STARTING',
  WaitingForReceiver: 'STARTING',
  Paused: 'SUSPENDED',
  Unknown: 'UNKNOWN',
  CrashLoopBackOff: 'ERROR',
  ErrorUnschedulable: 'ERROR',
  ErrImagePull: 'ERROR',
  ImagePullBackOff: 'ERROR',
  ErrorPvcNotFound: 'ERROR',
  ErrorDataVolumeNotFound: 'ERROR',
  DataVolumeError: 'ERROR',
};

export function vmStatus(vm: Json, deleted: boolean): string {
  if (deleted) return 'DELETED';
  if (vm.metadata?.deletionTimestamp) return 'DELETING';
  const ps = vm.status?.printableStatus;
  if (typeof ps === 'string') return STATUS[ps] ?? 'UNKNOWN';
  const rs = vm.spec?.runStrategy;
  return rs === 'Always' || rs === 'RerunOnFailure' || vm.spec?.running === true ? 'STARTING' : 'POWERED_OFF';
}

export function deriveVm(vm: Json, deleted = false): Derived {
  const domain = vm.spec?.template?.spec?.domain ?? {};
  const res = domain.resources ?? {};
  return {
    status: vmStatus(vm, deleted),
    cpuCount: cpuOfTopology(domain.cpu) ?? cpuOfQuantity(res.limits?.cpu) ?? cpuOfQuantity(res.requests?.cpu),
    memoryMb: memoryMb(domain.memory?.guest) ?? memoryMb(res.requests?.memory) ?? memoryMb(res.limits?.memory),
    guestOsHint: text(vm.metadata?.annotations?.['vm.kubevirt.io/os']) ?? text(vm.spec?.template?.metadata?.annotations?.['vm.kubevirt.io/os']),
  };
}

export function deriveVmi(vmi: Json): Derived {
  const domain = vmi.spec?.domain ?? {};
  return {
    cpuCount: cpuOfTopology(vmi.status?.currentCPUTopology) ?? cpuOfTopology(domain.cpu),
    memoryMb: memoryMb(vmi.status?.memory?.guestCurrent) ?? memoryMb(domain.memory?.guest) ?? memoryMb(domain.resources?.requests?.memory),
    guestOs: guestOs(vmi.status?.guestOSInfo),
  };
}

/** The VM a VMI belongs to: its kubevirt.io/v1 VirtualMachine ownerReference, else its own name. */
export function ownerVmName(vmi: Json): string | undefined {
  const refs = vmi.metadata?.ownerReferences;
  if (Array.isArray(refs)) {
    for (const o of refs) {
      if (o && o.kind === 'VirtualMachine' && o.apiVersion === 'kubevirt.io/v1' && typeof o.name === 'string' && o.name) return o.name;
    }
  }
  return vmi.metadata?.name;
}
