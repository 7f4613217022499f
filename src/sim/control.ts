// The /sim/v1 control API: the same controls as the Simulator class, over HTTP, so a simulator
// running as its own process (src/sim/main.ts) can be driven by tests, the demo or a shell.
// Never subject to injected faults. Bodies and answers are JSON.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NotFoundError } from './cluster.js';
import { sendJson, sendStatus } from './status.js';
import { RESOURCES, type Resource } from './store.js';
import type { Simulator } from './simulator.js';

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  return JSON.parse(text) as Record<string, unknown>;
}

function resourceOf(name: string | undefined): Resource {
  const aliases: Record<string, Resource> = { vm: 'virtualmachines', vms: 'virtualmachines', vmi: 'virtualmachineinstances', vmis: 'virtualmachineinstances' };
  const r = (name && aliases[name]) ?? name;
  if (!RESOURCES.includes(r as Resource)) throw new BadRequest(`unknown resource ${name}`);
  return r as Resource;
}

class BadRequest extends Error {}

const num = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadRequest(`${what} must be a number`);
  return v;
};
const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string' || v === '') throw new BadRequest(`${what} must be a non-empty string`);
  return v;
};

export async function handleControl(sim: Simulator, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  try {
    const body = req.method === 'GET' ? {} : await readBody(req);
    const parts = url.pathname.replace(/^\/sim\/v1\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
    const result = await route(sim, req.method ?? 'GET', parts, body, res);
    if (!res.headersSent) sendJson(res, 200, result ?? { ok: true });
  } catch (err) {
    if (err instanceof NotFoundError) return sendStatus(res, 404, err.message);
    if (err instanceof BadRequest || err instanceof SyntaxError) return sendStatus(res, 400, err.message);
    return sendStatus(res, 409, err instanceof Error ? err.message : String(err), { reason: 'Conflict' });
  }
}

async function route(sim: Simulator, method: string, parts: string[], body: Record<string, unknown>, res: ServerResponse): Promise<unknown> {
  const [head, a, b, c] = parts;
  switch (`${method} ${head ?? ''}`) {
    case 'GET truth':
      return sim.truth();
    case 'GET counters':
      return sim.counters();
    case 'POST counters':
      if (a === 'reset') return sim.resetCounters();
      break;
    case 'POST seed':
      return { keys: sim.seed(num(body.n, 'n'), body) };
    case 'POST step-delay':
      return sim.setStepDelay(num(body.ms, 'ms'));
    case 'POST vms':
    case 'DELETE vms':
      if (!a || !b) break;
      return vmAction(sim, method, a, b, c, body);
    case 'POST vmis':
      if (!a || !b) break;
      return sim.createStandaloneVMI(a, b, body);
    case 'DELETE vmis':
      if (!a || !b) break;
      return sim.deleteStandaloneVMI(a, b);
    case 'PUT raw':
      return { key: sim.put(resourceOf(a), body.object, { key: body.key as string | undefined, stampResourceVersion: body.stampResourceVersion as boolean | undefined }) };
    case 'DELETE raw':
      if (!b || c === undefined) break;
      return { removed: sim.remove(resourceOf(a), b, c) };
    case 'POST faults':
      return fault(sim, a ?? '', body, res);
  }
  throw new NotFoundError('sim/v1 route', `${method} /${parts.join('/')}`);
}

async function vmAction(sim: Simulator, method: string, ns: string, name: string, action: string | undefined, body: Record<string, unknown>): Promise<unknown> {
  if (method === 'DELETE') return sim.deleteVM(ns, name);
  switch (action ?? 'create') {
    case 'create':
      return sim.createVM(ns, name, body);
    case 'start':
      return sim.startVM(ns, name);
    case 'stop':
      return sim.stopVM(ns, name);
    case 'pause':
      return sim.pauseVM(ns, name);
    case 'unpause':
      return sim.unpauseVM(ns, name);
    case 'delete':
      return sim.deleteVM(ns, name);
    case 'recreate':
      return sim.recreateVM(ns, name, Object.keys(body).length ? body : undefined);
    case 'hotplug-cpu':
      return sim.hotplugCPU(ns, name, num(body.sockets, 'sockets'));
    case 'hotplug-memory':
      return sim.hotplugMemory(ns, name, str(body.memory ?? body.quantity, 'memory'));
    case 'connect-agent':
      return sim.connectGuestAgent(ns, name, body.osInfo as never);
    case 'disconnect-agent':
      return sim.disconnectGuestAgent(ns, name);
    case 'printable-status':
      return sim.setPrintableStatus(ns, name, str(body.status, 'status'));
  }
  throw new NotFoundError('sim/v1 vm action', action ?? '');
}

function fault(sim: Simulator, name: string, body: Record<string, unknown>, res: ServerResponse): unknown {
  switch (name) {
    case 'drop-streams':
      return { dropped: sim.dropStreams({ graceful: body.graceful === true, resource: body.resource === undefined ? undefined : resourceOf(String(body.resource)) }) };
    case 'stall-streams':
      return sim.stallStreams({ newStreams: body.newStreams !== false });
    case 'resume':
      return sim.resume();
    case 'compact':
      return sim.compact(body.resourceVersion === undefined ? undefined : num(body.resourceVersion, 'resourceVersion'));
    case 'fail-410':
      return sim.fail410OnNextWatch(
        body.mode === 'http' ? 'http' : 'event',
        body.count === undefined ? 1 : num(body.count, 'count'),
        body.resource === undefined ? undefined : resourceOf(String(body.resource)),
      );
    case 'expired-mode':
      return sim.setExpiredMode(body.mode === 'http' ? 'http' : 'event');
    case 'fail-requests':
      return sim.failRequests({
        status: num(body.status, 'status'),
        count: body.count as number | undefined,
        durationMs: body.durationMs as number | undefined,
        only: body.only as never,
        retryAfterSeconds: body.retryAfterSeconds as number | undefined,
      });
    case 'fail-list-page':
      return sim.failListPage({
        page: num(body.page, 'page'),
        status: body.status as number | undefined,
        resource: body.resource as never,
        count: body.count as number | undefined,
        retryAfterSeconds: body.retryAfterSeconds as number | undefined,
        mode: body.mode === 'cut' ? 'cut' : 'status',
      });
    case 'slow':
      return sim.slowResponses(num(body.ms, 'ms'));
    case 'clear':
      return sim.clearFaults();
    case 'offline': {
      // Answer first, then go away; come back by itself after durationMs (nobody can call us meanwhile).
      const ms = num(body.durationMs, 'durationMs');
      sendJson(res, 200, { ok: true, backInMs: ms });
      res.on('finish', () => {
        void sim.goOffline().then(() => setTimeout(() => void sim.goOnline(), ms));
      });
      return undefined;
    }
  }
  throw new NotFoundError('sim/v1 fault', name);
}
