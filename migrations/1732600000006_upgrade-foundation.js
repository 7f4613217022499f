// Real upgrades. From here on a database migrated at any release ends identical to a fresh one:
// - vm_sync.sql_files records the sha256 of each sql/ file as last applied; `migrate` applies all of
//   sql/ again, in one transaction, whenever one differs (src/pg/migrate.ts, the functions phase).
// - The types and the aggregate that sql/020 and sql/050 used to create "if absent" (so an edit never
//   reached a database that had them) are created here; later changes to them are migrations too.
// - lz4 for staged objects: it was added to migration 003 after 003 had landed, so databases migrated
//   before that never got it.
// - vm_sync.rv_lower, unused since staging folds with vm_sync.last_event, is gone from sql/.

export const up = (pgm) => {
  pgm.sql(`
    create table if not exists vm_sync.sql_files (
      file       text primary key,
      sha256     text not null,
      applied_at timestamptz not null default now()
    );
    comment on table vm_sync.sql_files is
      'The sha256 of each sql/ file as last applied by migrate; any difference re-applies all of sql/';

    do $lz4$
    begin
      alter table vm_sync.snapshots alter column object set compression lz4;
    exception when feature_not_supported or invalid_parameter_value then
      null;  -- a server built without lz4 keeps the default (pglz)
    end
    $lz4$;

    do $types$
    begin
      -- What one object contributes (sql/020_extract.sql). problems is a JSON array, or NULL when clean.
      if to_regtype('vm_sync.derived') is null then
        create type vm_sync.derived as (
          vm_name       text,
          cpu_count     integer,
          memory_mb     integer,
          guest_os      text,
          guest_os_hint text,
          status        text,
          problems      jsonb
        );
      end if;

      -- The fold over one object's events (sql/050_stage.sql): the event that currently stands.
      if to_regtype('vm_sync.event_state') is null then
        create type vm_sync.event_state as (ord bigint, uid text, resource_version text);
      end if;

      -- A frozen copy of the transition function, so that the aggregate can be created here;
      -- sql/050_stage.sql replaces its body (same signature) right after the migrations.
      if to_regprocedure('vm_sync.event_step(vm_sync.event_state, bigint, text, text)') is null then
        create function vm_sync.event_step(state vm_sync.event_state, ord bigint, uid text, resource_version text)
        returns vm_sync.event_state
        language plpgsql immutable parallel safe
        as $fn$
        begin
          if state.ord is not null
             and state.uid is not distinct from uid
             and resource_version ~ '^[0-9]{1,30}$' and state.resource_version ~ '^[0-9]{1,30}$'
             and resource_version::numeric < state.resource_version::numeric then
            return state;
          end if;
          return row(ord, uid, resource_version)::vm_sync.event_state;
        end;
        $fn$;
      end if;

      if to_regprocedure('vm_sync.last_event(bigint, text, text)') is null then
        create aggregate vm_sync.last_event(bigint, text, text) (
          sfunc = vm_sync.event_step,
          stype = vm_sync.event_state
        );
      end if;
    end
    $types$;

    drop function if exists vm_sync.rv_lower(text, text);
  `);
};

export const down = false;
