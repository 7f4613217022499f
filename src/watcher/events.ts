// What the watcher does to an object before PostgreSQL sees it: only what keeps one hostile or
// bulky object from hurting a batch. All interpretation happens in SQL.
import type { Kind, KubeObject } from './kube-client.js';
import { DEFAULT_LIMITS, measure, trimToContract, type ObjectLimits } from './limits.js';

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
  /** Set when the watcher itself could not send the object whole: recorded with the batch. */
  reject?: WatcherReject;
}

/** A vm_sync.rejects row the watcher records (vm_sync.record_rejects). */
export interface WatcherReject {
  kind: string | null;
  namespace: string | null;
  name: string | null;
  uid: string | null;
  resourceVersion: string | null;
  field: string;
  value: unknown;
  reason: string;
}

export interface Checkpoint {
  kind: Kind;
  scope: string;
  resourceVersion: string;
}

/**
 * Drops metadata.managedFields (often most of an object's bytes, never used) and fills in
 * apiVersion/kind, which list responses leave off their items.
 */
export function prepareObject(object: KubeObject, kind: Kind, apiVersion = 'kubevirt.io/v1'): KubeObject {
  if (object.metadata && 'managedFields' in object.metadata) delete object.metadata.managedFields;
  if (!object.kind) object.kind = kind;
  if (!object.apiVersion) object.apiVersion = apiVersion;
  return object;
}

function text(v: unknown): string | null {
  return typeof v === 'string' ? v.slice(0, 253) : null;
}

/** The reject of an object's key, for any field and reason. */
export function rejectOf(object: unknown, kind: string, field: string, value: unknown, reason: string): WatcherReject {
  const o = (object !== null && typeof object === 'object' ? object : {}) as KubeObject;
  const m = (o.metadata !== null && typeof o.metadata === 'object' ? o.metadata : {}) as Record<string, unknown>;
  return {
    kind: text(o.kind) ?? kind,
    namespace: text(m.namespace),
    name: text(m.name),
    uid: text(m.uid),
    resourceVersion: text(m.resourceVersion),
    field,
    value,
    reason,
  };
}

/**
 * An event as it is sent: prepared, and, when the object is deeper or larger than the limits,
 * cut down to the contract's fields with a reject that says why (`bytes`: its size when known).
 */
export function prepareEvent(type: WatchEvent['type'], object: KubeObject, kind: Kind, limits: ObjectLimits = DEFAULT_LIMITS, bytes?: number, apiVersion?: string): WatchEvent {
  prepareObject(object, kind, apiVersion);
  const m = measure(object, limits);
  if (!m.over && (bytes === undefined || bytes <= limits.maxBytes)) return { type, object };
  const trimmed = trimToContract(object) as KubeObject;
  prepareObject(trimmed, kind, apiVersion);
  return { type, object: trimmed, reject: oversizeReject(trimmed, kind, m.over ?? 'size', m.over === 'depth' ? m.depth : Math.max(m.bytes, bytes ?? 0), limits) };
}

/** The reject of an object over a limit (`amount`: its depth, or its size in bytes, at least). */
export function oversizeReject(object: unknown, kind: string, over: 'depth' | 'size', amount: number, limits: ObjectLimits): WatcherReject {
  const reason =
    over === 'depth'
      ? `object nested deeper than ${limits.maxDepth} levels (MAX_OBJECT_DEPTH): only the fields the contract reads were kept`
      : `object larger than ${limits.maxBytes} bytes (MAX_OBJECT_BYTES): only the fields the contract reads were kept`;
  return rejectOf(object, kind, 'object', over === 'depth' ? { depth: amount } : { bytes: amount }, reason);
}

/**
 * JSON for a jsonb parameter. jsonb cannot hold U+0000, nor a lone UTF-16 surrogate, and one such
 * character would abort the whole batch, so each becomes U+FFFD. Works on the serialized text:
 * JSON.stringify escapes exactly these (a NUL as \u0000, a lone surrogate as \udXXX; a proper pair is
 * written as itself), and an escape counts only after an even number of backslashes (an odd number
 * is a literal backslash followed by text).
 */
export function toJsonb(value: unknown): string {
  const text = JSON.stringify(value);
  if (!text.includes('\\u')) return text;
  return text.replace(/(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/gi, '$1\\ufffd');
}

/**
 * Key an event coalesces on: the same object, whatever its uid. A JSON tuple, never a joined string:
 * no two (kind, namespace, name) share one, whatever characters their parts hold.
 */
export function objectKey(event: WatchEvent): string {
  const m = event.object.metadata ?? {};
  return JSON.stringify([event.object.kind ?? null, m.namespace ?? null, m.name ?? null]);
}

/** Two batch summaries as one: counts added, lists (field_updates, rejected_objects) joined. */
export function combineSummaries(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const w = out[k];
    if (v === undefined || v === null) continue;
    if (typeof v === 'number') out[k] = (typeof w === 'number' ? w : Number(w ?? 0) || 0) + v;
    else if (Array.isArray(v)) out[k] = [...(Array.isArray(w) ? w : []), ...v];
    else if (w === undefined) out[k] = v;
  }
  return out;
}
