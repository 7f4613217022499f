// Standalone simulator: `node dist/src/sim/main.js [--port 0] [--host 127.0.0.1] [--kubeconfig PATH]
// [--seed N] [--namespaces a,b] [--bookmark-ms N] [--history N] [--step-delay-ms N] [--no-instancetype-api]`.
// Prints one JSON line {"url":...,"port":...,"kubeconfig":...} on stdout when ready, then serves
// until SIGINT/SIGTERM. Drive it over HTTP under /sim/v1 (see docs/simulator.md).
import { parseArgs } from 'node:util';
import { startSimulator } from './simulator.js';

const USAGE = `usage: kubevirt-sim [--port 0] [--host 127.0.0.1] [--kubeconfig PATH] [--seed N]
       [--namespaces ns1,ns2] [--running-ratio 1] [--bookmark-ms 5000] [--history 50000] [--step-delay-ms 0]
       [--no-instancetype-api]`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      kubeconfig: { type: 'string' },
      seed: { type: 'string', default: '0' },
      namespaces: { type: 'string', default: 'default' },
      'running-ratio': { type: 'string', default: '1' },
      'bookmark-ms': { type: 'string', default: '5000' },
      history: { type: 'string', default: '50000' },
      'step-delay-ms': { type: 'string', default: '0' },
      'no-instancetype-api': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const int = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${v}`);
    return n;
  };
  const sim = await startSimulator({
    port: int('port', values.port),
    host: values.host,
    bookmarkIntervalMs: int('bookmark-ms', values['bookmark-ms']),
    historyLimit: int('history', values.history),
    stepDelayMs: int('step-delay-ms', values['step-delay-ms']),
    instancetypeApi: !values['no-instancetype-api'],
  });
  const seed = int('seed', values.seed);
  if (seed > 0) sim.seed(seed, { namespaces: values.namespaces!.split(',').filter(Boolean), runningRatio: int('running-ratio', values['running-ratio']) });
  if (values.kubeconfig) await sim.writeKubeconfig(values.kubeconfig);
  process.stdout.write(JSON.stringify({ url: sim.url, port: sim.port, kubeconfig: values.kubeconfig ?? null }) + '\n');
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`kubevirt-sim: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
  process.exit(2);
});
