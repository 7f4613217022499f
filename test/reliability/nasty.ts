// A seeded generator of nasty KubeVirt objects: deep, wide, huge strings, every Unicode plane,
// lone surrogates, NULs, numbers beyond float range, duplicate keys (the last two as raw JSON text,
// which JSON.stringify cannot write). Each says whether the watcher must cut it down (one reject,
// field "object") or send it whole.
import { RawJson } from '../../src/lib/json.js';
import { uidFor, vm, vmi, type Obj } from './objects.js';

export type NastyKind = 'deep' | 'wide' | 'huge-string' | 'unicode' | 'lone-surrogates' | 'nuls' | 'big-numbers' | 'duplicate-keys';
export const NASTY_KINDS: readonly NastyKind[] = ['deep', 'wide', 'huge-string', 'unicode', 'lone-surrogates', 'nuls', 'big-numbers', 'duplicate-keys'];

export interface Nasty {
  kind: NastyKind;
  resource: 'virtualmachines' | 'virtualmachineinstances';
  namespace: string;
  name: string;
  object: Obj | RawJson;
  /** Over MAX_OBJECT_BYTES (2 MB) or MAX_OBJECT_DEPTH (100): exactly one reject of field "object". */
  overLimit: boolean;
}

function deepArray(depth: number): unknown {
  let v: unknown = [];
  for (let i = 1; i < depth; i++) v = [v];
  return v;
}

/** A string with a character of every Unicode plane (0-16), astral ones as proper pairs. */
function everyPlane(random: () => number): string {
  let s = '';
  for (let plane = 0; plane <= 16; plane++) {
    let cp = plane * 0x10000 + 0x20 + Math.floor(random() * 0xffd0);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xe000;
    s += String.fromCodePoint(cp);
  }
  return s;
}

export function nasty(kind: NastyKind, namespace: string, name: string, random: () => number): Nasty {
  const base = vm({ namespace, name, cpu: { cores: 2 }, memory: '1Gi', printableStatus: 'Stopped' });
  const at = (o: Obj, over: boolean, resource: Nasty['resource'] = 'virtualmachines'): Nasty => ({ kind, resource, namespace, name, object: o, overLimit: over });
  switch (kind) {
    case 'deep': {
      const depth = 150 + Math.floor(random() * 8000);
      base.spec.template.metadata = { annotations: { 'vm.kubevirt.io/os': 'fedora' }, deep: deepArray(depth) };
      return at(base, true);
    }
    case 'wide': {
      const keys = random() < 0.5 ? 20_000 : 150_000;
      const wide: Record<string, string> = {};
      for (let i = 0; i < keys; i++) wide[`k${i}`] = 'v'.repeat(8);
      base.metadata.labels = wide;
      return at(base, keys * 17 > 2 * 1024 * 1024);
    }
    case 'huge-string': {
      const mb = 2.5 + random() * 4;
      const o = vmi({ namespace, name, cpu: { cores: 3 }, memory: '3Gi', guestOS: { prettyName: 'Fedora' } });
      o.metadata.annotations = { blob: 'x'.repeat(Math.floor(mb * 1024 * 1024)) };
      return at(o, true, 'virtualmachineinstances');
    }
    case 'unicode': {
      const o = vmi({ namespace, name, cpu: { cores: 1 }, memory: '1Gi', guestOS: { prettyName: everyPlane(random) } });
      o.metadata.annotations = { [everyPlane(random)]: everyPlane(random) };
      return at(o, false, 'virtualmachineinstances');
    }
    case 'lone-surrogates': {
      const o = vmi({ namespace, name, cpu: { cores: 1 }, memory: '1Gi', guestOS: { prettyName: `a\ud800b\udfffc`, name: '\udbff' } });
      o.metadata.annotations = { ['\ud83d']: 'x\ude00' };
      return at(o, false, 'virtualmachineinstances');
    }
    case 'nuls': {
      base.metadata.annotations = { 'vm.kubevirt.io/os': 'fe\u0000dora', ['n\u0000l']: '\u0000'.repeat(100) };
      return at(base, false);
    }
    case 'big-numbers': {
      const uid = uidFor('vm', namespace, name);
      const text =
        `{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachine","metadata":{"name":${JSON.stringify(name)},"namespace":${JSON.stringify(namespace)},` +
        `"uid":"${uid}","resourceVersion":"__RV__","generation":1e400},"spec":{"runStrategy":"Halted","template":{"spec":{"domain":` +
        `{"cpu":{"cores":1e400,"sockets":-1e999,"threads":123456789012345678901234567890},"memory":{"guest":1.7976931348623157e309}}}}},"status":{"printableStatus":"Stopped"}}`;
      return at(new RawJson(text) as never, false);
    }
    case 'duplicate-keys': {
      const uid = uidFor('vm', namespace, name);
      const text =
        `{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachine","kind":"VirtualMachine","metadata":{"name":"decoy","name":${JSON.stringify(name)},` +
        `"namespace":${JSON.stringify(namespace)},"uid":"${uid}","resourceVersion":"0","resourceVersion":"__RV__"},` +
        `"spec":{"running":true,"running":false,"template":{"spec":{"domain":{"cpu":{"cores":9,"cores":2},"memory":{"guest":"9Gi","guest":"1Gi"}}}}},"status":{"printableStatus":"Stopped"}}`;
      return at(new RawJson(text) as never, false);
    }
  }
}
