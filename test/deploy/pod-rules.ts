// Checks of rendered manifests against the rules a cluster applies to them, written from their
// sources: OpenShift's restricted-v2 SCC (cluster-kube-apiserver-operator's scc-restricted-v2.yaml)
// and the Kubernetes Pod Security Standards, levels baseline and restricted
// (kubernetes.io/docs/concepts/security/pod-security-standards). Each check names the rule.
import type { Doc } from '../helpers/rbac-rules.js';

/** Volume types both allow (PSS restricted: configMap, csi, downwardAPI, emptyDir, ephemeral, PVC, projected, secret; restricted-v2 adds image). */
const ALLOWED_VOLUMES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);
/** PSS restricted: capabilities.add may hold only NET_BIND_SERVICE; restricted-v2's allowedCapabilities is the same. */
const ALLOWED_ADD_CAPABILITIES = new Set(['NET_BIND_SERVICE']);
/** PSS baseline: sysctls outside this safe set are forbidden. */
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes',
]);

const WORKLOAD_KINDS = new Set(['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob']);

/** The pod spec of a workload, or null for other kinds. */
export function podSpecOf(doc: Doc): Doc | null {
  if (!WORKLOAD_KINDS.has(doc.kind)) return null;
  if (doc.kind === 'Pod') return doc.spec ?? {};
  if (doc.kind === 'CronJob') return doc.spec?.jobTemplate?.spec?.template?.spec ?? {};
  return doc.spec?.template?.spec ?? {};
}

/** Every problem of one pod spec under restricted-v2 and PSS restricted, plus our own container rules. */
export function podSpecProblems(spec: Doc): string[] {
  const p: string[] = [];
  const psc: Doc = spec.securityContext ?? {};
  const containers: Doc[] = [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])];
  if ((spec.containers ?? []).length === 0) p.push('no containers');

  // Host namespaces and ports: PSS baseline "Host Namespaces", "HostPorts"; restricted-v2 allowHost* false.
  for (const f of ['hostNetwork', 'hostPID', 'hostIPC']) if (spec[f] === true) p.push(`spec.${f}: true (host namespaces are forbidden)`);
  // Volumes: PSS restricted "Volume Types"; restricted-v2 volumes; no hostPath (baseline, allowHostDirVolumePlugin false).
  for (const v of spec.volumes ?? []) {
    const types = Object.keys(v).filter((k) => k !== 'name');
    for (const t of types) if (!ALLOWED_VOLUMES.has(t)) p.push(`volume ${v.name}: type ${t} is not allowed`);
  }
  // UID and GID: restricted-v2 runAsUser MustRunAsRange (a UID from the namespace's range, so none may
  // be fixed in a manifest), seLinuxContext MustRunAs, fsGroup MustRunAs (assigned from the range).
  for (const f of ['runAsUser', 'runAsGroup', 'fsGroup']) if (psc[f] !== undefined) p.push(`spec.securityContext.${f}: ${psc[f]} (restricted-v2 assigns it from the namespace's range)`);
  if (psc.supplementalGroups?.includes?.(0)) p.push('spec.securityContext.supplementalGroups contains 0');
  if (psc.seLinuxOptions !== undefined) p.push('spec.securityContext.seLinuxOptions set (restricted-v2 assigns the SELinux context)');
  // Sysctls: PSS baseline.
  for (const s of psc.sysctls ?? []) if (!SAFE_SYSCTLS.has(s.name)) p.push(`sysctl ${s.name} is not in the safe set`);
  // Seccomp: PSS restricted requires RuntimeDefault or Localhost on the pod or every container;
  // restricted-v2 allows only runtime/default. So: RuntimeDefault, on the pod.
  if (psc.seccompProfile?.type !== 'RuntimeDefault') p.push(`spec.securityContext.seccompProfile.type: ${psc.seccompProfile?.type ?? 'unset'} (want RuntimeDefault)`);
  // Non-root: PSS restricted "Running as Non-root" (pod or every container runAsNonRoot true).
  const podNonRoot = psc.runAsNonRoot === true;
  if (psc.runAsNonRoot === false) p.push('spec.securityContext.runAsNonRoot: false');

  for (const c of containers) {
    const where = `container ${c.name}`;
    const sc: Doc = c.securityContext ?? {};
    if (sc.privileged === true) p.push(`${where}: privileged (baseline forbids; restricted-v2 allowPrivilegedContainer false)`);
    if (sc.allowPrivilegeEscalation !== false) p.push(`${where}: allowPrivilegeEscalation must be false (restricted; restricted-v2)`);
    if (sc.runAsNonRoot === false || (!podNonRoot && sc.runAsNonRoot !== true)) p.push(`${where}: runAsNonRoot must be true (restricted)`);
    for (const f of ['runAsUser', 'runAsGroup']) if (sc[f] !== undefined) p.push(`${where}: securityContext.${f}: ${sc[f]} (restricted-v2 assigns it; restricted forbids 0)`);
    if (sc.seLinuxOptions !== undefined) p.push(`${where}: seLinuxOptions set`);
    if (sc.procMount !== undefined && sc.procMount !== 'Default') p.push(`${where}: procMount ${sc.procMount} (baseline)`);
    if (sc.windowsOptions?.hostProcess === true) p.push(`${where}: hostProcess (baseline)`);
    if (sc.seccompProfile !== undefined && sc.seccompProfile.type !== 'RuntimeDefault') p.push(`${where}: seccompProfile ${sc.seccompProfile.type} (want RuntimeDefault)`);
    if (sc.appArmorProfile !== undefined && !['RuntimeDefault', 'Localhost'].includes(sc.appArmorProfile.type)) p.push(`${where}: appArmorProfile ${sc.appArmorProfile.type} (baseline)`);
    const drop: string[] = sc.capabilities?.drop ?? [];
    if (!drop.includes('ALL')) p.push(`${where}: capabilities.drop must contain ALL (restricted; restricted-v2 requiredDropCapabilities)`);
    for (const cap of sc.capabilities?.add ?? []) if (!ALLOWED_ADD_CAPABILITIES.has(cap)) p.push(`${where}: capabilities.add ${cap}`);
    for (const port of c.ports ?? []) if (port.hostPort) p.push(`${where}: hostPort ${port.hostPort} (baseline; restricted-v2 allowHostPorts false)`);
    // Our own rules, beyond the policies: what an administrator expects of a controller.
    if (sc.readOnlyRootFilesystem !== true) p.push(`${where}: readOnlyRootFilesystem must be true`);
    if (!(spec.containers ?? []).includes(c)) continue; // init/ephemeral containers need no probes
    if (!c.livenessProbe) p.push(`${where}: no livenessProbe`);
    if (!c.readinessProbe) p.push(`${where}: no readinessProbe`);
    for (const r of ['cpu', 'memory']) {
      if (!c.resources?.requests?.[r]) p.push(`${where}: no ${r} request`);
      if (r === 'memory' && !c.resources?.limits?.[r]) p.push(`${where}: no memory limit`);
    }
    if (!c.resources?.limits?.cpu) p.push(`${where}: no cpu limit`);
    for (const e of c.env ?? []) {
      if (e.value !== undefined && credentialLike(e.name, String(e.value))) p.push(`${where}: env ${e.name} carries a credential in plain text`);
    }
    if (/:latest$|^[^:@]+$/.test(String(c.image ?? '')) && c.imagePullPolicy === 'Never') p.push(`${where}: image ${c.image} with pull policy Never`);
  }
  return p;
}

/** A plain-text env value that looks like a secret: a named password/token, or a URL with a password. */
export function credentialLike(name: string, value: string): boolean {
  if (value === '') return false;
  if (/(^|_)(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PGPASSWORD)($|_)/i.test(name)) return true;
  return /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:[^@\s]+@/i.test(value);
}
