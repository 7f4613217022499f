// The simulator's etcd + watch cache: objects per resource, one global revision counter,
// and a bounded history of changes from which watches replay and paginated lists read
// consistent snapshots. Objects are treated as immutable: every write stores a new object
// (sharing unchanged subtrees), so history keeps old versions for free.

import { RawJson } from '../lib/json.js';
export type Resource =
  | 'virtualmachines'
  | 'virtualmachineinstances'
  | 'virtualmachineclusterinstancetypes'
  | 'virtualmachineinstancetypes'
  | 'controllerrevisions';
export const RESOURCES: readonly Resource[] = [
  'virtualmachines',
  'virtualmachineinstances',
  'virtualmachineclusterinstancetypes',
  'virtualmachineinstancetypes',
  'controllerrevisions',
];

export interface KindInfo {
  kind: string;
  listKind: string;
  singular: string;
  shortNames: string[];
  /** API group; kubevirt.io when absent. */
  group?: string;
  /** Served versions, the preferred first; ['v1'] when absent. */
  versions?: string[];
  /** False for cluster-scoped kinds (stored under key "/<name>"). */
  namespaced?: boolean;
}

// The instancetype kinds as KubeVirt's CRDs name them (kubevirt/kubevirt
// pkg/virt-operator/resource/generate/components/crds.go: plural, singular, shortNames, scope).
export const KINDS: Record<Resource, KindInfo> = {
  virtualmachineclusterinstancetypes: {
    kind: 'VirtualMachineClusterInstancetype',
    listKind: 'VirtualMachineClusterInstancetypeList',
    singular: 'virtualmachineclusterinstancetype',
    shortNames: ['vmclusterinstancetype', 'vmclusterinstancetypes', 'vmcf', 'vmcfs'],
    group: 'instancetype.kubevirt.io',
    versions: ['v1beta1', 'v1'],
    namespaced: false,
  },
  virtualmachineinstancetypes: {
    kind: 'VirtualMachineInstancetype',
    listKind: 'VirtualMachineInstancetypeList',
    singular: 'virtualmachineinstancetype',
    shortNames: ['vminstancetype', 'vminstancetypes', 'vmf', 'vmfs'],
    group: 'instancetype.kubevirt.io',
    versions: ['v1beta1', 'v1'],
  },
  controllerrevisions: { kind: 'ControllerRevision', listKind: 'ControllerRevisionList', singular: 'controllerrevision', shortNames: [], group: 'apps', versions: ['v1'] },
  virtualmachines: { kind: 'VirtualMachine', listKind: 'VirtualMachineList', singular: 'virtualmachine', shortNames: ['vm', 'vms'] },
  virtualmachineinstances: {
    kind: 'VirtualMachineInstance',
    listKind: 'VirtualMachineInstanceList',
    singular: 'virtualmachineinstance',
    shortNames: ['vmi', 'vmis'],
  },
};

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change, as recorded in history. `obj` is the new state (for DELETED: the last state, at the delete's revision). */
export interface ChangeEvent {
  readonly rv: number;
  readonly resource: Resource;
  readonly type: EventType;
  readonly key: string;
  readonly obj: unknown;
  /** The state before this change; undefined for ADDED. Needed for selector transitions and snapshots. */
  readonly prev: unknown;
}

interface Entry {
  obj: unknown;
  rv: number;
}

/** Thrown when a requested revision is older than what the history still holds (HTTP 410 Expired). */
export class ExpiredError extends Error {
  constructor(
    readonly requested: number,
    readonly oldest: number,
  ) {
    super(`too old resource version: ${requested} (${oldest})`);
  }
}

/** "ns/name" for objects that have them; hostile objects without a usable name get a stable synthetic key. */
export function keyOf(obj: unknown): string | undefined {
  const meta = (obj as { metadata?: { namespace?: unknown; name?: unknown } } | null)?.metadata;
  if (!meta || typeof meta !== 'object') return undefined;
  const ns = typeof meta.namespace === 'string' ? meta.namespace : '';
  const name = typeof meta.name === 'string' ? meta.name : '';
  return name === '' && ns === '' ? undefined : `${ns}/${name}`;
}

/** Returns a shallow copy of obj whose metadata.resourceVersion is rv (objects without metadata are served as-is). */
export function withResourceVersion(obj: unknown, rv: number): unknown {
  if (obj instanceof RawJson) return obj.withResourceVersion(rv);
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return obj;
  const meta = (obj as { metadata?: unknown }).metadata;
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return obj;
  return { ...(obj as object), metadata: { ...(meta as object), resourceVersion: String(rv) } };
}

/** Index of the first element of a sorted array that is > value (binary search). */
function upperBound<T>(items: readonly T[], value: string | number, get: (t: T) => string | number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (get(items[mid]!) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface PageRequest {
  /** The revision the page must reflect (a list's first page uses the current revision). */
  snapshotRv: number;
  /** Exclusive start key (from the continue token); '' for the first page. */
  after: string;
  /** Only keys under "ns/" (namespace-scoped list). */
  namespace?: string;
  /** 0 = no limit. */
  limit: number;
  match?: (obj: unknown) => boolean;
}

export interface Page {
  items: unknown[];
  /** Last key scanned when the page was cut short; undefined when the list is complete. */
  nextAfter?: string;
  /** Items left after this page, when cheaply known (no selector): the API server's remainingItemCount. */
  remaining?: number;
}

export interface StoreOptions {
  /** Changes kept for watch replay and list snapshots (etcd compaction window). */
  historyLimit?: number;
  /** First revision handed out; real clusters are never at 1. */
  initialResourceVersion?: number;
}

export class Store {
  private rv: number;
  private readonly tables = new Map<Resource, Map<string, Entry>>(RESOURCES.map((r) => [r, new Map()]));
  private readonly sorted = new Map<Resource, string[] | null>();
  private history: ChangeEvent[] = [];
  private head = 0;
  /** Every change with rv > floorRv is still in history: watches from floorRv or later can replay. */
  private floorRv: number;
  private readonly historyLimit: number;
  private readonly listeners = new Set<(ev: ChangeEvent) => void>();

  constructor(opts: StoreOptions = {}) {
    this.rv = opts.initialResourceVersion ?? 1000;
    this.floorRv = this.rv;
    this.historyLimit = opts.historyLimit ?? 50_000;
  }

  /** The current global revision (etcd's revision): the resourceVersion of the newest change. */
  get resourceVersion(): number {
    return this.rv;
  }

  /** Oldest revision a watch may start from without 410. */
  get oldestResourceVersion(): number {
    return this.floorRv;
  }

  onChange(listener: (ev: ChangeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(resource: Resource, key: string): unknown {
    return this.tables.get(resource)!.get(key)?.obj;
  }

  count(resource: Resource): number {
    return this.tables.get(resource)!.size;
  }

  /**
   * Stores obj under key at a new revision and records ADDED or MODIFIED.
   * `stampResourceVersion: false` serves the object byte-for-byte as given (hostile-input tests).
   */
  put(resource: Resource, key: string, obj: unknown, stampResourceVersion = true): ChangeEvent {
    const table = this.tables.get(resource)!;
    const rv = ++this.rv;
    const prev = table.get(key);
    const stored = stampResourceVersion ? withResourceVersion(obj, rv) : obj;
    table.set(key, { obj: stored, rv });
    if (!prev) this.sorted.set(resource, null);
    return this.record({ rv, resource, type: prev ? 'MODIFIED' : 'ADDED', key, obj: stored, prev: prev?.obj });
  }

  /** Removes key and records DELETED carrying the last state at the delete's revision; undefined if absent. */
  remove(resource: Resource, key: string): ChangeEvent | undefined {
    const table = this.tables.get(resource)!;
    const prev = table.get(key);
    if (!prev) return undefined;
    const rv = ++this.rv;
    table.delete(key);
    this.sorted.set(resource, null);
    return this.record({ rv, resource, type: 'DELETED', key, obj: withResourceVersion(prev.obj, rv), prev: prev.obj });
  }

  private record(ev: ChangeEvent): ChangeEvent {
    this.history.push(ev);
    const live = this.history.length - this.head;
    if (live > this.historyLimit) this.dropHistory(live - this.historyLimit);
    for (const listener of this.listeners) listener(ev);
    return ev;
  }

  private dropHistory(n: number): void {
    this.floorRv = Math.max(this.floorRv, this.history[this.head + n - 1]!.rv);
    this.head += n;
    // Reclaim the array now and then rather than shifting on every write.
    if (this.head > 4096 && this.head * 2 > this.history.length) {
      this.history = this.history.slice(this.head);
      this.head = 0;
    }
  }

  /** Forgets history up to `upTo` (default: everything), like an etcd compaction: older revisions get 410. */
  compact(upTo = this.rv): void {
    const target = Math.min(upTo, this.rv);
    const idx = upperBound(this.history.slice(this.head), target, (e) => e.rv);
    if (idx > 0) this.dropHistory(idx);
    this.floorRv = Math.max(this.floorRv, target);
  }

  /** Changes with rv > since, oldest first; throws ExpiredError if some of them were compacted away. */
  changesSince(since: number): ChangeEvent[] {
    if (since < this.floorRv) throw new ExpiredError(since, this.floorRv);
    const start = upperBound(this.history, since, (e) => e.rv);
    return this.history.slice(Math.max(start, this.head));
  }

  /** All current objects of a resource in key order (a fresh array; objects are shared, do not mutate). */
  all(resource: Resource): unknown[] {
    const table = this.tables.get(resource)!;
    return this.sortedKeys(resource).map((k) => table.get(k)!.obj);
  }

  private sortedKeys(resource: Resource): string[] {
    let keys = this.sorted.get(resource);
    if (!keys) {
      keys = [...this.tables.get(resource)!.keys()].sort();
      this.sorted.set(resource, keys);
    }
    return keys;
  }

  /**
   * One page of a list as of `snapshotRv`. Objects changed after the snapshot are read back from
   * history (their `prev`), which is how etcd serves a continue token: consistent, until compacted.
   */
  page(resource: Resource, req: PageRequest): Page {
    const table = this.tables.get(resource)!;
    const overrides = new Map<string, unknown>();
    if (req.snapshotRv < this.rv) {
      for (const ev of this.changesSince(req.snapshotRv)) {
        if (ev.resource === resource && !overrides.has(ev.key)) overrides.set(ev.key, ev.prev);
      }
    }
    const current = this.sortedKeys(resource);
    // Keys deleted since the snapshot are not in the current table but belong to the snapshot.
    const gone = [...overrides.keys()].filter((k) => !table.has(k) && overrides.get(k) !== undefined).sort();
    const prefix = req.namespace !== undefined ? `${req.namespace}/` : '';
    const from = req.after > prefix ? req.after : prefix;
    const fromInclusive = req.after <= prefix;
    let i = fromInclusive ? lowerBound(current, from) : upperBound(current, from, (k) => k);
    let j = fromInclusive ? lowerBound(gone, from) : upperBound(gone, from, (k) => k);
    const items: unknown[] = [];
    let lastKey = '';
    while (i < current.length || j < gone.length) {
      const useGone = j < gone.length && (i >= current.length || gone[j]! < current[i]!);
      const key = useGone ? gone[j++]! : current[i++]!;
      if (prefix && !key.startsWith(prefix)) break;
      if (req.limit > 0 && items.length === req.limit) {
        const remaining = req.match || overrides.size > 0 || prefix ? undefined : current.length - i + 1;
        return { items, nextAfter: lastKey, remaining };
      }
      lastKey = key;
      const obj = overrides.has(key) ? overrides.get(key) : table.get(key)!.obj;
      if (obj === undefined) continue; // created after the snapshot
      if (req.match && !req.match(obj)) continue;
      items.push(obj);
    }
    return { items };
  }
}

function lowerBound(items: readonly string[], value: string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
