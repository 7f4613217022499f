// Label and field selectors, parsed once per request and evaluated per object.
// Grammar follows k8s.io/apimachinery/pkg/labels (=, ==, !=, in, notin, exists, !key);
// field selectors support only what the API server supports for custom resources:
// metadata.name and metadata.namespace with =, == and !=.

/** A compiled predicate over an object as served (arbitrary JSON: hostile objects included). */
export type Matcher = (obj: unknown) => boolean;

export class SelectorError extends Error {}

type Requirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: Set<string> }
  | { key: string; op: 'exists' | 'notexists' };

/** Splits on commas that are not inside parentheses: "a in (x,y),b" -> ["a in (x,y)", "b"]. */
function splitTopLevel(input: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of input) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

const KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$/;

function checkKey(key: string): string {
  if (!KEY.test(key)) throw new SelectorError(`invalid label key "${key}"`);
  return key;
}

function parseRequirement(text: string): Requirement {
  let m = /^!\s*(\S+)$/.exec(text);
  if (m) return { key: checkKey(m[1]!), op: 'notexists' };
  m = /^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/.exec(text);
  if (m) {
    const values = new Set(m[3]!.split(',').map((v) => v.trim()).filter((v) => v !== ''));
    return { key: checkKey(m[1]!), op: m[2] as 'in' | 'notin', values };
  }
  m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(text);
  if (m) return { key: checkKey(m[1]!), op: m[2] === '!=' ? 'neq' : 'eq', value: m[3]! };
  if (KEY.test(text)) return { key: text, op: 'exists' };
  throw new SelectorError(`unable to parse requirement: "${text}"`);
}

function stringMap(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function metadataOf(obj: unknown): Record<string, unknown> {
  return stringMap(stringMap(obj).metadata);
}

/** Evaluates one requirement against a label map; labels that are not strings never match a value. */
function test(req: Requirement, labels: Record<string, unknown>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, req.key);
  const value = labels[req.key];
  switch (req.op) {
    case 'exists':
      return has;
    case 'notexists':
      return !has;
    case 'eq':
      return has && value === req.value;
    case 'neq':
      // As in apimachinery: a missing label satisfies "!=".
      return !has || value !== req.value;
    case 'in':
      return has && typeof value === 'string' && req.values.has(value);
    case 'notin':
      return !has || typeof value !== 'string' || !req.values.has(value);
  }
}

/** Parses a labelSelector query parameter; undefined or empty means "everything". */
export function parseLabelSelector(selector: string | null | undefined): Matcher | undefined {
  if (!selector || selector.trim() === '') return undefined;
  const reqs = splitTopLevel(selector).map(parseRequirement);
  return (obj) => {
    const labels = stringMap(metadataOf(obj).labels);
    return reqs.every((r) => test(r, labels));
  };
}

const FIELDS: Record<string, (meta: Record<string, unknown>) => unknown> = {
  'metadata.name': (meta) => meta.name,
  'metadata.namespace': (meta) => meta.namespace,
};

/** Parses a fieldSelector; custom resources only index metadata.name and metadata.namespace. */
export function parseFieldSelector(selector: string | null | undefined): Matcher | undefined {
  if (!selector || selector.trim() === '') return undefined;
  const reqs = splitTopLevel(selector).map((text) => {
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(text);
    if (!m) throw new SelectorError(`invalid field selector: "${text}"`);
    const get = FIELDS[m[1]!];
    if (!get) throw new SelectorError(`field label not supported: ${m[1]}`);
    return { get, negate: m[2] === '!=', value: m[3]!.trim() };
  });
  return (obj) => {
    const meta = metadataOf(obj);
    return reqs.every((r) => {
      const v = r.get(meta);
      const actual = typeof v === 'string' ? v : '';
      return r.negate ? actual !== r.value : actual === r.value;
    });
  };
}

/** Combines optional matchers; undefined when nothing filters. */
export function combine(...matchers: (Matcher | undefined)[]): Matcher | undefined {
  const active = matchers.filter((m): m is Matcher => m !== undefined);
  if (active.length === 0) return undefined;
  if (active.length === 1) return active[0];
  return (obj) => active.every((m) => m(obj));
}
