-- =====================================================================
-- The leader's watches, as the leader reports them
-- =====================================================================
-- A leader whose watches are not established writes nothing, so nothing in
-- the data shows it. The leader reports which of its watches are down (and
-- for how long) on its own session, fenced like every write; `status` shows
-- it as a problem while the reporting term still leads.

create or replace function vm_sync.report_watches(p_down text[], p_down_seconds double precision)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  t bigint := vm_sync.assert_leader();
  down boolean := coalesce(cardinality(p_down), 0) > 0;
begin
  update vm_sync.leader
     set watches_term = t,
         watches_down = case when down then p_down end,
         watches_down_since = case when down then now() - make_interval(secs => greatest(coalesce(p_down_seconds, 0), 0)) end,
         watches_reported_at = now()
   where id = 1;
end;
$$;

comment on function vm_sync.report_watches(text[], double precision) is
  'Leader only (raises VS001 otherwise): records which of its watches (kind/scope) are not established, and for how many seconds; an empty array when all are';
