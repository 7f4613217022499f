// One pino logger for the process; everything else receives it (or a child) as a parameter.
import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths pino masks wherever they appear in a log record: secrets never reach the logs. */
const REDACT = [
  'password',
  'token',
  'bearerToken',
  'authorization',
  '*.password',
  '*.token',
  '*.bearerToken',
  '*.authorization',
  'headers.authorization',
  'err.config.headers.authorization',
];

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? 'ssvirt-vm-sync',
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that drops everything: for library callers and tests that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** postgres://user:secret@host/db -> postgres://user:***@host/db, safe to log or print. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of ['password', 'sslpassword', 'sslkey']) {
      if (u.searchParams.has(key)) u.searchParams.set(key, '***');
    }
    return u.toString();
  } catch {
    return url.replace(/:\/\/([^:/@]+):[^@]*@/, '://$1:***@');
  }
}
