// A watch event line too large to hold: scanned as it streams in, one chunk at a time, without
// building the object. Only the event's `type` and the contract's fields of its `object` are kept
// (each at most FIELD_LIMITS in size), so a 20 MB line costs a few kilobytes of heap, not 60 MB.
// A state machine over characters, with an explicit stack: no recursion, any depth.
import { CONTRACT_PATHS, FIELD_LIMITS, measure, setPath } from './limits.js';

interface Frame {
  array: boolean;
  key: string | null;
  index: number;
}

interface Capture {
  path: string;
  /** Stack height when the value started: it ends when a value ends at this height. */
  height: number;
  parts: string[];
  size: number;
  /** Where the value starts in the current chunk (0 once it spans chunks). */
  start: number;
}

const enum S {
  Value,
  ValueOrEnd,
  KeyOrEnd,
  Key,
  Colon,
  After,
  String,
  Literal,
}

const SEP = '\u0001';
const WANTED = new Set<string>(['type', ...CONTRACT_PATHS.map((p) => ['object', ...p].join(SEP))]);
const LONGEST = Math.max(...CONTRACT_PATHS.map((p) => p.length)) + 1;
const MAX_KEY = 1024;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

export interface Skimmed {
  type: unknown;
  object: Record<string, unknown>;
  /** Characters seen (a lower bound on the line's bytes). */
  chars: number;
  depth: number;
}

export class LineSkimmer {
  private state = S.Value;
  private readonly stack: Frame[] = [];
  private captures: Capture[] = [];
  private readonly results = new Map<string, string>();
  private escaped = false;
  private key = '';
  private keyLong = false;
  private chars = 0;
  private depth = 0;

  /** Feeds the next piece of the line (without its newline). */
  feed(text: string): void {
    this.chars += text.length;
    for (const c of this.captures) c.start = 0;
    const n = text.length;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      switch (this.state) {
        case S.String:
          if (this.escaped) this.escaped = false;
          else if (c === 0x5c) this.escaped = true;
          else if (c === 0x22) this.endValue(text, i + 1);
          break;
        case S.Key:
          if (this.escaped) this.escaped = false;
          else if (c === 0x5c) this.escaped = true;
          else if (c === 0x22) {
            this.setKey();
            this.state = S.Colon;
            break;
          }
          if (this.key.length < MAX_KEY) this.key += text[i];
          else this.keyLong = true;
          break;
        case S.Literal:
          if (c === 0x2c || c === 0x7d || c === 0x5d || isSpace(c)) {
            this.endValue(text, i);
            i--; // the delimiter is read again in state After
          }
          break;
        case S.Colon:
          if (c === 0x3a) this.state = S.Value;
          break;
        case S.KeyOrEnd:
          if (c === 0x22) {
            this.state = S.Key;
            this.key = '';
            this.keyLong = false;
          } else if (c === 0x7d) this.close(text, i);
          break;
        case S.ValueOrEnd:
          if (c === 0x5d) {
            this.close(text, i);
            break;
          }
          if (isSpace(c)) break;
          this.startValue(i, c);
          break;
        case S.Value:
          if (isSpace(c)) break;
          this.startValue(i, c);
          break;
        case S.After:
          if (c === 0x2c) {
            const top = this.stack[this.stack.length - 1];
            if (!top) break;
            if (top.array) {
              top.index++;
              top.key = String(top.index);
              this.state = S.Value;
            } else this.state = S.KeyOrEnd;
          } else if (c === 0x7d || c === 0x5d) this.close(text, i);
          break;
      }
    }
    for (const c of this.captures) this.collect(c, text.slice(c.start));
  }

  /** What the line said about the event, once it is complete. */
  finish(): Skimmed {
    const object: Record<string, unknown> = {};
    let type: unknown;
    for (const [path, raw] of this.results) {
      let v: unknown;
      try {
        v = JSON.parse(raw);
      } catch {
        continue;
      }
      if (measure(v, FIELD_LIMITS).over) continue;
      const keys = path.split(SEP);
      if (keys.length === 1) type = v;
      else setPath(object, keys.slice(1), v);
    }
    return { type, object, chars: this.chars, depth: this.depth };
  }

  private path(): string | null {
    if (this.stack.length > LONGEST) return null;
    const keys: string[] = [];
    for (const f of this.stack) {
      if (f.key === null) return null;
      keys.push(f.key);
    }
    const p = keys.join(SEP);
    return WANTED.has(p) ? p : null;
  }

  private startValue(i: number, c: number): void {
    const p = this.stack.length ? this.path() : null;
    if (p !== null) this.captures.push({ path: p, height: this.stack.length, parts: [], size: 0, start: i });
    if (c === 0x7b || c === 0x5b) {
      this.stack.push({ array: c === 0x5b, key: c === 0x5b ? '0' : null, index: 0 });
      if (this.stack.length > this.depth) this.depth = this.stack.length;
      this.state = c === 0x5b ? S.ValueOrEnd : S.KeyOrEnd;
    } else if (c === 0x22) {
      this.state = S.String;
      this.escaped = false;
    } else this.state = S.Literal;
  }

  private setKey(): void {
    const top = this.stack[this.stack.length - 1];
    if (!top) return;
    let k: string | null = null;
    if (!this.keyLong) {
      try {
        k = JSON.parse(`"${this.key}"`) as string;
      } catch {
        k = null;
      }
    }
    // A key that cannot be read never matches a wanted path.
    top.key = k ?? '\u0000';
  }

  private close(text: string, i: number): void {
    this.stack.pop();
    this.endValue(text, i + 1);
  }

  /** A value ended just before `end` in `text`, at the current stack height. */
  private endValue(text: string, end: number): void {
    this.state = S.After;
    if (!this.captures.length) return;
    const h = this.stack.length;
    const keep: Capture[] = [];
    for (const c of this.captures) {
      if (c.height !== h) {
        keep.push(c);
        continue;
      }
      this.collect(c, text.slice(c.start, end));
      if (c.size >= 0) this.results.set(c.path, c.parts.join(''));
    }
    this.captures = keep;
  }

  private collect(c: Capture, piece: string): void {
    if (c.size < 0) return;
    c.size += piece.length;
    if (c.size > FIELD_LIMITS.maxBytes) {
      c.size = -1; // too large to keep: dropped
      c.parts = [];
      return;
    }
    c.parts.push(piece);
  }
}
