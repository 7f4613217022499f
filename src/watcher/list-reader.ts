// Reads a Kubernetes list response (`{"apiVersion":..,"items":[..],"kind":..,"metadata":{..}}`) as
// it streams in, handing over one item at a time, so a page never sits in memory as its whole text
// plus every parsed object at once. A byte scanner finds where each element of the top-level
// `items` array begins and ends (strings and escapes respected, nesting counted); only that slice
// is decoded and parsed. Everything else of the envelope (metadata.continue, resourceVersion) is
// kept as text and parsed at the end. `onItem` may return a promise: reading (and so the socket)
// waits for it, which is how the memory budget pushes back on the API server.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

export class ListFormatError extends Error {
  override name = 'ListFormatError';
}

export interface ListEnvelope {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  [k: string]: unknown;
}

export interface ReadListOptions {
  /** An item longer than this is a broken response, not an object (the API server stores <= ~1.5 MiB). */
  maxItemBytes?: number;
  /** Aborts a body that delivers nothing for this long while we are waiting for it (not while onItem runs). */
  idleTimeoutMs?: number;
  onIdleTimeout?: () => void;
}

/** One parsed item and the bytes of JSON it came from. */
export type ItemHandler = (item: unknown, bytes: number) => void | Promise<void>;

const isSpace = (b: number): boolean => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/**
 * Scans `body` (any async iterable of Buffers: an http.IncomingMessage) and calls `onItem` for
 * each element of the top-level `items` array, in order. Returns the envelope without its items.
 */
export async function readList(body: AsyncIterable<Buffer>, onItem: ItemHandler, options: ReadListOptions = {}): Promise<ListEnvelope> {
  const maxItemBytes = options.maxItemBytes ?? 32 * 1024 * 1024;
  let depth = 0;
  let inString = false;
  let escape = false;
  // Top level (depth 1): the key whose value comes next, read as raw bytes.
  let expectKey = false;
  let keyBytes: number[] | null = null;
  let lastKey = '';
  let itemsNext = false; // saw "items": at depth 1, its '[' comes next
  let inItems = false; // inside the items array (depth 2 is the array itself)
  let itemParts: Buffer[] = [];
  let itemLen = 0;
  let itemOpen = false;
  let itemStart = -1;
  let sawItems = false;
  const envelope: Buffer[] = [];
  let envStart = 0;
  let timer: NodeJS.Timeout | null = null;
  const arm = (): void => {
    if (!options.idleTimeoutMs) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => options.onIdleTimeout?.(), options.idleTimeoutMs);
  };
  const disarm = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
  };

  const emit = async (): Promise<void> => {
    const raw = itemParts.length === 1 ? itemParts[0]! : Buffer.concat(itemParts, itemLen);
    itemParts = [];
    const bytes = itemLen;
    itemLen = 0;
    itemOpen = false;
    let item: unknown;
    try {
      item = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new ListFormatError('a list item is not valid JSON');
    }
    disarm();
    await onItem(item, bytes);
  };

  try {
    arm();
    for await (const chunk of body) {
      disarm();
      const buf = chunk;
      envStart = inItems ? -1 : 0;
      itemStart = itemOpen ? 0 : -1;
      let i = 0;
      const n = buf.length;
      while (i < n) {
        if (inString) {
          if (escape) {
            escape = false;
            if (keyBytes) keyBytes.push(buf[i]!);
            i++;
            continue;
          }
          // Jump to the next quote or backslash: most bytes of a Kubernetes object are in strings.
          let j = i;
          while (j < n) {
            const b = buf[j]!;
            if (b === QUOTE || b === BACKSLASH) break;
            j++;
          }
          if (keyBytes) for (let k = i; k < j; k++) keyBytes.push(buf[k]!);
          if (j === n) {
            i = n;
            break;
          }
          if (buf[j] === BACKSLASH) {
            escape = true;
            if (keyBytes) keyBytes.push(BACKSLASH);
            i = j + 1;
            continue;
          }
          inString = false;
          i = j + 1;
          if (keyBytes) {
            lastKey = Buffer.from(keyBytes).toString('utf8');
            keyBytes = null;
          }
          continue;
        }
        const b = buf[i]!;
        if (isSpace(b)) {
          i++;
          continue;
        }
        if (inItems && depth === 2 && !itemOpen) {
          // Between items: a comma, the closing bracket, or the first byte of the next item.
          if (b === COMMA) {
            i++;
            continue;
          }
          if (b === CLOSE_ARR) {
            inItems = false;
            depth--;
            envStart = i; // the ']' goes back into the envelope: "items":[]
            i++;
            continue;
          }
          if (b !== OPEN_OBJ) throw new ListFormatError('a list item is not an object');
          itemOpen = true;
          itemStart = i;
        }
        if (b === QUOTE) {
          inString = true;
          if (depth === 1 && expectKey) {
            keyBytes = [];
            expectKey = false;
          }
          i++;
          continue;
        }
        if (b === OPEN_OBJ || b === OPEN_ARR) {
          if (depth === 1 && b === OPEN_ARR && itemsNext) {
            itemsNext = false;
            inItems = true;
            sawItems = true;
            depth++;
            envelope.push(buf.subarray(envStart, i + 1)); // up to and including '['
            envStart = -1;
            i++;
            continue;
          }
          depth++;
          if (depth === 1) expectKey = true;
          i++;
          continue;
        }
        if (b === CLOSE_OBJ || b === CLOSE_ARR) {
          depth--;
          i++;
          if (inItems && depth === 2 && itemOpen) {
            const part = buf.subarray(itemStart, i);
            itemParts.push(part);
            itemLen += part.length;
            itemStart = -1;
            if (itemLen > maxItemBytes) throw new ListFormatError(`a list item exceeds ${maxItemBytes} bytes`);
            await emit();
          }
          continue;
        }
        if (depth === 1) {
          if (b === COLON) itemsNext = lastKey === 'items';
          else if (b === COMMA) {
            expectKey = true;
            itemsNext = false;
          }
        }
        i++;
      }
      if (itemOpen && itemStart >= 0) {
        const part = buf.subarray(itemStart, n);
        itemParts.push(Buffer.from(part)); // copy: the socket may reuse the chunk
        itemLen += part.length;
        if (itemLen > maxItemBytes) throw new ListFormatError(`a list item exceeds ${maxItemBytes} bytes`);
      }
      if (!inItems && envStart >= 0) envelope.push(Buffer.from(buf.subarray(envStart, n)));
      arm();
    }
  } finally {
    disarm();
  }
  if (depth !== 0 || inString || itemOpen) throw new ListFormatError('the list response ended early');
  let parsed: ListEnvelope;
  try {
    parsed = JSON.parse(Buffer.concat(envelope).toString('utf8')) as ListEnvelope;
  } catch {
    throw new ListFormatError('the list response is not JSON');
  }
  // A server that sent "items": null (or no items) simply had none; the envelope keeps the rest.
  void sawItems;
  delete parsed.items;
  return parsed;
}
