// `ssvirt-vm-sync doctor`: checks a setup step by step (database URL, server, login, schema, role,
// kubeconfig and cluster, RBAC, instancetype API, pooler), one line each with a verdict and a fix.
import { DATABASE_URL_OPTION, optionsHelp, parseOptions, RUN_OPTIONS, type OptionSpec } from '../lib/config.js';
import { runChecks, type Check } from './doctor-checks.js';

const pick = (key: string): OptionSpec => RUN_OPTIONS.find((o) => o.key === key)!;

export const DOCTOR_OPTIONS: readonly OptionSpec[] = [
  { ...DATABASE_URL_OPTION, help: 'PostgreSQL connection URL of the watcher (its role is checked)' },
  pick('kubeconfig'),
  pick('namespaces'),
  { key: 'json', flag: '--json', env: ['DOCTOR_JSON'], type: 'bool', default: false, help: 'print one JSON object instead of lines' },
  { key: 'timeoutMs', flag: '--timeout-ms', env: ['DOCTOR_TIMEOUT_MS'], type: 'int', default: 5000, min: 100, max: 120_000, help: 'timeout of each connection and request' },
];

const HELP = `usage: ssvirt-vm-sync doctor [options]

Checks the watcher's setup in order and prints one line per check with its verdict (ok, WARN,
FAIL, skip) and, when it did not pass, what to do. A check after a failed one it depends on is
skipped: the first FAIL is the one to repair. Exit status: 0 when nothing failed, 1 otherwise.

options:
${optionsHelp(DOCTOR_OPTIONS)}`;

const LABEL: Record<Check['verdict'], string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: 'skip' };

export function formatChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  return checks.map((c) => `${LABEL[c.verdict]}  ${c.name.padEnd(width)}  ${c.detail}${c.fix && c.verdict !== 'ok' ? `; fix: ${c.fix}` : ''}`).join('\n');
}

export async function runDoctor(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  const o = parseOptions(DOCTOR_OPTIONS, argv, process.env);
  const checks = await runChecks({
    databaseUrl: (o.databaseUrl as string | null) ?? null,
    kubeconfig: (o.kubeconfig as string | null) ?? null,
    namespaces: o.namespaces as string[],
    env: process.env,
    timeoutMs: o.timeoutMs as number,
  });
  const ok = !checks.some((c) => c.verdict === 'fail');
  console.log(o.json ? JSON.stringify({ ok, checks }, null, 2) : formatChecks(checks));
  return ok ? 0 : 1;
}
