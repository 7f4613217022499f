// The operations endpoint: /metrics (Prometheus), /healthz (the process works), /readyz (it does its job).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenAddr } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';

export interface Readiness {
  /** Null when ready, else why not. */
  check(): Promise<string | null>;
  /** Lines of detail shown under the verdict (what optional APIs the cluster serves, say). */
  details?(): string[];
}

/** Notices a blocked event loop: a tick every second, and /healthz fails when ticks stop. */
class LoopWatch {
  private last = Date.now();
  private readonly timer = setInterval(() => (this.last = Date.now()), 1000).unref();
  stalledMs(): number {
    return Date.now() - this.last;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

export interface OpsServer {
  /** The bound address (port 0 resolves to a real one). */
  address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startOpsServer(addr: ListenAddr, deps: { metrics: Metrics; readiness: Readiness; logger: Logger }): Promise<OpsServer> {
  const loop = new LoopWatch();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    if (path === '/healthz' || path === '/livez') {
      const stalled = loop.stalledMs();
      return stalled > 10_000 ? reply(503, `event loop stalled for ${stalled} ms\n`) : reply(200, 'ok\n');
    }
    if (path === '/readyz') {
      deps.readiness.check().then(
        (why) => {
          const details = deps.readiness.details?.().map((d) => `${d}\n`).join('') ?? '';
          return why === null ? reply(200, `ok\n${details}`) : reply(503, `${why}\n${details}`);
        },
        (err) => reply(503, `readiness check failed: ${(err as Error).message}\n`),
      );
      return;
    }
    if (path === '/metrics') {
      deps.metrics.registry.metrics().then(
        (text) => reply(200, text, deps.metrics.registry.contentType),
        (err) => {
          deps.logger.warn({ err }, 'collecting metrics failed');
          reply(500, 'metrics unavailable\n');
        },
      );
      return;
    }
    reply(404, 'not found\n');
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  deps.logger.info({ host: bound.address, port: bound.port }, 'serving /metrics, /healthz, /readyz');
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        loop.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
