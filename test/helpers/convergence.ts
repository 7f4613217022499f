// The convergence checker: what docs/contract.md#3-merge-rules says public.vms must hold, computed in TypeScript
// from the objects a cluster serves, independently of the SQL (its own quantity parser, its own
// extraction and merge rules), and compared with the rows.
//
// Values are either *determined* by the current objects (a live VMI, else the VM spec, else the
// VM's status) and must match exactly, or *kept* ("a source that lacks a field never blanks it"):
// then the row may hold any value some object gave that VM earlier (the checker is told of every
// object a cluster served through observe()), its initial value, or nothing yet.

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export const VM = 'VirtualMachine';
export const VMI = 'VirtualMachineInstance';
const INT_MAX = 2147483647n;

// ---------------------------------------------------------------------------------------------
// Kubernetes quantities, exactly (value = num / den, den a power of ten)
// ---------------------------------------------------------------------------------------------

export interface Exact {
  num: bigint;
  den: bigint;
}

const BINARY: Record<string, bigint> = { Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
/** Longest quantity string accepted (a deliberate bound; no cluster writes longer ones). */
export const MAX_QUANTITY_LENGTH = 128;
/** Exponents beyond this change nothing we store (every range check fails or rounds the same way). */
const EXPONENT_CLAMP = 200;

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/**
 * resource.Quantity grammar (apimachinery quantity.go): sign? (digits ['.' digits?] | '.' digits)
 * then nothing, a binary SI suffix (Ki..Ei), a decimal SI suffix (n u m k M G T P E) or an exponent
 * (e|E sign? digits). Returns the exact value, or null when malformed.
 */
export function parseQuantity(s: string): Exact | null {
  if (s.length === 0 || s.length > MAX_QUANTITY_LENGTH) return null;
  let i = 0;
  let negative = false;
  if (s[i] === '+' || s[i] === '-') negative = s[i++] === '-';
  let intDigits = '';
  while (isDigit(s[i])) intDigits += s[i++];
  let fracDigits = '';
  let dot = false;
  if (s[i] === '.') {
    dot = true;
    i++;
    while (isDigit(s[i])) fracDigits += s[i++];
  }
  if (intDigits === '' && fracDigits === '') return null; // "", ".", "Gi", "-"
  if (!dot && intDigits === '') return null;
  let num = BigInt((intDigits || '0') + fracDigits);
  let den = 10n ** BigInt(fracDigits.length);
  if (negative) num = -num;
  const suffix = s.slice(i);
  if (suffix === '') return { num, den };
  if (suffix in BINARY) return { num: num * BINARY[suffix]!, den };
  if (suffix in DECIMAL) return scale10({ num, den }, DECIMAL[suffix]!);
  if (suffix[0] === 'e' || suffix[0] === 'E') {
    let j = 1;
    let expNegative = false;
    if (suffix[j] === '+' || suffix[j] === '-') expNegative = suffix[j++] === '-';
    const digits = suffix.slice(j);
    if (digits === '' || ![...digits].every((c) => isDigit(c))) return null;
    if (num === 0n) return { num: 0n, den: 1n };
    const magnitude = Math.min(Number(digits.replace(/^0+/, '').slice(0, 6) || '0'), EXPONENT_CLAMP);
    return scale10({ num, den }, expNegative ? -magnitude : magnitude);
  }
  return null;
}

function scale10(v: Exact, exp: number): Exact {
  return exp >= 0 ? { num: v.num * 10n ** BigInt(exp), den: v.den } : { num: v.num, den: v.den * 10n ** BigInt(-exp) };
}

const ceilExact = (v: Exact): bigint => {
  const q = v.num / v.den;
  return v.num > 0n && v.num % v.den !== 0n ? q + 1n : q;
};

/** A quantity as JSON gives it: a string, or a bare number (Kubernetes reads its JSON text). */
function quantityOf(v: Json | undefined): { value?: Exact; problem?: string } {
  if (v === undefined || v === null) return {};
  let value: Exact | null;
  if (typeof v === 'string') value = parseQuantity(v);
  else if (typeof v === 'number') value = parseQuantity(String(v));
  else return { problem: 'not a quantity' };
  return value ? { value } : { problem: 'malformed quantity' };
}

/** MiB in a memory quantity: floor(ceil(bytes) / 2^20), which must land in 1..2^31-1. */
export function memoryMbOf(v: Json | undefined): { mb?: number; problem?: string } {
  const q = quantityOf(v);
  if (!q.value) return q.problem ? { problem: q.problem } : {};
  if (q.value.num < 0n) return { problem: 'negative memory' };
  if (q.value.num === 0n) return { problem: 'zero memory' };
  const mb = ceilExact(q.value) / 1048576n;
  if (mb < 1n) return { problem: 'less than 1 MiB' };
  if (mb > INT_MAX) return { problem: 'out of integer range' };
  return { mb: Number(mb) };
}

/** Whole CPUs in a cpu quantity, rounded up ("500m" -> 1). */
export function cpuOfQuantity(v: Json | undefined): { n?: number; problem?: string } {
  const q = quantityOf(v);
  if (!q.value) return q.problem ? { problem: q.problem } : {};
  if (q.value.num <= 0n) return { problem: 'zero or negative CPU' };
  const n = ceilExact(q.value);
  if (n > INT_MAX) return { problem: 'out of integer range' };
  return { n: Number(n) };
}

// ---------------------------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------------------------

export interface Problem {
  field: string;
  reason: string;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value at a path of object keys; undefined when any step is not an object or lacks the key. */
export function at(v: unknown, ...path: string[]): Json | undefined {
  let cur: unknown = v;
  for (const key of path) {
    if (!isObject(cur) || !Object.prototype.hasOwnProperty.call(cur, key)) return undefined;
    cur = cur[key];
  }
  return cur as Json;
}

/** sockets x cores x threads, each missing or zero factor counting as 1; nothing when no factor is above zero. */
export function cpuOfTopology(t: Json | undefined, path: string, problems: Problem[]): number | undefined {
  if (t === undefined || t === null) return undefined;
  if (!isObject(t)) {
    problems.push({ field: path, reason: 'not an object' });
    return undefined;
  }
  const factors = ['sockets', 'cores', 'threads'];
  if (!factors.some((f) => Object.prototype.hasOwnProperty.call(t, f))) return undefined;
  let total = 1n;
  let bad = false;
  let given = false;
  for (const f of factors) {
    const x = t[f];
    if (x === undefined || x === null) continue;
    if (typeof x !== 'number') {
      problems.push({ field: `${path}.${f}`, reason: 'not a number' });
      bad = true;
    } else if (x < 0) {
      problems.push({ field: `${path}.${f}`, reason: 'negative count' });
      bad = true;
    } else if (!Number.isInteger(x)) {
      problems.push({ field: `${path}.${f}`, reason: 'not a whole number' });
      bad = true;
    } else if (x > 0) {
      total *= BigInt(x);
      given = true;
    }
  }
  if (bad || !given) return undefined;
  if (total > INT_MAX) {
    problems.push({ field: path, reason: 'out of integer range' });
    return undefined;
  }
  return Number(total);
}

const codePoints = (s: string): number => [...s].length;
/** Half a UTF-16 surrogate pair: no UTF-8 text (nor PostgreSQL) can hold it; the watcher sends U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A display string (guest OS, hint): trimmed of spaces, at most 255 characters, no control character, no U+FFFD or lone surrogate. */
export function displayTextOf(v: Json | undefined, field: string, problems: Problem[]): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') {
    problems.push({ field, reason: 'not a string' });
    return undefined;
  }
  const s = v.replace(/^ +| +$/g, '');
  if (s === '') return undefined;
  if (codePoints(s) > 255) problems.push({ field, reason: 'too long' });
  else if (/\p{Cc}/u.test(s)) problems.push({ field, reason: 'control characters' });
  else if (s.includes('\uFFFD') || LONE_SURROGATE.test(s)) problems.push({ field, reason: 'invalid character' });
  else return s;
  return undefined;
}

/** guestOSInfo: prettyName; else name + " " + version; else name; else id. */
export function guestOsOf(info: Json | undefined, path: string, problems: Problem[]): string | undefined {
  if (info === undefined || info === null) return undefined;
  if (!isObject(info)) {
    problems.push({ field: path, reason: 'not an object' });
    return undefined;
  }
  const pretty = displayTextOf(info.prettyName, `${path}.prettyName`, problems);
  const name = displayTextOf(info.name, `${path}.name`, problems);
  const version = displayTextOf(info.version, `${path}.version`, problems);
  const id = displayTextOf(info.id, `${path}.id`, problems);
  const os = pretty ?? (name !== undefined && version !== undefined ? `${name} ${version}` : undefined) ?? name ?? id;
  if (os !== undefined && codePoints(os) > 255) {
    problems.push({ field: path, reason: 'too long' });
    return undefined;
  }
  return os;
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

export function vmStatus(vm: JsonObject, problems: Problem[] = []): string {
  const deletion = at(vm, 'metadata', 'deletionTimestamp');
  const ps = at(vm, 'status', 'printableStatus');
  if (ps !== undefined && ps !== null && typeof ps !== 'string') problems.push({ field: 'status.printableStatus', reason: 'not a string' });
  if (deletion !== undefined && deletion !== null) return 'DELETING';
  if (typeof ps === 'string' && ps !== '') return Object.prototype.hasOwnProperty.call(STATUS, ps) ? STATUS[ps]! : 'UNKNOWN';
  const strategy = at(vm, 'spec', 'runStrategy');
  if (strategy === 'Always' || strategy === 'RerunOnFailure') return 'STARTING';
  if (at(vm, 'spec', 'running') === true) return 'STARTING';
  return 'POWERED_OFF';
}

export interface Derived {
  kind: string;
  namespace: string;
  name: string;
  /** The VirtualMachine this object belongs to. */
  vmName: string;
  cpu?: number;
  memoryMb?: number;
  guestOs?: string;
  hint?: string;
  status?: string;
  problems: Problem[];
}

/** A VMI's owner: ownerReference kind VirtualMachine, apiVersion kubevirt.io/v1 (name 1..253 chars), else its own name. */
export function ownerName(vmi: JsonObject): string {
  const refs = at(vmi, 'metadata', 'ownerReferences');
  if (Array.isArray(refs)) {
    for (const r of refs) {
      if (isObject(r) && r.kind === VM && r.apiVersion === 'kubevirt.io/v1' && typeof r.name === 'string') {
        const n = codePoints(r.name);
        if (n >= 1 && n <= 253) return r.name;
      }
    }
  }
  return at(vmi, 'metadata', 'name') as string;
}

/** Sources in contract order: the first usable one wins; each unusable one tried is a problem. */
function firstMemory(obj: JsonObject, paths: string[][], problems: Problem[]): number | undefined {
  for (const path of paths) {
    const r = memoryMbOf(at(obj, ...path));
    if (r.problem) problems.push({ field: path.join('.'), reason: r.problem });
    if (r.mb !== undefined) return r.mb;
  }
  return undefined;
}

export function deriveVmi(vmi: JsonObject): Derived {
  const problems: Problem[] = [];
  const cpu =
    cpuOfTopology(at(vmi, 'status', 'currentCPUTopology'), 'status.currentCPUTopology', problems) ??
    cpuOfTopology(at(vmi, 'spec', 'domain', 'cpu'), 'spec.domain.cpu', problems);
  const memoryMb = firstMemory(
    vmi,
    [
      ['status', 'memory', 'guestCurrent'],
      ['spec', 'domain', 'memory', 'guest'],
      ['spec', 'domain', 'resources', 'requests', 'memory'],
    ],
    problems,
  );
  const guestOs = guestOsOf(at(vmi, 'status', 'guestOSInfo'), 'status.guestOSInfo', problems);
  return {
    kind: VMI,
    namespace: at(vmi, 'metadata', 'namespace') as string,
    name: at(vmi, 'metadata', 'name') as string,
    vmName: ownerName(vmi),
    cpu,
    memoryMb,
    guestOs,
    problems,
  };
}

export function deriveVm(vm: JsonObject): Derived {
  const problems: Problem[] = [];
  const d = 'spec.template.spec.domain';
  const domain = at(vm, 'spec', 'template', 'spec', 'domain');
  let cpu = cpuOfTopology(at(domain, 'cpu'), `${d}.cpu`, problems);
  for (const which of ['limits', 'requests']) {
    if (cpu !== undefined) break;
    const r = cpuOfQuantity(at(domain, 'resources', which, 'cpu'));
    if (r.problem) problems.push({ field: `${d}.resources.${which}.cpu`, reason: r.problem });
    cpu = r.n;
  }
  const memoryMb = firstMemory(
    vm,
    [
      ['spec', 'template', 'spec', 'domain', 'memory', 'guest'],
      ['spec', 'template', 'spec', 'domain', 'resources', 'requests', 'memory'],
      ['spec', 'template', 'spec', 'domain', 'resources', 'limits', 'memory'],
    ],
    problems,
  );
  const hint =
    displayTextOf(at(vm, 'metadata', 'annotations', 'vm.kubevirt.io/os'), 'metadata.annotations.vm.kubevirt.io/os', problems) ??
    displayTextOf(
      at(vm, 'spec', 'template', 'metadata', 'annotations', 'vm.kubevirt.io/os'),
      'spec.template.metadata.annotations.vm.kubevirt.io/os',
      problems,
    );
  const status = vmStatus(vm, problems);
  const name = at(vm, 'metadata', 'name') as string;
  return { kind: VM, namespace: at(vm, 'metadata', 'namespace') as string, name, vmName: name, cpu, memoryMb, hint, status, problems };
}

// ---------------------------------------------------------------------------------------------
// Watch events: which are usable, and what stands after a sequence of them
// ---------------------------------------------------------------------------------------------

const EVENT_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK']);

/** Why a whole event cannot be used (the field it fails on), or null when usable; BOOKMARKs are usable and ignored. */
export function eventProblem(ev: unknown): Problem | null {
  if (!isObject(ev)) return { field: 'event', reason: 'not a JSON object' };
  if (typeof ev.type !== 'string' || !EVENT_TYPES.has(ev.type)) return { field: 'type', reason: 'unknown event type' };
  if (ev.type === 'BOOKMARK') return null;
  const obj = ev.object;
  if (!isObject(obj)) return { field: 'object', reason: 'missing or not an object' };
  if (obj.kind !== VM && obj.kind !== VMI) return { field: 'kind', reason: 'unknown kind' };
  if (Object.prototype.hasOwnProperty.call(obj, 'apiVersion') && obj.apiVersion !== 'kubevirt.io/v1' && obj.apiVersion !== 'kubevirt.io/v1alpha3') {
    return { field: 'apiVersion', reason: 'unknown apiVersion' };
  }
  for (const f of ['name', 'namespace']) {
    const v = at(obj, 'metadata', f);
    if (typeof v !== 'string' || codePoints(v) < 1 || codePoints(v) > 253) return { field: `metadata.${f}`, reason: 'missing, empty or too long' };
    // What the watcher sends for a NUL or a lone surrogate; no Kubernetes name holds any of them.
    if (v.includes('\uFFFD')) return { field: `metadata.${f}`, reason: 'holds U+FFFD' };
  }
  for (const f of ['uid', 'resourceVersion']) {
    const v = at(obj, 'metadata', f);
    if (v !== undefined && v !== null && typeof v !== 'string') return { field: `metadata.${f}`, reason: 'not a string' };
  }
  return null;
}

export interface Staged {
  kind: string;
  namespace: string;
  name: string;
  uid: string | null;
  rv: string | null;
  deleted: boolean;
  object: JsonObject;
}

const keyOf = (kind: string, ns: string, name: string): string => `${kind}\u0000${ns}\u0000${name}`;
const vmKey = (ns: string, vmName: string): string => `${ns}\u0000${vmName}`;

/** For the same uid, a lower integer resourceVersion is older and ignored; anything else replaces. */
function older(rv: string | null, than: string | null): boolean {
  const integer = (s: string | null): s is string => s !== null && /^[0-9]{1,30}$/.test(s);
  return integer(rv) && integer(than) && BigInt(rv) < BigInt(than);
}

/** The objects that stand after applying events in order, as ingest must stage them. */
export class EventFold {
  readonly staged = new Map<string, Staged>();

  /** Applies one event; returns the reject it causes (null when usable) and whether it replaced the staged object. */
  apply(ev: unknown): { problem: Problem | null; replaced: boolean } {
    const problem = eventProblem(ev);
    if (problem || (ev as JsonObject).type === 'BOOKMARK') return { problem, replaced: false };
    const e = ev as { type: string; object: JsonObject };
    const obj = e.object;
    const s: Staged = {
      kind: obj.kind as string,
      namespace: at(obj, 'metadata', 'namespace') as string,
      name: at(obj, 'metadata', 'name') as string,
      uid: (at(obj, 'metadata', 'uid') as string | null | undefined) ?? null,
      rv: (at(obj, 'metadata', 'resourceVersion') as string | null | undefined) ?? null,
      deleted: e.type === 'DELETED',
      object: obj,
    };
    const key = keyOf(s.kind, s.namespace, s.name);
    const current = this.staged.get(key);
    if (current && current.uid === s.uid && older(s.rv, current.rv)) return { problem: null, replaced: false };
    this.staged.set(key, s);
    return { problem: null, replaced: true };
  }

  /** The cluster state the fold implies: live objects, and VMs known to be deleted. */
  truth(): ClusterTruth {
    const t: ClusterTruth = { vms: [], vmis: [], deletedVms: [] };
    for (const s of this.staged.values()) {
      if (s.kind === VM) {
        if (s.deleted) t.deletedVms!.push({ namespace: s.namespace, name: s.name });
        else t.vms.push(s.object);
      } else if (!s.deleted) t.vmis.push(s.object);
    }
    return t;
  }
}

// ---------------------------------------------------------------------------------------------
// The checker
// ---------------------------------------------------------------------------------------------

export interface ClusterTruth {
  /** Every VirtualMachine served now. */
  vms: unknown[];
  /** Every VirtualMachineInstance served now. */
  vmis: unknown[];
  /** VMs known to have been seen and then deleted (their rows must say DELETED). */
  deletedVms?: { namespace: string; name: string }[];
}

export interface VmsRow {
  id: string;
  namespace: string | null;
  vm_name: string | null;
  status: string | null;
  cpu_count: number | null;
  memory_mb: number | null;
  guest_os: string | null;
  deleted_at?: Date | string | null;
}

export type Field = 'status' | 'cpu_count' | 'memory_mb' | 'guest_os';
export const FIELDS: readonly Field[] = ['status', 'cpu_count', 'memory_mb', 'guest_os'];

export interface Divergence {
  id: string;
  namespace: string | null;
  vm_name: string | null;
  field: Field;
  actual: unknown;
  /** The one value prescribed, or the values allowed when the field is kept. */
  expected: unknown;
  why: string;
}

export interface Report {
  rowsChecked: number;
  /** Rows some current object applies to. */
  rowsMatched: number;
  /** Field values that the current objects determine exactly, and were compared. */
  valuesDetermined: number;
  divergences: Divergence[];
}

type Seen = Record<Field, Set<string | number>>;

/** Usable objects only: those ingest would stage (see eventProblem). */
function usable(kind: string, obj: unknown): obj is JsonObject {
  return eventProblem({ type: 'ADDED', object: obj }) === null && isObject(obj) && obj.kind === kind;
}

export class ConvergenceChecker {
  /** Per VM (namespace, vm_name): every value any object has given it, for kept fields. */
  private readonly seen = new Map<string, Seen>();
  /** VMs seen at some point (a VM gone from the truth must then read DELETED, or never have been written). */
  private readonly everSeen = new Set<string>();
  private readonly initial = new Map<string, VmsRow>();

  /** The rows before the sync ran: a kept field may still hold its initial value. */
  recordInitial(rows: VmsRow[]): void {
    for (const r of rows) this.initial.set(r.id, { ...r });
  }

  private seenFor(key: string): Seen {
    let s = this.seen.get(key);
    if (!s) {
      s = { status: new Set(), cpu_count: new Set(), memory_mb: new Set(), guest_os: new Set() };
      this.seen.set(key, s);
    }
    return s;
  }

  /** Tells the checker of an object the cluster served (every version, in any order); kind defaults to the object's. */
  observe(obj: unknown, kind?: string): void {
    if (!isObject(obj)) return;
    const o = kind && !obj.kind ? { ...obj, kind } : obj;
    if (o.kind !== VM && o.kind !== VMI) return;
    if (!usable(o.kind, o)) return;
    const d = o.kind === VM ? deriveVm(o) : deriveVmi(o);
    const key = vmKey(d.namespace, d.vmName);
    const s = this.seenFor(key);
    if (d.cpu !== undefined) s.cpu_count.add(d.cpu);
    if (d.memoryMb !== undefined) s.memory_mb.add(d.memoryMb);
    if (d.guestOs !== undefined) s.guest_os.add(d.guestOs);
    if (d.hint !== undefined) s.guest_os.add(d.hint);
    if (d.status !== undefined) {
      s.status.add(d.status);
      this.everSeen.add(key);
    }
  }

  /** Compares live rows with what the truth prescribes. Objects in the truth are observed too. */
  check(truth: ClusterTruth, rows: VmsRow[]): Report {
    const kind = (k: string) => (o: unknown) => (isObject(o) && !o.kind ? { ...o, kind: k } : o);
    const vms = truth.vms.map(kind(VM)).filter((o): o is JsonObject => usable(VM, o));
    const vmis = truth.vmis.map(kind(VMI)).filter((o): o is JsonObject => usable(VMI, o));
    for (const o of [...vms, ...vmis]) this.observe(o);

    const vmBy = new Map<string, Derived>();
    for (const o of vms) {
      const d = deriveVm(o);
      vmBy.set(vmKey(d.namespace, d.vmName), d);
    }
    const vmisBy = new Map<string, Derived[]>();
    for (const o of vmis) {
      const d = deriveVmi(o);
      const k = vmKey(d.namespace, d.vmName);
      vmisBy.set(k, [...(vmisBy.get(k) ?? []), d]);
    }
    const deleted = new Set((truth.deletedVms ?? []).map((v) => vmKey(v.namespace, v.name)));

    const report: Report = { rowsChecked: 0, rowsMatched: 0, valuesDetermined: 0, divergences: [] };
    for (const row of rows) {
      if (row.deleted_at !== null && row.deleted_at !== undefined) continue;
      if (row.namespace === null || row.vm_name === null) continue;
      report.rowsChecked++;
      const key = vmKey(row.namespace, row.vm_name);
      const vm = vmBy.get(key);
      const candidates = vmisBy.get(key) ?? [];
      if (vm || candidates.length > 0 || deleted.has(key)) report.rowsMatched++;
      const seen = this.seen.get(key);
      const initial = this.initial.get(row.id);
      const diverge = (field: Field, expected: unknown, why: string) =>
        report.divergences.push({ id: row.id, namespace: row.namespace, vm_name: row.vm_name, field, actual: row[field], expected, why });
      // A kept field is judged only for rows whose value before the sync is known (recordInitial).
      const kept = (field: Field, why: string) => {
        if (!initial) return;
        const allowed = new Set<unknown>(seen ? [...seen[field]] : []);
        allowed.add(initial[field]);
        allowed.add(null);
        if (!allowed.has(row[field])) diverge(field, [...allowed], why);
      };
      const exact = (field: Field, values: unknown[], why: string) => {
        report.valuesDetermined++;
        if (!values.includes(row[field])) diverge(field, values.length === 1 ? values[0] : values, why);
      };

      // status: the VM's, DELETED once the VM is gone, else kept.
      if (vm) exact('status', [vm.status], 'from the VirtualMachine');
      else if (deleted.has(key)) exact('status', ['DELETED'], 'VirtualMachine deleted');
      else if (this.everSeen.has(key)) exact('status', ['DELETED', initial?.status ?? null], 'VirtualMachine gone from the cluster');
      else kept('status', 'no VirtualMachine');

      // cpu_count, memory_mb: a live VMI's, else the VM spec's, else kept. With several VMIs any of theirs.
      for (const [field, pick] of [
        ['cpu_count', (d: Derived) => d.cpu],
        ['memory_mb', (d: Derived) => d.memoryMb],
      ] as const) {
        const fromVmi = candidates.map(pick).filter((v): v is number => v !== undefined);
        const fromVm = vm ? pick(vm) : undefined;
        if (candidates.length > 1) {
          const all = candidates.map(pick);
          const values = all.map((v) => v ?? fromVm).filter((v) => v !== undefined);
          if (values.length === all.length) exact(field, [...new Set(values)], 'from one of several VMIs');
          else kept(field, 'several VMIs, some without a value');
        } else if (fromVmi.length === 1) exact(field, fromVmi, 'from the live VMI');
        else if (fromVm !== undefined) exact(field, [fromVm], 'from the VM spec');
        else kept(field, 'no source has it');
      }

      // guest_os: a live VMI's agent report wins; else the row keeps its value; an empty one takes the hint.
      const agent = candidates.map((d) => d.guestOs).filter((v): v is string => v !== undefined);
      if (agent.length > 0 && agent.length === candidates.length) exact('guest_os', [...new Set(agent)], 'guest agent report');
      else if (vm?.hint !== undefined && (row.guest_os === null || row.guest_os === '')) diverge('guest_os', vm.hint, 'empty guest_os and an OS hint');
      else kept('guest_os', 'no guest agent report');
    }
    return report;
  }
}

/** A readable summary of divergences (first few), for assertion messages. */
export function describeDivergences(report: Report, max = 10): string {
  const lines = report.divergences
    .slice(0, max)
    .map((d) => `${d.namespace}/${d.vm_name} ${d.field}: ${JSON.stringify(d.actual)}, expected ${JSON.stringify(d.expected)} (${d.why})`);
  if (report.divergences.length > max) lines.push(`... and ${report.divergences.length - max} more`);
  return `${report.divergences.length} divergent value(s) in ${report.rowsChecked} rows:\n${lines.join('\n')}`;
}

/** Reads the live vms rows the checker compares. */
export const VMS_ROWS_SQL = `select id, namespace, vm_name, status, cpu_count, memory_mb, guest_os, deleted_at
                               from public.vms where deleted_at is null order by id`;
