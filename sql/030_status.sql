-- =====================================================================
-- Status: a VirtualMachine's printableStatus in SSVirt's vocabulary
-- =====================================================================

create or replace function vm_sync.map_printable_status(printable_status text)
returns text
language sql immutable strict parallel safe
as $$
  select case printable_status
    when 'Running'                  then 'POWERED_ON'
    when 'Migrating'                then 'POWERED_ON'
    when 'Stopped'                  then 'POWERED_OFF'
    when 'Starting'                 then 'POWERING_ON'
    when 'Stopping'                 then 'POWERING_OFF'
    when 'Terminating'              then 'POWERING_OFF'
    when 'Provisioning'             then 'STARTING'
    when 'WaitingForVolumeBinding'  then 'STARTING'
    when 'WaitingForReceiver'       then 'STARTING'
    when 'Paused'                   then 'SUSPENDED'
    when 'Unknown'                  then 'UNKNOWN'
    when 'CrashLoopBackOff'         then 'ERROR'
    when 'ErrorUnschedulable'       then 'ERROR'
    when 'ErrImagePull'             then 'ERROR'
    when 'ImagePullBackOff'         then 'ERROR'
    when 'ErrorPvcNotFound'         then 'ERROR'
    when 'ErrorDataVolumeNotFound'  then 'ERROR'
    when 'DataVolumeError'          then 'ERROR'
    else 'UNKNOWN'
  end
$$;

comment on function vm_sync.map_printable_status(text) is
  'SSVirt status for a KubeVirt printableStatus (Running -> POWERED_ON, ...); unknown values -> UNKNOWN';


-- The status a (not deleted) VirtualMachine object implies. A VM being deleted is DELETING whatever
-- it prints; a VM with no printableStatus yet is STARTING when it is meant to run, else POWERED_OFF.
-- (A DELETED watch event is DELETED; the merge decides that, not the object.)
create or replace function vm_sync.vm_status(vm jsonb)
returns text
language sql immutable parallel safe
as $$
  select case
    when coalesce(jsonb_typeof(vm -> 'metadata' -> 'deletionTimestamp'), 'null') <> 'null'
      then 'DELETING'
    when jsonb_typeof(vm -> 'status' -> 'printableStatus') = 'string' and vm -> 'status' ->> 'printableStatus' <> ''
      then vm_sync.map_printable_status(vm -> 'status' ->> 'printableStatus')
    when vm -> 'spec' ->> 'runStrategy' in ('Always', 'RerunOnFailure')
      then 'STARTING'
    when vm -> 'spec' -> 'running' = 'true'::jsonb
      then 'STARTING'
    else 'POWERED_OFF'
  end
$$;

comment on function vm_sync.vm_status(jsonb) is
  'SSVirt status of a VirtualMachine object: DELETING, else its mapped printableStatus, else from runStrategy/running';
