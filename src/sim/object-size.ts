// How big each simulated VM and VMI is: a shape per VM (disks, NICs, cloud-init, labels), drawn
// deterministically from a seed and the VM's key, so a benchmark or a test sees the same cluster
// on every run. 'realistic' (the default) follows production OpenShift Virtualization objects;
// 'small' keeps the compact objects of the first simulator (one container disk, no PVCs).
//
// Bounds come from the API server and KubeVirt, not from taste:
// - cloud-init user data inline in a VM is at most 2048 bytes (KubeVirt's admission webhook,
//   kubevirt/kubevirt pkg/virt-api/webhooks/validating-webhook/admitters, cloudInitUserMaxLen);
//   longer data goes to a Secret, so "long user data" tops out at 2 KiB here.
// - at most 256 disks / volumes / interfaces (same webhook, arrayLenMax = 256).
// - annotations of one object total at most 256 KiB (apimachinery's TotalAnnotationSizeLimitB).
// - an object in etcd at most ~1.5 MiB (kube-apiserver's default --max-request-bytes / etcd's
//   request limit): the "giant" shape is padded with labels to land just under it.

export type SizeMode = 'realistic' | 'small';

export interface ObjectShape {
  small: boolean;
  /** Persistent disks besides the cloud-init disk (rootdisk + data disks), each a DataVolume/PVC. */
  disks: number;
  /** Pod network plus Multus secondary networks. */
  nics: number;
  /** Interfaces the guest agent reports that have no spec entry (veths of a container host...). */
  guestOnlyInterfaces: number;
  /** Bytes of inline cloud-init user data (<= 2048). */
  userDataBytes: number;
  /** Application labels on the VM (and its template, hence the VMI). */
  appLabels: number;
  /** Created by `kubectl apply` (a last-applied-configuration annotation) rather than the console. */
  applied: boolean;
  /** The VMI was live-migrated once (a node drain during an upgrade): it carries migrationState. */
  migrated: boolean;
  /** Pad the VM and the VMI with labels to about this many bytes of JSON (the giant tail). */
  padToBytes?: number;
}

export const SMALL_SHAPE: ObjectShape = Object.freeze({ small: true, disks: 1, nics: 1, guestOnlyInterfaces: 0, userDataBytes: 80, appLabels: 0, applied: false, migrated: false });

export interface SizeOptions {
  mode: SizeMode;
  /** Seed of the draw; the same seed and names give the same shapes. */
  seed: number;
  /** One VM in this many gets the giant shape (default 50,000: two in a 100,000-VM cluster); 0 = never. */
  giantEvery: number;
}

export const DEFAULT_SIZE: SizeOptions = Object.freeze({ mode: 'realistic', seed: 1, giantEvery: 50_000 });

/** Just under the API server's 1.5 MiB request limit, leaving room for a resourceVersion bump. */
export const GIANT_BYTES = 1_450_000;

/** FNV-1a of the seed and key, then mulberry32: a small, fast, deterministic PRNG per VM. */
function rng(seed: number, key: string): () => number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The shape of the VM `key` ("ns/name"). Most VMs come from a template with a root disk and one
 * or two data disks; a tail has many disks and secondary networks (database and SAP hosts reach
 * dozens); one in `giantEvery` is padded to near the etcd limit. Tuned so the median VMI is about
 * 12 KB and the median VM about 8 KB of JSON with managedFields (bench/object-sizes prints them).
 */
export function shapeFor(key: string, size: SizeOptions = DEFAULT_SIZE): ObjectShape {
  if (size.mode === 'small') return SMALL_SHAPE;
  const r = rng(size.seed, key);
  const u = r();
  let disks: number;
  if (u < 0.1) disks = 1;
  else if (u < 0.4) disks = 2;
  else if (u < 0.65) disks = 3;
  else if (u < 0.87) disks = 4 + Math.floor(r() * 4);
  else if (u < 0.97) disks = 8 + Math.floor(r() * 16);
  else disks = 24 + Math.floor(r() * 40);
  const v = r();
  const nics = v < 0.6 ? 1 : v < 0.9 ? 2 : 3 + Math.floor(r() * 4);
  // Container hosts and hypervisor-in-VM guests report their bridges and veths through the agent.
  const guestOnlyInterfaces = r() < 0.2 ? 0 : 4 + Math.floor(r() * r() * 60);
  const userDataBytes = Math.min(2048, Math.floor(200 + r() * r() * 1900));
  const appLabels = Math.floor(r() * 6);
  const applied = r() < 0.25;
  // Every OpenShift upgrade drains the nodes: most long-running VMIs were live-migrated at least once.
  const migrated = r() < 0.7;
  const shape: ObjectShape = { small: false, disks, nics, guestOnlyInterfaces, userDataBytes, appLabels, applied, migrated };
  if (size.giantEvery > 0 && Math.floor(r() * size.giantEvery) === 0) {
    shape.disks = 64;
    shape.padToBytes = GIANT_BYTES;
  }
  return shape;
}

/**
 * Labels (a long DNS prefix, as operators' inventory labels have) adding about `bytes` to an
 * object that carries each one twice: as a label and as its key in the creator's fieldsV1.
 */
export function paddingLabels(bytes: number, salt: string): Record<string, string> {
  const out: Record<string, string> = {};
  let added = 0;
  for (let i = 0; added < bytes; i++) {
    const id = String(i).padStart(5, '0');
    const key = `inventory.cmdb.example.com/asset-attribute-${id}-${'x'.repeat(40)}`;
    const value = `${salt}-${id}`.slice(-63);
    out[key] = value;
    added += key.length + value.length + 6 + key.length + 2 + 6;
  }
  return out;
}

/** Deterministic cloud-init user data of about n bytes (a package list and write_files, as Ansible-made VMs carry). */
export function userData(n: number, user: string): string {
  let s = `#cloud-config\nuser: ${user}\npassword: q9hy-mzra-3vk9\nchpasswd: { expire: False }\nssh_pwauth: True\npackages:\n`;
  const pkgs = ['qemu-guest-agent', 'cloud-utils-growpart', 'chrony', 'rsyslog', 'tuned', 'sos', 'insights-client', 'podman', 'git', 'vim-enhanced'];
  let i = 0;
  while (s.length < n - 60) s += `  - ${pkgs[i++ % pkgs.length]}${i > pkgs.length ? `-${i}` : ''}\n`;
  return `${s}runcmd:\n  - [ systemctl, enable, --now, qemu-guest-agent ]\n`.slice(0, 2048);
}
