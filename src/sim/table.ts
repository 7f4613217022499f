// Server-side printing, as kube-apiserver does it for custom resources: when a client (kubectl get)
// asks for `application/json;as=Table;v=v1;g=meta.k8s.io`, lists and watch events come back as a
// meta.k8s.io/v1 Table whose columns are the CRD's additionalPrinterColumns. KubeVirt's columns
// (kubevirt/kubevirt pkg/virt-operator/resource/generate/components/crds.go):
//   VirtualMachine:         Age, Status (.status.printableStatus), Ready (Ready condition)
//   VirtualMachineInstance: Age, Phase, IP (.status.interfaces[0].ipAddress), NodeName, Ready,
//                           and at priority 1 (-o wide) Live-Migratable and Paused (conditions).
// A date column's cell is the age as kubectl prints it (apiextensions' table convertor does that
// on the server); each row carries the object's metadata (includeObject=Metadata, the default).
import type { Resource } from './store.js';

interface Column {
  name: string;
  type: 'string' | 'date' | 'integer';
  description: string;
  priority: number;
  cell: (o: Obj) => unknown;
}

type Obj = { metadata?: Record<string, unknown>; status?: Record<string, unknown> };

const NAME_DESCRIPTION = 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names';
const AGE_DESCRIPTION = 'CreationTimestamp is a timestamp representing the server time when this object was created.';

function conditionStatus(o: Obj, type: string): unknown {
  const conditions = o.status?.conditions;
  if (!Array.isArray(conditions)) return null;
  const c = conditions.find((x) => (x as { type?: unknown })?.type === type) as { status?: unknown } | undefined;
  return c?.status ?? null;
}

const age: Column = { name: 'Age', type: 'date', description: AGE_DESCRIPTION, priority: 0, cell: (o) => humanAge(o.metadata?.creationTimestamp) };

/** Resources without printer columns get Age alone (a CRD's default). */
const COLUMNS: Partial<Record<Resource, Column[]>> = {
  virtualmachines: [
    age,
    { name: 'Status', type: 'string', description: 'Human Readable Status', priority: 0, cell: (o) => o.status?.printableStatus ?? null },
    { name: 'Ready', type: 'string', description: '', priority: 0, cell: (o) => conditionStatus(o, 'Ready') },
  ],
  virtualmachineinstances: [
    age,
    { name: 'Phase', type: 'string', description: '', priority: 0, cell: (o) => o.status?.phase ?? null },
    {
      name: 'IP',
      type: 'string',
      description: '',
      priority: 0,
      cell: (o) => (Array.isArray(o.status?.interfaces) ? ((o.status!.interfaces as Array<{ ipAddress?: unknown }>)[0]?.ipAddress ?? null) : null),
    },
    { name: 'NodeName', type: 'string', description: '', priority: 0, cell: (o) => o.status?.nodeName ?? null },
    { name: 'Ready', type: 'string', description: '', priority: 0, cell: (o) => conditionStatus(o, 'Ready') },
    { name: 'Live-Migratable', type: 'string', description: '', priority: 1, cell: (o) => conditionStatus(o, 'LiveMigratable') },
    { name: 'Paused', type: 'string', description: '', priority: 1, cell: (o) => conditionStatus(o, 'Paused') },
  ],
};

const columnsOf = (r: Resource): Column[] => COLUMNS[r] ?? [age];

/** Does the Accept header ask for a meta.k8s.io/v1 Table (kubectl get does, with JSON as fallback)? */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const params = part.split(';').map((p) => p.trim());
    return params.includes('as=Table') && params.includes('g=meta.k8s.io') && (params.includes('v=v1') || params.includes('v=v1beta1'));
  });
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export function includeObjectOf(q: URLSearchParams): IncludeObject {
  const v = q.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

function rowOf(resource: Resource, obj: unknown, include: IncludeObject): Record<string, unknown> {
  const o = (obj ?? {}) as Obj;
  const cells = [o.metadata?.name ?? '', ...columnsOf(resource).map((c) => c.cell(o))];
  const row: Record<string, unknown> = { cells };
  if (include === 'Object') row.object = obj;
  else if (include === 'Metadata') {
    const { managedFields: _drop, ...metadata } = (o.metadata ?? {}) as Record<string, unknown>;
    row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata };
  }
  return row;
}

/** A Table of `objects` (a list page, or the one object of a watch event). */
export function toTable(resource: Resource, objects: readonly unknown[], listMeta: Record<string, unknown>, include: IncludeObject, withColumns = true): Record<string, unknown> {
  const table: Record<string, unknown> = { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: listMeta };
  // Watch events after the first carry rows only, as the API server sends them.
  table.columnDefinitions = withColumns
    ? [
        { name: 'Name', type: 'string', format: 'name', description: NAME_DESCRIPTION, priority: 0 },
        ...columnsOf(resource).map((c) => ({ name: c.name, type: c.type, format: '', description: c.description, priority: c.priority })),
      ]
    : [];
  table.rows = objects.map((o) => rowOf(resource, o, include));
  return table;
}

/** kubectl's "5m", "3h2m", "12d": apimachinery's duration.HumanDuration of the object's age. */
export function humanAge(created: unknown, now = Date.now()): string {
  if (typeof created !== 'string') return '<unknown>';
  const t = Date.parse(created);
  if (!Number.isFinite(t)) return '<invalid>';
  const seconds = Math.floor((now - t) / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}
