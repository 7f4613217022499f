-- =====================================================================
-- Least privilege: the watcher's role and the consumers' role
-- =====================================================================
-- vm_sync_writer  the watcher. USAGE on schema vm_sync and EXECUTE on the
--                 entry functions only; no table privilege at all. Every
--                 entry function is SECURITY DEFINER with a pinned
--                 search_path, so the watcher can change public.vms only
--                 through the merge rules, never with its own UPDATE.
-- vm_sync_reader  consumers. SELECT on the read-only views of 095_views.sql
--                 and EXECUTE on the pure functions (parse_quantity, ...).
--                 LISTEN needs no privilege.
-- Both are NOLOGIN group roles: grant them to a LOGIN role per deployment
-- (`create role vm_sync_watcher login password '...' in role vm_sync_writer`).
--
-- Roles are cluster-wide while this file runs once per database, so they
-- are created only when absent (two databases migrating at the same
-- moment race on pg_authid: both errors are caught). A migrating role
-- without CREATEROLE gets a warning instead of a failure; a DBA creates
-- the two roles and runs this file again (it is idempotent).

do $roles$
declare
  r text;
begin
  foreach r in array array['vm_sync_writer', 'vm_sync_reader'] loop
    continue when exists (select 1 from pg_catalog.pg_roles where rolname = r);
    begin
      execute format('create role %I nologin', r);
    exception
      when duplicate_object or unique_violation then
        null;  -- another database's migration created it a moment ago
      when insufficient_privilege then
        raise warning 'ssvirt-vm-sync: cannot create role % (no CREATEROLE); its grants are skipped', r
          using hint = format('As a DBA: create role %I nologin; then run sql/090_roles.sql and sql/095_views.sql in this database.', r);
    end;
  end loop;
end
$roles$;

-- PostgreSQL grants EXECUTE on every new function to PUBLIC. None of ours is public: each role
-- gets exactly the functions it needs. (PUBLIC has no USAGE on vm_sync either, but a role with
-- USAGE must not inherit every function through PUBLIC.)
revoke all on all routines in schema vm_sync from public;

-- Functions created later by the migrating role are not public either. Per-schema default
-- privileges can only add to the global ones, so this is the role's database-wide default:
-- it concerns only functions this role creates in this database (see docs/security.md).
alter default privileges revoke execute on routines from public;


do $grants$
declare
  f regprocedure;
begin
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'vm_sync_writer') then
    grant usage on schema vm_sync to vm_sync_writer;
    -- Exactly the watcher's entry points (docs/sql-api.md). Anything else, including every table, stays closed.
    foreach f in array array[
      'vm_sync.ingest(jsonb)',
      'vm_sync.stage(jsonb)',
      'vm_sync.sweep(text, text[], text[], boolean)',
      'vm_sync.reconcile()',
      'vm_sync.reconcile_summary()',
      'vm_sync.try_lead(text)',
      'vm_sync.report_watches(text[], double precision)',
      'vm_sync.renew_lease(bigint)',
      'vm_sync.assert_leader()',
      'vm_sync.finish_list(text, text, text[], text, boolean)',
      'vm_sync.leader_reconcile()',
      'vm_sync.apply_batch(jsonb, jsonb, boolean)',
      'vm_sync.save_checkpoints(jsonb)',
      'vm_sync.record_rejects(jsonb)',
      'vm_sync.resign()',
      'vm_sync.checkpoints()',
      'vm_sync.current_leader()',
      'vm_sync.staging_lost()',
      'vm_sync.populated_ratio()',
      'vm_sync.record_api(text, text, boolean)'
    ]::regprocedure[] loop
      execute format('grant execute on function %s to vm_sync_writer', f);
    end loop;
  end if;

  if exists (select 1 from pg_catalog.pg_roles where rolname = 'vm_sync_reader') then
    grant usage on schema vm_sync to vm_sync_reader;
    -- The pure functions: immutable, not SECURITY DEFINER, so they run with the reader's own
    -- privileges and read nothing. derive_vm() calls its helpers, hence all of them.
    for f in
      select p.oid::regprocedure
        from pg_catalog.pg_proc p
       where p.pronamespace = 'vm_sync'::regnamespace
         and p.provolatile = 'i'
         and not p.prosecdef
         and p.prokind = 'f'
    loop
      execute format('grant execute on function %s to vm_sync_reader', f);
    end loop;
    -- Aggregates over the live rows, for `ssvirt-vm-sync status` run as a reader.
    grant execute on function vm_sync.populated_ratio() to vm_sync_reader;
  end if;
end
$grants$;
