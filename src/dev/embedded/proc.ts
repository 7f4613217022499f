// Process and lock-file helpers for the embedded PostgreSQL: who owns a cluster, is that pid
// really alive (and really the same process), and how to stop an orphaned postmaster.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

/** True when `pid` exists (EPERM means it exists but belongs to someone else). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (exited, not yet reaped) still answers kill(0) but is gone for our purposes.
  return procState(pid) !== 'Z';
}

/** /proc/<pid>/stat state letter and start time (clock ticks since boot), where /proc exists. */
function procStat(pid: number): { state: string; ppid: number; startTime: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '', ppid: Number(rest[1]), startTime: rest[19] ?? '' };
  } catch {
    return undefined;
  }
}

function procState(pid: number): string | undefined {
  return procStat(pid)?.state;
}

/** An identity for a process that survives pid reuse: its start time, where the OS tells us. */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

/** The parent pid of `pid`, where /proc tells us (1, or a subreaper, once the parent died). */
export function processParentPid(pid: number): number | undefined {
  return procStat(pid)?.ppid;
}

/** The process's command line, or undefined when /proc is missing or unreadable. */
export function processCommandLine(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/** Is `pid` a live postgres postmaster serving `clusterDir`? (Unknowable without /proc: assume yes.) */
export function isPostmasterOf(pid: number, clusterDir: string): boolean {
  if (!pidAlive(pid)) return false;
  const cmd = processCommandLine(pid);
  if (cmd === undefined) return true;
  return /postgres/.test(cmd) && cmd.includes(clusterDir);
}

/** The postmaster pid recorded in a cluster's postmaster.pid, if the file exists. */
export function readPostmasterPid(clusterDir: string): number | undefined {
  try {
    const first = fs.readFileSync(`${clusterDir}/postmaster.pid`, 'utf8').split('\n')[0] ?? '';
    const pid = Number.parseInt(first, 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Sleeps synchronously: only for exit hooks, where the event loop no longer runs. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Stops a postmaster by pid without the event loop: fast shutdown (SIGINT), then immediate
 * (SIGQUIT), then SIGKILL. Returns once it is gone or `timeoutMs` has passed.
 */
export function stopPostmasterSync(pid: number, timeoutMs = 8000): boolean {
  const steps: Array<[NodeJS.Signals, number]> = [
    ['SIGINT', timeoutMs * 0.6],
    ['SIGQUIT', timeoutMs * 0.3],
    ['SIGKILL', timeoutMs * 0.1],
  ];
  for (const [signal, budget] of steps) {
    try {
      process.kill(pid, signal);
    } catch {
      return true;
    }
    const deadline = Date.now() + budget;
    while (Date.now() < deadline) {
      if (!pidAlive(pid)) return true;
      sleepSync(25);
    }
  }
  return !pidAlive(pid);
}

/** The owner record of a running embedded cluster (`<dataDir>.lock`). */
export interface OwnerRecord {
  /** The Node process that started (and will stop) the server. */
  pid: number;
  /** That process's start time, to tell it from a later process that reuses the pid. */
  startTime?: string;
  /** The postmaster's pid, once started. */
  postmasterPid?: number;
  port?: number;
  clusterDir: string;
  command: string;
  startedAt: string;
}

export function readOwner(lockPath: string): OwnerRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(lockPath, 'utf8')) as OwnerRecord;
  } catch {
    return undefined;
  }
}

/** Is the process named in an owner record still the same live process? */
export function ownerAlive(owner: OwnerRecord): boolean {
  if (!pidAlive(owner.pid)) return false;
  if (owner.startTime === undefined) return true;
  const now = processStartTime(owner.pid);
  return now === undefined || now === owner.startTime;
}

/** Creates the lock file only if absent (O_EXCL); false when someone else holds it. */
export function tryCreateLock(lockPath: string, owner: OwnerRecord): boolean {
  let fd: number;
  try {
    fd = fs.openSync(lockPath, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, JSON.stringify(owner, null, 2) + '\n');
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

export function writeOwner(lockPath: string, owner: OwnerRecord): void {
  const tmp = `${lockPath}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(owner, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, lockPath);
}

/** Can the system user `uid:gid` search every directory in `dirs` and execute every file in `files`? */
export function accessibleAs(uid: number, gid: number, dirs: string[], files: string[]): boolean {
  const tests = [...dirs.map((d) => `test -x "${d.replace(/"/g, '\\"')}"`), ...files.map((f) => `test -x "${f.replace(/"/g, '\\"')}"`)];
  if (tests.length === 0) return true;
  // /bin/sh is reachable by every user; node itself may live somewhere the postgres user cannot reach.
  const result = spawnSync('/bin/sh', ['-c', tests.join(' && ')], { uid, gid, cwd: '/', stdio: 'ignore', timeout: 10_000 });
  return result.status === 0;
}

/** Every ancestor directory of `p` (inclusive when `p` is a directory that exists), root first. */
export function ancestors(p: string): string[] {
  const out: string[] = [];
  let dir = p;
  for (;;) {
    out.unshift(dir);
    const parent = dir.substring(0, dir.lastIndexOf('/')) || '/';
    if (parent === dir) break;
    dir = parent;
  }
  return out;
}
