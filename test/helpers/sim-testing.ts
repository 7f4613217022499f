// A tiny raw watch client for tests of anything that talks to the simulator: opens a watch URL
// with node:http, splits the newline-delimited JSON stream, and lets a test await the next
// matching event (no sleeping). Deliberately independent of @kubernetes/client-node.
import http from 'node:http';

export interface WatchEvent {
  type: string;
  object: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

type Waiter = { pred: (e: WatchEvent) => boolean; resolve: (e: WatchEvent) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };

export class RawWatch {
  /** Every event received so far, in order. */
  readonly events: WatchEvent[] = [];
  /** Resolves when the stream ends: 'end' (clean end of the chunked body) or 'aborted' (connection cut). */
  readonly ended: Promise<'end' | 'aborted'>;
  private cursor = 0;
  private waiters: Waiter[] = [];
  private done = false;
  private finish!: (how: 'end' | 'aborted') => void;

  private constructor(
    readonly status: number,
    private readonly req: http.ClientRequest,
    res: http.IncomingMessage,
  ) {
    this.ended = new Promise((resolve) => (this.finish = resolve));
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line) this.push(JSON.parse(line) as WatchEvent);
      }
    });
    const end = (how: 'end' | 'aborted'): void => {
      if (this.done) return;
      this.done = true;
      if (buffer.trim() && status !== 200) this.body = buffer;
      for (const w of this.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error(`watch ended (${how}) before the awaited event; got ${this.events.map((e) => e.type).join(',')}`));
      }
      this.finish(how);
    };
    res.on('end', () => end(res.complete ? 'end' : 'aborted'));
    res.on('aborted', () => end('aborted'));
    res.on('error', () => end('aborted'));
    res.on('close', () => end(res.complete ? 'end' : 'aborted'));
  }

  /** The body of a non-200 answer (a Status JSON). */
  body = '';

  /** Opens a watch; resolves once response headers arrive (so a stalled server keeps this pending). */
  static open(url: string): Promise<RawWatch> {
    return new Promise((resolve, reject) => {
      const req = http.get(url, (res) => {
        const w = new RawWatch(res.statusCode ?? 0, req, res);
        if (w.status !== 200) {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => {
            w.body = body;
            resolve(w);
          });
        } else resolve(w);
      });
      req.on('error', reject);
    });
  }

  private push(e: WatchEvent): void {
    this.events.push(e);
    this.drain();
  }

  private drain(): void {
    while (this.waiters.length > 0 && this.cursor < this.events.length) {
      const e = this.events[this.cursor++]!;
      const w = this.waiters[0]!;
      if (w.pred(e)) {
        this.waiters.shift();
        clearTimeout(w.timer);
        w.resolve(e);
      }
    }
  }

  /** The next not-yet-consumed event satisfying pred (events before it are skipped). */
  next(pred: (e: WatchEvent) => boolean = () => true, timeoutMs = 5000): Promise<WatchEvent> {
    return new Promise((resolve, reject) => {
      if (this.done && this.cursor >= this.events.length) return reject(new Error('watch already ended'));
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`no matching watch event within ${timeoutMs} ms; got ${this.events.map((e) => `${e.type}:${e.object?.metadata?.name ?? ''}`).join(',')}`));
      }, timeoutMs);
      this.waiters.push({ pred, resolve, reject, timer });
      this.drain();
    });
  }

  /** Closes the connection from the client side. */
  close(): void {
    this.req.destroy();
  }
}
