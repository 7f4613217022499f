// Child process of the memory benchmark: what a cache-based controller holds. Two
// @kubernetes/client-node informers (VirtualMachines and VirtualMachineInstances, cluster-wide)
// over the cluster in KUBECONFIG; once both caches hold `expected` objects, prints one JSON line
// with this process's peak RSS (VmHWM) and exits. Its own process, so nothing else is counted.
import fs from 'node:fs';
import * as k8s from '@kubernetes/client-node';

const expected = Number(process.argv[2] ?? '0');
const timeoutMs = Number(process.argv[3] ?? '300000');

function memory(): { peakRssMb: number; rssMb: number } {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (f: string) => Number(new RegExp(`^${f}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peakRssMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 };
}

async function main(): Promise<void> {
  const started = performance.now();
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const informers = ['virtualmachines', 'virtualmachineinstances'].map((plural) => {
    const informer = k8s.makeInformer(
      kc,
      `/apis/kubevirt.io/v1/${plural}`,
      // The informer's ListPromise type wants a typed list; custom objects come back as plain JSON.
      () => api.listClusterCustomObject({ group: 'kubevirt.io', version: 'v1', plural }) as any,
    );
    informer.on('error', () => undefined);
    return informer;
  });
  await Promise.all(informers.map((i) => i.start()));
  for (;;) {
    const sizes = informers.map((i) => i.list().length);
    if (sizes.every((n) => n >= expected)) {
      // Let the collector run once so VmHWM reflects what was held, not a transient the GC would drop anyway.
      (globalThis as { gc?: () => void }).gc?.();
      process.stdout.write(JSON.stringify({ ...memory(), cached: sizes, seconds: (performance.now() - started) / 1000 }) + '\n');
      break;
    }
    if (performance.now() - started > timeoutMs) {
      process.stdout.write(JSON.stringify({ ...memory(), cached: sizes, timeout: true }) + '\n');
      break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await Promise.all(informers.map((i) => i.stop()));
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(String(err?.stack ?? err) + '\n');
  process.exit(1);
});
