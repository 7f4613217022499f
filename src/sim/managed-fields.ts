// metadata.managedFields as the API server's server-side-apply bookkeeping writes them: one entry
// per manager, its `fieldsV1` a trie of the paths that manager set. Derived from the object itself
// rather than typed out, so a bigger object carries bigger managedFields, as on a real cluster.
//
// Encoding (Kubernetes structured-merge-diff "FieldsV1", as printed by `kubectl get -o yaml
// --show-managed-fields`, e.g. the VMI dump quoted in kubevirt/kubevirt issue 6566): a map key is
// "f:<key>", a map the manager created also lists "." itself; KubeVirt's CRD schemas declare most
// lists atomic, so `disks`, `interfaces`, `volumes`, `conditions` are leaves ("f:disks": {}); the
// built-in metadata lists are not: finalizers are a set ('v:"<value>"') and ownerReferences a map
// list keyed by uid ('k:{"uid":"..."}').

type Tree = Record<string, unknown>;

const cache = new Map<string, Tree>();

/** One shared frozen instance per distinct trie: 100,000 VMs have a handful of shapes. */
function shared(tree: Tree): Tree {
  const key = JSON.stringify(tree);
  let hit = cache.get(key);
  if (!hit) {
    if (cache.size > 50_000) cache.clear();
    hit = tree;
    cache.set(key, hit);
  }
  return hit;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const LEAF = Object.freeze({});

function trie(value: Record<string, unknown>, withDot: boolean): Tree {
  const out: Tree = withDot ? { '.': LEAF } : {};
  for (const k of Object.keys(value).sort()) {
    const v = value[k];
    if (v === undefined) continue;
    out[`f:${k}`] = isMap(v) && Object.keys(v).length > 0 ? trie(v, true) : LEAF;
  }
  return out;
}

/** The trie of every path under a map value, lists as leaves (one shared instance per distinct trie). */
export function fieldsOf(value: Record<string, unknown>, withDot = true): Tree {
  return shared(trie(value, withDot));
}

const byKey = new Map<string, Tree>();

/**
 * fieldsOf for a value whose key structure `key` fully determines (the caller's promise): the
 * trie is built once per key, which keeps rendering 200,000 objects cheap.
 */
export function fieldsOfKeyed(key: string, value: Record<string, unknown>, withDot = true): Tree {
  let hit = byKey.get(key);
  if (!hit) {
    if (byKey.size > 50_000) byKey.clear();
    hit = fieldsOf(value, withDot);
    byKey.set(key, hit);
  }
  return hit;
}

/** Only the listed keys of a map (a manager that set part of it). */
export function fieldsOfKeys(value: Record<string, unknown>, keys: readonly string[], withDot = false): Tree {
  const picked: Record<string, unknown> = {};
  for (const k of keys) if (value[k] !== undefined) picked[k] = value[k];
  return fieldsOf(picked, withDot);
}

export interface MetadataFields {
  annotations?: Record<string, unknown>;
  labels?: Record<string, unknown>;
  finalizers?: readonly string[];
  ownerUid?: string;
}

/** f:metadata of a creating manager: annotations and labels per key, finalizers as a set, the owner by uid. */
export function metadataFields(m: MetadataFields): Tree {
  const out: Tree = {};
  if (m.annotations && Object.keys(m.annotations).length) out['f:annotations'] = fieldsOf(m.annotations);
  if (m.finalizers?.length) {
    const f: Tree = { '.': LEAF };
    for (const v of m.finalizers) f[`v:${JSON.stringify(v)}`] = {};
    out['f:finalizers'] = shared(f);
  }
  if (m.labels && Object.keys(m.labels).length) out['f:labels'] = fieldsOf(m.labels);
  if (m.ownerUid) {
    out['f:ownerReferences'] = {
      '.': LEAF,
      [`k:{"uid":"${m.ownerUid}"}`]: OWNER_FIELDS,
    };
  }
  return out;
}

const OWNER_FIELDS = Object.freeze({ '.': {}, 'f:apiVersion': {}, 'f:blockOwnerDeletion': {}, 'f:controller': {}, 'f:kind': {}, 'f:name': {}, 'f:uid': {} });

export interface ManagedEntry {
  manager: string;
  time: string;
  fields: Tree;
  subresource?: 'status';
  apiVersion?: string;
}

export function managedEntry(e: ManagedEntry): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    apiVersion: e.apiVersion ?? 'kubevirt.io/v1',
    fieldsType: 'FieldsV1',
    fieldsV1: e.fields,
    manager: e.manager,
    operation: 'Update',
  };
  if (e.subresource) entry.subresource = e.subresource;
  entry.time = e.time;
  return entry;
}
