// A TCP proxy in front of the Kubernetes API (the simulator) that degrades watch streams the way
// load balancers and slow links do, while lists and other requests pass untouched:
//   cutEvery(bytes)   a watch response is cut (both sockets destroyed) after this many bytes;
//   trickle(bps)      watch responses are delivered at this many bytes per second.
// A watch is recognised by its request line (`GET ...watch=true`), per request on keep-alive sockets.
import net from 'node:net';

export class StreamProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private cutAfter: number | null = null;
  private bytesPerSecond: number | null = null;
  port = 0;
  /** Watch responses cut so far. */
  cuts = 0;
  /** Watch requests seen so far. */
  watches = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Every watch response from now on is cut after `bytes` (null: never). */
  cutEvery(bytes: number | null): void {
    this.cutAfter = bytes;
  }

  /** Watch responses (those open now too) go at `bytesPerSecond` (null: full speed). */
  trickle(bytesPerSecond: number | null): void {
    this.bytesPerSecond = bytesPerSecond;
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => this.connection(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private connection(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, this.targetHost);
    this.sockets.add(client);
    this.sockets.add(upstream);
    let watching = false;
    let sent = 0;
    const queue: Buffer[] = [];
    let timer: NodeJS.Timeout | null = null;
    const close = (): void => {
      if (timer) clearInterval(timer);
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    client.on('data', (chunk: Buffer) => {
      const m = /^GET (\S+) HTTP/m.exec(chunk.toString('latin1'));
      if (m) {
        watching = /[?&]watch=(true|1)\b/.test(m[1]!);
        sent = 0;
        if (watching) this.watches++;
      }
      upstream.write(chunk);
    });
    // Delivers to the client, honouring the cut; returns false once the connection is cut.
    const deliver = (chunk: Buffer): boolean => {
      if (watching && this.cutAfter !== null && sent + chunk.length >= this.cutAfter) {
        client.write(chunk.subarray(0, Math.max(0, this.cutAfter - sent)));
        this.cuts++;
        close();
        return false;
      }
      sent += chunk.length;
      client.write(chunk);
      return true;
    };
    const pump = (): void => {
      const bps = this.bytesPerSecond;
      let budget = bps === null ? Number.POSITIVE_INFINITY : Math.max(1, Math.round(bps / 10));
      while (queue.length && budget > 0) {
        const head = queue[0]!;
        const piece = head.subarray(0, Math.min(head.length, budget));
        if (piece.length === head.length) queue.shift();
        else queue[0] = head.subarray(piece.length);
        budget -= piece.length;
        if (!deliver(piece)) return;
      }
      if (queue.length === 0) {
        if (timer) clearInterval(timer);
        timer = null;
        upstream.resume();
      }
    };
    upstream.on('data', (chunk: Buffer) => {
      if (!watching || (this.bytesPerSecond === null && queue.length === 0)) {
        deliver(chunk);
        return;
      }
      queue.push(chunk);
      upstream.pause();
      timer ??= setInterval(pump, 100);
    });
  }
}
