// Runs the real command (`node dist/src/cli/main.js ...`) with a clean environment and collects
// its exit code and output; for tests of what an operator sees.
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../src/lib/paths.js';

export const CLI = path.join(packageRoot, 'dist', 'src', 'cli', 'main.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A stack trace line ("    at fn (file.js:1:2)"), which an operator should never see. */
export const STACK = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m;

/** Environment without the caller's KUBECONFIG, DATABASE_URL or proxies; HOME is an empty folder unless given. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), LOG_LEVEL: 'info', METRICS_ADDR: 'off' };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/**
 * Runs the CLI to its end. `onOutput` sees the output as it grows and may return a signal to send
 * (once), e.g. SIGTERM after the first retry is logged.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv, onOutput?: (out: string) => NodeJS.Signals | void, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ssvirt-vm-sync ${args.join(' ')} did not end in ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    const seen = (): void => {
      if (signalled || !onOutput) return;
      const s = onOutput(stdout + stderr);
      if (s) {
        signalled = true;
        child.kill(s);
      }
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => ((stdout += d), seen()));
    child.stderr.setEncoding('utf8').on('data', (d: string) => ((stderr += d), seen()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // 'exit' may come before the pipes are drained.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
}

/** The lines a command printed on stderr that are not JSON log records. */
export function plainLines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
}
