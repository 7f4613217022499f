// Operator errors: a misconfiguration that no retry can fix, told in one line (what is wrong, what to
// do) and ended with exit status 2. Errors from PostgreSQL, the kubeconfig and the Kubernetes API
// are mapped here once; everything this module does not recognise stays a plain (retryable or
// fatal) error for the caller's own policy.
import { ConfigError } from './config.js';

/** Exit status of a misconfiguration (docs/configuration.md). */
export const EXIT_MISCONFIGURED = 2;

export class OperatorError extends Error {
  override name = 'OperatorError';
  constructor(
    /** What is wrong, naming the thing (database, role, file, resource). */
    message: string,
    /** What to do about it. */
    readonly hint: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The one line printed on exit: `<what is wrong>: <what to do>`. */
  get line(): string {
    return this.hint ? `${this.message}: ${this.hint}` : this.message;
  }
}

/** What the code was doing when it failed; changes the hint (a migrating role needs other rights). */
export type Phase = 'connect' | 'migrate' | 'run' | 'status';

export interface PgContext {
  phase: Phase;
  /** The role and database, when known (from the URL); named in the message. */
  user?: string;
  database?: string;
}

function field(err: unknown, name: string): string | undefined {
  const v = (err as Record<string, unknown> | null)?.[name];
  return typeof v === 'string' ? v : undefined;
}

/** user and database of a connection URL, for messages (never the password). */
export function urlParts(databaseUrl: string): { user?: string; database?: string; host?: string } {
  try {
    const u = new URL(databaseUrl);
    return {
      user: decodeURIComponent(u.username) || undefined,
      database: decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined,
      host: u.host || undefined,
    };
  } catch {
    return {};
  }
}

/**
 * A PostgreSQL (or pg driver) error as an OperatorError when it is a misconfiguration, else null.
 * Transient trouble (connection refused, serialization failures...) is never mapped.
 */
export function fromPgError(err: unknown, ctx: PgContext): OperatorError | null {
  if (err instanceof OperatorError) return err;
  const code = field(err, 'code');
  const message = field(err, 'message') ?? String(err);
  const role = ctx.user ? `role "${ctx.user}"` : 'this role';
  switch (code) {
    case '3D000':
      return new OperatorError(
        `PostgreSQL says ${message}`,
        `create it (createdb ${JSON.stringify(ctx.database ?? 'NAME')}) or fix the database name in DATABASE_URL`,
        { cause: err },
      );
    case '28P01':
    case '28000':
      return new OperatorError(
        `PostgreSQL refused the login: ${message}`,
        'check the user and password in DATABASE_URL (percent-encode special characters) and the server\'s pg_hba.conf',
        { cause: err },
      );
    case '42501':
      if (ctx.phase === 'migrate') {
        return new OperatorError(
          `${role} may not migrate: ${message}`,
          'set MIGRATE=false (or --no-migrate) for the watcher and run `ssvirt-vm-sync migrate` as the database owner',
          { cause: err },
        );
      }
      return new OperatorError(
        `${role} lacks a privilege: ${message}`,
        `grant it the watcher's role (grant vm_sync_writer to ${ctx.user ?? 'ROLE'}) or the reader's (vm_sync_reader), see docs/dba-guide.md`,
        { cause: err },
      );
    case '3F000':
    case '42P01':
    case '42883':
      if (/vm_sync/.test(message)) return schemaMissing(message, err);
      return null;
  }
  if (/self[- ]signed certificate|unable to verify the first certificate|certificate has expired|Hostname\/IP does not match/i.test(message)) {
    return new OperatorError(
      `the PostgreSQL server's TLS certificate is not trusted: ${message}`,
      'give the CA with sslrootcert=/path/ca.crt in DATABASE_URL (or fix sslmode)',
      { cause: err },
    );
  }
  if (/The server does not support SSL connections/i.test(message)) {
    return new OperatorError(`PostgreSQL does not offer TLS: ${message}`, 'enable ssl on the server or lower sslmode in DATABASE_URL', { cause: err });
  }
  if (/SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string|password authentication failed/i.test(message)) {
    return new OperatorError(`PostgreSQL refused the login: ${message}`, 'put the password in DATABASE_URL (postgres://user:PASSWORD@host/db)', { cause: err });
  }
  return null;
}

export function schemaMissing(detail: string, cause?: unknown): OperatorError {
  return new OperatorError(
    `the vm_sync schema is not installed (${detail})`,
    'run `ssvirt-vm-sync migrate` as the database owner (or start the watcher without MIGRATE=false)',
    { cause },
  );
}

/** A thrown value as one short line for a log record: no stack, no object dump. */
export function brief(err: unknown): string {
  if (err instanceof OperatorError) return err.line;
  if (err instanceof Error) {
    const code = field(err, 'code');
    const msg = err.message || err.name;
    return code && !msg.includes(code) ? `${msg} (${code})` : msg;
  }
  return String(err);
}

/** The one line for a command's error output, or null when the error is not an operator error. */
export function operatorLine(err: unknown): string | null {
  if (err instanceof OperatorError) return err.line;
  if (err instanceof ConfigError) return err.message;
  return null;
}

/** Kinds without which the watcher cannot do its job (other kinds may be optional). */
const ESSENTIAL_KINDS = new Set(['VirtualMachine', 'VirtualMachineInstance']);

/**
 * A Kubernetes API refusal that no retry fixes, for a list of `kind`: RBAC forbids it (403), or the
 * server has no KubeVirt (404), or a credential the server never accepted (kube-client.ts). Null for
 * anything else (a 401 after the credentials worked is re-read and retried, 5xx/429 retried).
 */
export function fromKubeError(err: unknown, kind: string, scope: string): OperatorError | null {
  if (err instanceof OperatorError) return err;
  if (!ESSENTIAL_KINDS.has(kind) || (err as { name?: unknown } | null)?.name !== 'KubeApiError') return null;
  const status = (err as { status?: unknown }).status;
  const message = field(err, 'message') ?? '';
  const where = scope ? `in namespace ${scope}` : 'cluster-wide';
  if (status === 403) {
    return new OperatorError(
      `the Kubernetes API forbids listing ${kind}s ${where}: ${message}`,
      'grant get, list and watch on kubevirt.io virtualmachines and virtualmachineinstances to this identity (deploy/ has the ClusterRole)',
      { cause: err },
    );
  }
  if (status === 404) {
    return new OperatorError(
      `the Kubernetes API server has no kubevirt.io/v1 ${kind} API`,
      'install KubeVirt (OpenShift Virtualization) or point KUBECONFIG at the cluster that runs it',
      { cause: err },
    );
  }
  return null;
}
