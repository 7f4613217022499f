// The proxy for the API server from the environment, as kubectl picks it (Go's
// http.ProxyFromEnvironment): HTTPS_PROXY for https servers, HTTP_PROXY for http ones, both also in
// lower case, unless NO_PROXY matches the host or the host is loopback. client-node 1.4.0 reads only the kubeconfig's
// proxy-url; the URL chosen here is given to it the same way, so its agents (hpagent) carry the
// requests: a CONNECT tunnel for an https server, absolute-URI requests for an http one.
import net from 'node:net';

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  return env[name] || env[name.toLowerCase()] || undefined;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
}

/** One NO_PROXY entry against a host and port: `*`, a host, `.domain` / domain suffix, an IP, a CIDR, host:port. */
function matches(entry: string, host: string, port: string): boolean {
  let e = entry.trim().toLowerCase();
  if (!e) return false;
  if (e === '*') return true;
  const cidr = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(e);
  if (cidr) {
    if (!net.isIPv4(host)) return false;
    const bits = Number(cidr[2]);
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return (ipv4ToInt(host) & mask) === (ipv4ToInt(cidr[1]!) & mask);
  }
  const hp = /^(.*):(\d+)$/.exec(e);
  if (hp && !net.isIPv6(e)) {
    if (hp[2] !== port) return false;
    e = hp[1]!;
  }
  e = e.replace(/^\[|\]$/g, '');
  if (e.startsWith('*.')) e = e.slice(1);
  if (e.startsWith('.')) return host.endsWith(e) || host === e.slice(1);
  return host === e || host.endsWith(`.${e}`);
}

/** The proxy URL for requests to `server`, or null for a direct connection. */
export function proxyFor(server: string, env: NodeJS.ProcessEnv = process.env): string | null {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return null;
  }
  const proxy = url.protocol === 'https:' ? envValue(env, 'HTTPS_PROXY') : envValue(env, 'HTTP_PROXY');
  if (!proxy) return null;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  // Like Go: localhost and loopback addresses are never proxied.
  if (host === 'localhost' || (net.isIPv4(host) && host.startsWith('127.')) || host === '::1') return null;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const noProxy = envValue(env, 'NO_PROXY') ?? '';
  if (noProxy.split(',').some((entry) => matches(entry, host, port))) return null;
  // Go accepts a bare host:port; so do we.
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`;
}
