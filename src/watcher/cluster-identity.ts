// Which cluster this is: the API server URL, and the uid of its kube-system namespace (stable for
// the cluster's life, whatever URL reaches it). The saved checkpoints belong to one cluster; a term
// that finds another one relists instead of resuming (vm_sync.begin_term, sql/092_cluster.sql).
import type { Logger } from '../lib/log.js';
import { KubeApiError, type KubeClient } from './kube-client.js';
import type { LeaderSession } from './leader-session.js';

export interface ClusterIdentity {
  server: string;
  /** Null when this identity may not read the namespace (403) or the server has none (404). */
  kubeSystemUid: string | null;
}

export async function readClusterIdentity(kube: KubeClient, signal: AbortSignal): Promise<ClusterIdentity> {
  try {
    const ns = (await kube.getJson('/api/v1/namespaces/kube-system', signal)) as { metadata?: { uid?: string } };
    return { server: kube.server, kubeSystemUid: ns.metadata?.uid ?? null };
  } catch (err) {
    // Without `get namespaces/kube-system` the server URL has to do.
    if (err instanceof KubeApiError && (err.status === 403 || err.status === 404)) return { server: kube.server, kubeSystemUid: null };
    throw err;
  }
}

interface BeginTerm {
  other_cluster: boolean;
  checkpoints_dropped: number;
  previous_server: string | null;
  previous_kube_system_uid: string | null;
}

/**
 * Records this term's cluster and its watches (kind/scope, '' = cluster-wide); drops the checkpoints
 * of another cluster, and says so. Called again when a term adds watches (same cluster: no drop).
 */
export async function beginTerm(session: LeaderSession, identity: ClusterIdentity, watching: string[], logger: Logger): Promise<void> {
  const r = await session.run((c) =>
    c.query<{ r: BeginTerm }>('select vm_sync.begin_term($1, $2, $3::jsonb) as r', [identity.server, identity.kubeSystemUid, JSON.stringify(watching)]),
  );
  const result = r.rows[0]!.r;
  const context = { server: identity.server, kubeSystemUid: identity.kubeSystemUid, previousServer: result.previous_server, previousKubeSystemUid: result.previous_kube_system_uid, checkpointsDropped: result.checkpoints_dropped };
  if (result.other_cluster) {
    logger.warn(context, 'the saved checkpoints belong to another cluster; relisting instead of resuming');
  } else if (result.checkpoints_dropped > 0) {
    logger.warn(context, 'the saved checkpoints name no cluster (saved by an older version); relisting once');
  }
}
