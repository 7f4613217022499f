// JSON text of any parsed value, however deep. JSON.stringify recurses and throws RangeError past
// a few thousand levels (JSON.parse does not: a 100,000-deep array parses fine), so a value it
// cannot write is written by an explicit stack instead. Same output as JSON.stringify for JSON data.

type Frame = { kind: 'array'; items: unknown[]; i: number } | { kind: 'object'; obj: Record<string, unknown>; keys: string[]; i: number; wrote: boolean };

/**
 * JSON text served as written, for hostile-input tests: duplicate keys, numbers beyond float
 * range, anything JSON.stringify cannot produce. `"__RV__"` in it is the resourceVersion slot.
 */
export class RawJson {
  constructor(
    readonly text: string,
    readonly resourceVersion: string | null = null,
  ) {}

  withResourceVersion(rv: number | string): RawJson {
    return new RawJson(this.text, String(rv));
  }

  toString(): string {
    return this.resourceVersion === null ? this.text : this.text.split('__RV__').join(this.resourceVersion);
  }
}

export function stringifyDeep(value: unknown): string {
  if (value instanceof RawJson) return value.toString();
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
  }
  const out: string[] = [];
  const stack: Frame[] = [];
  const emit = (v: unknown): void => {
    if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON !== 'function') {
      if (Array.isArray(v)) {
        out.push('[');
        stack.push({ kind: 'array', items: v, i: 0 });
      } else {
        out.push('{');
        stack.push({ kind: 'object', obj: v as Record<string, unknown>, keys: Object.keys(v), i: 0, wrote: false });
      }
      return;
    }
    out.push(JSON.stringify(v) ?? 'null');
  };
  emit(value);
  while (stack.length) {
    const f = stack[stack.length - 1]!;
    if (f.kind === 'array') {
      if (f.i >= f.items.length) {
        out.push(']');
        stack.pop();
        continue;
      }
      if (f.i > 0) out.push(',');
      const v = f.items[f.i++];
      emit(v === undefined || typeof v === 'function' ? null : v);
    } else {
      if (f.i >= f.keys.length) {
        out.push('}');
        stack.pop();
        continue;
      }
      const k = f.keys[f.i++]!;
      const v = f.obj[k];
      if (v === undefined || typeof v === 'function') continue;
      if (f.wrote) out.push(',');
      f.wrote = true;
      out.push(JSON.stringify(k), ':');
      emit(v);
    }
  }
  return out.join('');
}
