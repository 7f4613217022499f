// Bounds on one object, so that no object can cost more than itself: its depth and its size are
// measured without recursion, and an object over either bound is replaced by a copy that holds
// only the fields the contract reads (docs/contract.md sections 3 and 3b), each of them small.

export interface ObjectLimits {
  /** Largest serialized size of one object, in bytes (MAX_OBJECT_BYTES). */
  maxBytes: number;
  /** Deepest nesting of one object (MAX_OBJECT_DEPTH). */
  maxDepth: number;
}

export const DEFAULT_LIMITS: ObjectLimits = { maxBytes: 2 * 1024 * 1024, maxDepth: 100 };

export interface Measure {
  /** Nesting reached (at least as deep as the object, when it stopped early). */
  depth: number;
  /** Serialized size counted so far (a lower bound when it stopped early). */
  bytes: number;
  over: 'depth' | 'size' | null;
}

/** A string's size in JSON, quotes included; escapes are not counted (a lower bound). */
function stringBytes(s: string): number {
  return (s.length > 64 ? Buffer.byteLength(s, 'utf8') : s.length) + 2;
}

/**
 * Depth and JSON size of a parsed value, with an explicit stack: a 100,000-deep array costs a loop,
 * not a stack overflow. Stops as soon as a limit is passed.
 */
export function measure(value: unknown, limits: ObjectLimits): Measure {
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  let bytes = 0;
  let depth = 0;
  while (stack.length) {
    const v = stack.pop();
    const d = depths.pop()!;
    if (typeof v === 'string') bytes += stringBytes(v);
    else if (v === null || typeof v !== 'object') bytes += typeof v === 'number' ? String(v).length : 5;
    else {
      if (d > depth) depth = d;
      if (depth > limits.maxDepth) return { depth, bytes, over: 'depth' };
      if (Array.isArray(v)) {
        bytes += 2 + v.length;
        for (let i = v.length - 1; i >= 0; i--) {
          stack.push(v[i]);
          depths.push(d + 1);
        }
      } else {
        for (const k in v as Record<string, unknown>) {
          if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
          bytes += stringBytes(k) + 2;
          stack.push((v as Record<string, unknown>)[k]);
          depths.push(d + 1);
        }
        bytes += 2;
      }
    }
    if (bytes > limits.maxBytes) return { depth, bytes, over: 'size' };
  }
  return { depth, bytes, over: null };
}

/** Every field the merge reads, for VMs, VMIs, instancetypes and ControllerRevisions. */
export const CONTRACT_PATHS: readonly (readonly string[])[] = [
  ['apiVersion'],
  ['kind'],
  ['metadata', 'name'],
  ['metadata', 'namespace'],
  ['metadata', 'uid'],
  ['metadata', 'resourceVersion'],
  ['metadata', 'deletionTimestamp'],
  ['metadata', 'ownerReferences'],
  ['metadata', 'annotations', 'vm.kubevirt.io/os'],
  ['metadata', 'labels', 'instancetype.kubevirt.io/object-kind'],
  ['spec', 'running'],
  ['spec', 'runStrategy'],
  ['spec', 'instancetype'],
  ['spec', 'preference'],
  ['spec', 'template', 'metadata', 'annotations', 'vm.kubevirt.io/os'],
  ['spec', 'template', 'spec', 'domain', 'cpu'],
  ['spec', 'template', 'spec', 'domain', 'memory'],
  ['spec', 'template', 'spec', 'domain', 'resources'],
  ['spec', 'domain', 'cpu'],
  ['spec', 'domain', 'memory'],
  ['spec', 'domain', 'resources'],
  ['spec', 'cpu'],
  ['spec', 'memory'],
  ['status', 'printableStatus'],
  ['status', 'currentCPUTopology'],
  ['status', 'memory'],
  ['status', 'guestOSInfo'],
  ['status', 'instancetypeRef'],
  ['data', 'apiVersion'],
  ['data', 'kind'],
  ['data', 'spec', 'cpu'],
  ['data', 'spec', 'memory'],
];

/** One kept field may be this large; a real one is a few hundred bytes. */
export const FIELD_LIMITS: ObjectLimits = { maxBytes: 64 * 1024, maxDepth: 16 };

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Sets `value` at `path` in `target`, creating the objects on the way. */
export function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let o = target;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    if (!isRecord(o[k])) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[path[path.length - 1]!] = value;
}

/**
 * The object cut down to the contract's fields; a field that is itself over FIELD_LIMITS is left
 * out (the merge then keeps the row's value, as for any missing field).
 */
export function trimToContract(object: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const path of CONTRACT_PATHS) {
    let v: unknown = object;
    for (const k of path) {
      v = isRecord(v) && Object.prototype.hasOwnProperty.call(v, k) ? v[k] : undefined;
      if (v === undefined) break;
    }
    if (v === undefined) continue;
    if (measure(v, FIELD_LIMITS).over) continue;
    setPath(out, path, v);
  }
  return out;
}
