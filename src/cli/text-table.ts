// Plain-text tables and short durations for the CLI's human output (status, demo).

/** Renders rows as aligned columns under a header; null/undefined print as '-'. */
export function textTable(header: string[], rows: unknown[][], indent = ''): string {
  const cells = [header, ...rows.map((r) => r.map(cell))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    indent +
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(cells[0]!), indent + widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

/** 0.4 -> "0s", 75 -> "1m15s", 7300 -> "2h1m", 200000 -> "2d7h". */
export function shortDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? `${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600) ? `${Math.floor((s % 86400) / 3600)}h` : ''}`;
}

/** "12s ago" for a past timestamp relative to `now` (the database's clock), '-' when absent. */
export function ago(at: Date | string | null | undefined, now: Date): string {
  if (!at) return '-';
  const t = at instanceof Date ? at : new Date(at);
  return `${shortDuration((now.getTime() - t.getTime()) / 1000)} ago`;
}
