// The real watcher process (`node dist/src/cli/main.js run`) for end-to-end tests, plus a simulator
// and a kubeconfig for it. Every process started here is killed by stopAllWatchers(). Each one logs
// at info into its own buffer; when a test fails, the logs of the watchers it saw are printed.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'node:test';
import { packageRoot } from '../../src/lib/paths.js';

const cli = path.join(packageRoot, 'dist', 'src', 'cli', 'main.js');
const running = new Set<WatcherProcess>();
/** Watchers running, or that exited since the last test ended: the ones a failing test saw. */
const seen = new Set<WatcherProcess>();

/** Lines of each watcher's log printed when a test fails (WATCHER_LOG_LINES; 0 = none). */
const LOG_LINES_ON_FAILURE = Number(process.env.WATCHER_LOG_LINES ?? 150);

afterEach((t) => {
  // TestContext.passed (Node >= 20.12): false once the test has failed.
  if ((t as unknown as { passed?: boolean }).passed === false && LOG_LINES_ON_FAILURE > 0) {
    for (const w of seen) {
      const state = w.alive ? 'running' : 'exited';
      console.error(`--- watcher ${w.holder} (pid ${w.child.pid}, ${state}), last ${LOG_LINES_ON_FAILURE} log lines, test "${t.name}" failed:\n${w.tail(LOG_LINES_ON_FAILURE)}\n--- end of watcher ${w.holder}`);
    }
  }
  for (const w of seen) if (!w.alive) seen.delete(w);
});

/** Settings that make the watcher react in test time; each can be overridden per process. */
export const FAST_ENV: Record<string, string> = {
  BATCH_MAX_WAIT_MS: '30',
  RECONCILE_INTERVAL_MS: '500',
  RATIO_INTERVAL_MS: '500',
  LEADER_POLL_MS: '200',
  BACKOFF_INITIAL_MS: '50',
  BACKOFF_MAX_MS: '500',
  WATCH_TIMEOUT_SECONDS: '30',
  WATCH_IDLE_TIMEOUT_MS: '2000',
  REQUEST_TIMEOUT_MS: '5000',
  SHUTDOWN_TIMEOUT_MS: '4000',
  METRICS_ADDR: 'off',
  MIGRATE: 'false',
  LOG_LEVEL: 'info',
};

export class WatcherProcess {
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(
    readonly child: ChildProcess,
    readonly holder: string,
  ) {
    const collect = (chunk: Buffer): void => {
      this.output.push(chunk.toString('utf8'));
      // Logs of a long test stay bounded.
      if (this.output.length > 5000) this.output.splice(0, 1000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        running.delete(this);
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  /** Parsed JSON log lines (pino), skipping anything else. */
  logs(): Array<Record<string, unknown>> {
    return this.output
      .join('')
      .split('\n')
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }

  hasLogged(msg: string): boolean {
    return this.logs().some((l) => l.msg === msg);
  }

  /** Sends a signal and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.child.kill(signal);
    return this.exited;
  }

  tail(lines = 40): string {
    return this.output.join('').split('\n').slice(-lines).join('\n');
  }
}

export interface StartWatcherOptions {
  databaseUrl: string;
  kubeconfig: string;
  holder: string;
  env?: Record<string, string>;
  args?: string[];
}

export function startWatcher(options: StartWatcherOptions): WatcherProcess {
  const child = spawn(process.execPath, [cli, 'run', ...(options.args ?? [])], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? os.tmpdir(),
      ...FAST_ENV,
      DATABASE_URL: options.databaseUrl,
      KUBECONFIG: options.kubeconfig,
      VM_SYNC_HOLDER: options.holder,
      ...(process.env.WATCHER_LOG_LEVEL ? { LOG_LEVEL: process.env.WATCHER_LOG_LEVEL } : {}),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = new WatcherProcess(child, options.holder);
  running.add(proc);
  seen.add(proc);
  return proc;
}

/** For `after` hooks: no child outlives its test file. */
export async function stopAllWatchers(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill('SIGKILL')));
}

export function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `vmsync-${label}-`));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
