// What the watcher does to an object before PostgreSQL sees it: only what keeps one hostile or
// bulky object from hurting a batch. All interpretation happens in SQL.
import type { Kind, KubeObject } from './kube-client.js';

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
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
