-- =====================================================================
-- Optional APIs: what the leader found on the cluster
-- =====================================================================
-- The instancetype API (instancetype.kubevirt.io) is not on every cluster.
-- The leader records whether it is served, and at which version, so that
-- `ssvirt-vm-sync status` (which reads only the database) can say so.

create or replace function vm_sync.record_api(api_group text, version text, available boolean)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform vm_sync.assert_leader();  -- fenced like every write of the leader
  insert into vm_sync.api_status as a (api_group, version, available, checked_at)
  values (record_api.api_group, record_api.version, record_api.available, now())
  on conflict on constraint api_status_pkey do update
     set version = excluded.version, available = excluded.available, checked_at = excluded.checked_at;
end;
$$;

comment on function vm_sync.record_api(text, text, boolean) is
  'Records whether an optional API group is served (and its preferred version), for status; leader only (raises VS001 otherwise)';
