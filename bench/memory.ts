// Section 4, the informer's half: a @kubernetes/client-node informer pair caching the same VMs and
// VMIs, in a child process of its own (bench/informer-child.ts), over an identical simulated cluster.
// The watcher's half (its VmHWM during the cold start) comes from the cold-start run.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../src/lib/paths.js';
import { startCluster } from './watcher.js';

export interface InformerResult {
  vms: number;
  informerPeakRssMb: number;
  informerRssMb: number;
  cached: number[];
  listSeconds?: number;
  timedOut: boolean;
}

export async function benchInformer(vms: number, opts: { timeoutMs: number }): Promise<InformerResult> {
  const cluster = await startCluster(vms);
  try {
    const child = spawn(
      process.execPath,
      // A 100,000-VMI list is hundreds of MB of JSON: give the heap room, so what we measure is what it holds, not a crash.
      ['--max-old-space-size=8192', '--expose-gc', path.join(packageRoot, 'dist', 'bench', 'informer-child.js'), String(vms), String(opts.timeoutMs)],
      { env: { ...process.env, KUBECONFIG: cluster.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    const line = out.trim().split('\n').pop();
    if (code !== 0 || !line) throw new Error(`informer child failed (exit ${code}): ${err.slice(-2000)}`);
    const r = JSON.parse(line) as { peakRssMb: number; rssMb: number; cached: number[]; seconds?: number; timeout?: boolean };
    return { vms, informerPeakRssMb: r.peakRssMb, informerRssMb: r.rssMb, cached: r.cached, listSeconds: r.seconds, timedOut: !!r.timeout };
  } finally {
    await cluster.close();
  }
}
