// Operator-grade errors (issue 12): checkpoints that belong to their cluster, the watched scopes of
// the term (so status can flag checkpoints nobody maintains), and list progress for status.
// DDL only; the functions are in sql/092_cluster.sql and sql/096_status_report.sql.

export const up = (pgm) => {
  pgm.sql(`
    -- The API server whose resourceVersions vm_sync.watch_state holds. A watcher pointed at another
    -- cluster must relist: another server's resourceVersions mean nothing (or worse, something else).
    create table vm_sync.cluster_identity (
      id              integer primary key default 1 check (id = 1),
      server          text not null,
      kube_system_uid text,
      recorded_at     timestamptz not null default now()
    );
    comment on table vm_sync.cluster_identity is
      'The Kubernetes API server (URL and kube-system namespace uid) that the saved checkpoints come from';

    -- What the current term watches, as ["VirtualMachine/ns", ...] ("" scope = cluster-wide).
    alter table vm_sync.leader add column watching jsonb;
    comment on column vm_sync.leader.watching is 'kind/scope of every watch of the current term, for status';

    -- A cold start or relist in progress (or the last one), per kind and scope.
    create table vm_sync.list_progress (
      kind        text not null,
      scope       text not null default '',
      reason      text,
      started_at  timestamptz not null,
      updated_at  timestamptz not null,
      finished_at timestamptz,
      objects     bigint not null default 0,
      pages       integer not null default 0,
      remaining   bigint,
      primary key (kind, scope)
    );
    comment on table vm_sync.list_progress is 'Progress of the latest full list per kind and scope (objects, pages, remainingItemCount)';
  `);
};

export const down = false;
