// A TCP proxy between a client and PostgreSQL that a test can cut and restore: cut() destroys every
// connection (both ends see a reset) and stops listening (new connections are refused), restore()
// listens again on the same port. A faithful stand-in for a database restart or a network partition.
import net from 'node:net';

export class PgProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  /** Connections accepted so far. */
  accepted = 0;
  cuts = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** A connection URL like `url` that goes through this proxy. */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  get isUp(): boolean {
    return this.server !== null;
  }

  async start(port = 0): Promise<void> {
    const server = net.createServer((client) => {
      this.accepted++;
      const upstream = net.connect(this.targetPort, this.targetHost);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Every connection dies (reset on both ends) and new ones are refused until restore(). */
  async cut(): Promise<void> {
    if (!this.server) return;
    this.cuts++;
    const server = this.server;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    await closed;
  }

  /** Listens again on the same port. */
  async restore(): Promise<void> {
    if (this.server) return;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.start(this.port);
        return;
      } catch (err) {
        if (attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async close(): Promise<void> {
    await this.cut();
  }
}

/** A started proxy to the server of `url`. */
export async function startPgProxy(url: string): Promise<PgProxy> {
  const u = new URL(url);
  const proxy = new PgProxy(u.hostname === 'localhost' ? '127.0.0.1' : u.hostname, Number(u.port || 5432));
  await proxy.start();
  return proxy;
}

/**
 * A PostgreSQL front end that speaks TLS only (like a `hostssl`-only pg_hba.conf): it answers the
 * client's SSLRequest with 'S', terminates TLS with the given certificate and forwards the plain
 * protocol to the server of `url`. A client that starts without TLS is disconnected.
 */
export async function startPgTlsProxy(
  url: string,
  tlsOptions: { key: Buffer; cert: Buffer },
): Promise<{ port: number; tlsSessions: () => number; refusedPlain: () => number; close: () => Promise<void> }> {
  const tls = await import('node:tls');
  const target = new URL(url);
  const context = tls.createSecureContext(tlsOptions);
  let sessions = 0;
  let refused = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => client.destroy());
    client.once('readable', function first(): void {
      const head = client.read(8) as Buffer | null;
      if (!head) {
        client.once('readable', first);
        return;
      }
      if (head.readInt32BE(0) !== 8 || head.readInt32BE(4) !== 80877103) {
        refused++;
        client.destroy();
        return;
      }
      client.write('S');
      const secure = new tls.TLSSocket(client, { isServer: true, secureContext: context });
      secure.on('error', () => client.destroy());
      secure.once('secure', () => {
        sessions++;
        const upstream = net.connect(Number(target.port || 5432), target.hostname === 'localhost' ? '127.0.0.1' : target.hostname);
        sockets.add(upstream);
        upstream.on('error', () => secure.destroy());
        secure.on('close', () => upstream.destroy());
        upstream.on('close', () => secure.destroy());
        secure.pipe(upstream);
        upstream.pipe(secure);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    tlsSessions: () => sessions,
    refusedPlain: () => refused,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
