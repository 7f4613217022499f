// What a database error means for the caller, decided in one place.
//
//   'retry'    the same call again, on the same session, after a backoff: serialization failure,
//              deadlock, a lock not granted within lock_timeout.
//   'session'  this session can no longer be trusted: the connection failed or the server is going
//              away, the session is not (or no longer) the leader. A new session, a new term.
//   'split'    the statement was cancelled (statement_timeout, or a DBA's pg_cancel_backend): the
//              work was too big for the time allowed; smaller pieces may pass.
//   'content'  the input itself was refused (a data exception, a constraint, a refused size):
//              retrying the same input fails the same way; bisection finds the culprit.
//   'fatal'    anything else (a missing function, a permission): surfaces with its context.

export type DbErrorClass = 'retry' | 'session' | 'split' | 'content' | 'fatal';

/** SQLSTATE raised by the fencing check when this session is not the current leader. */
export const NOT_LEADER = 'VS001';
/** SQLSTATE raised by vm_sync.ingest for a call over its size limits (vm_sync.settings). */
export const TOO_LARGE = 'VS002';

/** The leader's session is gone, hung or fenced off; raised by the session wrapper. */
export class SessionLostError extends Error {
  override name = 'SessionLostError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const RETRY_SQLSTATES = new Set(['40001', '40P01', '55P03']);
/** Server shutting down or restarting, out of slots, connection exceptions (class 08). */
const SESSION_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '25P03', NOT_LEADER]);
/** Socket-level failures: the server went away or is not there yet. */
const NODE_CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);
const CONNECTION_MESSAGE =
  /Connection terminated|connection timeout|Client has encountered a connection error|terminating connection|the database system is (starting up|shutting down)|Client was closed/i;

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The connection itself failed (or never came up): a new connection may succeed. */
export function isConnectionError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  if (err instanceof SessionLostError) return true;
  const code = codeOf(err);
  if (code && (code.startsWith('08') || NODE_CONNECTION_CODES.has(code) || (SESSION_SQLSTATES.has(code) && code !== NOT_LEADER))) return true;
  return CONNECTION_MESSAGE.test(String((err as { message?: unknown }).message ?? ''));
}

export function classifyDbError(err: unknown): DbErrorClass {
  const code = codeOf(err);
  if (code === NOT_LEADER || isConnectionError(err)) return 'session';
  if (code && RETRY_SQLSTATES.has(code)) return 'retry';
  if (code === '57014') return 'split';
  // 22 data exception, 23 integrity constraint, 54 program limit (a value too large), our size refusal.
  if (code === TOO_LARGE || (code && /^(22|23|54)/.test(code))) return 'content';
  return 'fatal';
}

/**
 * For one-shot callers with a fresh connection per attempt (migrate, listen's reads, probes):
 * worth trying again when the call failed for a reason a later attempt can outlive.
 */
export function isTransient(err: unknown): boolean {
  const c = classifyDbError(err);
  return c === 'retry' || (c === 'session' && codeOf(err) !== NOT_LEADER);
}

export function isNotLeader(err: unknown): boolean {
  return codeOf(err) === NOT_LEADER;
}

/** An error from PostgreSQL or from the session itself, as opposed to one from Kubernetes. */
export function isDatabaseError(err: unknown): boolean {
  return err instanceof SessionLostError || typeof (err as { severity?: unknown } | null)?.severity === 'string';
}
