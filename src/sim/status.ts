// metav1.Status bodies, as the API server sends them for every error.
import type { ServerResponse } from 'node:http';

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'AlreadyExists',
  410: 'Expired',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, unknown>;
  status: 'Failure';
  message: string;
  reason: string;
  details?: Record<string, unknown>;
  code: number;
}

export function statusBody(code: number, message: string, extra: { reason?: string; details?: Record<string, unknown>; continue?: string } = {}): StatusBody {
  const body: StatusBody = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: extra.continue ? { continue: extra.continue } : {},
    status: 'Failure',
    message,
    reason: extra.reason ?? REASONS[code] ?? 'Unknown',
    code,
  };
  if (extra.details) body.details = extra.details;
  return body;
}

export function sendJson(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  // Encode once: the length and the bytes written come from the same buffer.
  const bytes = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': bytes.length, ...headers });
  res.end(bytes);
}

export function sendStatus(res: ServerResponse, code: number, message: string, extra: Parameters<typeof statusBody>[2] & { retryAfterSeconds?: number } = {}): void {
  const after = extra.retryAfterSeconds ?? (code === 429 || code === 503 ? 1 : undefined);
  const headers: Record<string, string> = after !== undefined ? { 'Retry-After': String(after) } : {};
  // Like kube-apiserver's TooManyRequests Status: the delay is in details.retryAfterSeconds too.
  const details = after !== undefined ? { ...(extra.details ?? {}), retryAfterSeconds: after } : extra.details;
  sendJson(res, code, statusBody(code, message, { ...extra, details }), headers);
}
