// List continue tokens of the simulated API server.
/**
 * Continue tokens: opaque to clients; here base64 JSON like the real server's {v, rv, start}, plus
 * the number of the page it continues after (so faults can fail "page 37").
 */
export function encodeContinue(rv: number, after: string, page = 0): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start: after, page })).toString('base64');
}

export function decodeContinue(token: string): { rv: number; after: string; page: number } | undefined {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { v?: unknown; rv?: unknown; start?: unknown; page?: unknown };
    if (t.v !== 'meta.k8s.io/v1' || typeof t.rv !== 'number' || typeof t.start !== 'string') return undefined;
    return { rv: t.rv, after: t.start, page: typeof t.page === 'number' ? t.page : 0 };
  } catch {
    return undefined;
  }
}

