// Authentication and authorization of the simulated API server, off unless a test turns it on:
// bearer tokens, each with a user name and an RBAC rule set; 401 for an unknown token, 403 with the
// real server's wording for a verb the rules do not grant; SelfSubjectAccessReview answered from the
// same rules; and the kube-system namespace (its uid identifies the cluster).
import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson, sendStatus } from './status.js';

/** One RBAC PolicyRule, simplified: "*" matches anything. No rules at all grants everything. */
export interface RbacRule {
  verbs: string[];
  apiGroups: string[];
  resources: string[];
  /** Namespaces this rule holds in (a RoleBinding's); absent = cluster-wide (a ClusterRoleBinding's). */
  namespaces?: string[];
}

export interface Identity {
  user: string;
  /** Absent: everything is allowed. */
  rules?: RbacRule[];
}

export interface Attributes {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
}

const SSAR_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
const ANONYMOUS: Identity = { user: 'system:anonymous' };

function any(list: string[] | undefined, value: string): boolean {
  return !!list && (list.includes('*') || list.includes(value));
}

export class SimAuth {
  private readonly tokens = new Map<string, Identity>();
  /** The kube-system namespace's uid: the cluster's identity. */
  clusterUid: string = crypto.randomUUID();
  /** Requests refused with 401. */
  unauthorized = 0;
  /** Requests refused with 403. */
  forbidden = 0;
  accessReviews = 0;

  /** Accepts `token` from now on as `identity` (all allowed without rules). Turns authentication on. */
  allow(token: string, identity: Identity = { user: 'test-user' }): void {
    this.tokens.set(token, identity);
  }

  /** `token` is answered 401 from now on (an expired or revoked credential). */
  revoke(token: string): void {
    this.tokens.delete(token);
    this.revoked.add(token);
  }

  private readonly revoked = new Set<string>();

  /** Authentication is on once a token was allowed or revoked. */
  get enabled(): boolean {
    return this.tokens.size > 0 || this.revoked.size > 0;
  }

  /** The caller, or null when the request must be answered 401. */
  authenticate(req: IncomingMessage): Identity | null {
    if (!this.enabled) return ANONYMOUS;
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    return (m && this.tokens.get(m[1]!.trim())) || null;
  }

  can(who: Identity, a: Attributes): boolean {
    if (!who.rules) return true;
    return who.rules.some(
      (r) =>
        any(r.verbs, a.verb) &&
        any(r.apiGroups, a.group) &&
        any(r.resources, a.resource) &&
        (!r.namespaces || (a.namespace !== undefined && a.namespace !== '' && r.namespaces.includes(a.namespace))),
    );
  }

  /** Handles the auth-only endpoints; true when it answered. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL, who: Identity): boolean {
    if (url.pathname === SSAR_PATH) {
      if (req.method !== 'POST') sendStatus(res, 405, 'the server does not allow this method on the requested resource');
      else void this.review(req, res, who);
      return true;
    }
    if (req.method === 'GET' && url.pathname === '/api/v1/namespaces/kube-system') {
      if (!this.can(who, { verb: 'get', group: '', resource: 'namespaces' })) {
        this.refuse(res, who, { verb: 'get', group: '', resource: 'namespaces' }, 'kube-system');
        return true;
      }
      sendJson(res, 200, {
        kind: 'Namespace',
        apiVersion: 'v1',
        metadata: { name: 'kube-system', uid: this.clusterUid, resourceVersion: '1', creationTimestamp: '2025-01-01T00:00:00Z' },
        spec: { finalizers: ['kubernetes'] },
        status: { phase: 'Active' },
      });
      return true;
    }
    return false;
  }

  /** 403 as the real server words it. */
  refuse(res: ServerResponse, who: Identity, a: Attributes, name?: string): void {
    this.forbidden++;
    const qualified = a.group ? `${a.resource}.${a.group}` : a.resource;
    const where = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
    sendStatus(
      res,
      403,
      `${qualified}${name ? ` "${name}"` : ''} is forbidden: User "${who.user}" cannot ${a.verb} resource "${a.resource}" in API group "${a.group}" ${where}`,
      { details: { ...(name ? { name } : {}), group: a.group, kind: a.resource } },
    );
  }

  private async review(req: IncomingMessage, res: ServerResponse, who: Identity): Promise<void> {
    this.accessReviews++;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: { spec?: { resourceAttributes?: Record<string, string> } };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
    } catch {
      return sendStatus(res, 400, 'the request body is not JSON');
    }
    const ra = body.spec?.resourceAttributes;
    if (!ra) return sendStatus(res, 422, 'spec.resourceAttributes is required (nonResourceAttributes are not simulated)', { reason: 'Invalid' });
    const a: Attributes = { verb: ra.verb ?? '', group: ra.group ?? '', resource: ra.resource ?? '', namespace: ra.namespace || undefined };
    const allowed = this.can(who, a);
    sendJson(res, 201, {
      kind: 'SelfSubjectAccessReview',
      apiVersion: 'authorization.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec: body.spec,
      status: allowed ? { allowed: true, reason: 'allowed by the simulator\'s rules' } : { allowed: false },
    });
  }
}
