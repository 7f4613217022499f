// Who owns an embedded cluster: one process per cluster (`<cluster>.lock`), and what a killed
// owner left behind (a running postmaster, a stale postmaster.pid, throwaway clusters) recovered.
import fs from 'node:fs';
import path from 'node:path';
import { EmbeddedPostgresError } from './install.js';
import {
  isPostmasterOf,
  ownerAlive,
  processCommandLine,
  processParentPid,
  processStartTime,
  readOwner,
  readPostmasterPid,
  stopPostmasterSync,
  tryCreateLock,
  type OwnerRecord,
} from './proc.js';
import type { Logger } from '../../lib/log.js';

/** Stored next to the cluster (`<dataDir>.json`, mode 600): how to log in to it. */
export interface ClusterMeta {
  user: string;
  password: string;
  clusterDir: string;
  createdAt: string;
}

function alreadyRunning(owner: OwnerRecord): EmbeddedPostgresError {
  return new EmbeddedPostgresError(
    `another ssvirt-vm-sync demo/embedded server is running (pid ${owner.pid}: ${owner.command})` +
      (owner.port ? ` on 127.0.0.1:${owner.port}` : '') +
      ` with data in ${owner.clusterDir}; stop it or wait for it to finish, or use another data folder`,
    'ALREADY_RUNNING',
  );
}

/** Stops the server a killed owner left running, then forgets the owner. */
function recoverFromDeadOwner(lockPath: string, owner: OwnerRecord | undefined, logger: Logger): void {
  const pid = owner?.postmasterPid;
  if (owner && pid && isPostmasterOf(pid, owner.clusterDir)) {
    logger.warn({ pid, owner: owner.pid }, 'stopping the PostgreSQL left running by a killed ssvirt-vm-sync process');
    if (!stopPostmasterSync(pid)) throw new EmbeddedPostgresError(`cannot stop the orphaned PostgreSQL (pid ${pid})`, 'ALREADY_RUNNING');
  }
  fs.rmSync(lockPath, { force: true });
}

/** Takes `<cluster>.lock` for this process, recovering from killed owners; throws when a live one holds it. */
export function claim(lockPath: string, clusterHint: string, logger: Logger): OwnerRecord {
  const me: OwnerRecord = {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    clusterDir: clusterHint,
    command: process.argv.slice(1).map((a) => path.basename(a)).join(' '),
    startedAt: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreateLock(lockPath, me)) return me;
    const owner = readOwner(lockPath);
    if (owner && (owner.pid === process.pid || ownerAlive(owner))) throw alreadyRunning(owner);
    if (!owner) {
      // Unreadable: a claim being written this instant, or debris of a crash. Give a writer a moment.
      const age = Date.now() - (fs.statSync(lockPath, { throwIfNoEntry: false })?.mtimeMs ?? 0);
      if (age < 2000) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
        continue;
      }
    }
    recoverFromDeadOwner(lockPath, owner, logger);
  }
  throw new EmbeddedPostgresError(`cannot take ${lockPath}: another process keeps claiming it`, 'ALREADY_RUNNING');
}

/**
 * A postmaster.pid without a live owner: a postmaster that is still alive is either an orphan of a
 * killed run (its parent died: stop it) or someone else's live server (fail fast); a dead pid or
 * a pid reused by another program means a stale file, removed so the cluster can be reused.
 */
export function clearStalePidFile(clusterDir: string, logger: Logger): void {
  const pid = readPostmasterPid(clusterDir);
  if (pid === undefined) return;
  if (isPostmasterOf(pid, clusterDir)) {
    const ppid = processParentPid(pid);
    const parentCmd = ppid && ppid > 1 ? processCommandLine(ppid) : undefined;
    if (ppid !== undefined && (ppid <= 1 || !parentCmd || !/node/.test(parentCmd))) {
      logger.warn({ pid }, 'stopping an orphaned PostgreSQL on this cluster (its owner was killed)');
      if (stopPostmasterSync(pid)) return;
    }
    throw new EmbeddedPostgresError(`another ssvirt-vm-sync demo/embedded server is running (pid ${pid}) on ${clusterDir}`, 'ALREADY_RUNNING');
  }
  logger.info({ pid, clusterDir }, 'removing a stale postmaster.pid left by a killed run (no PostgreSQL of this cluster runs under that pid)');
  fs.rmSync(path.join(clusterDir, 'postmaster.pid'), { force: true });
}

/** Ephemeral clusters whose owner died (SIGKILL, power loss) are removed by the next run. */
export function sweepEphemeral(base: string, logger: Logger): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(base);
  } catch {
    return;
  }
  for (const name of entries) {
    const full = path.join(base, name);
    if (name.endsWith('.lock')) {
      const owner = readOwner(full);
      if (owner && ownerAlive(owner)) continue;
      const stem = full.slice(0, -'.lock'.length);
      try {
        recoverFromDeadOwner(`${full}.sweep`, owner, logger);
        const meta = readMeta(`${stem}.json`);
        for (const dir of new Set([stem, meta?.clusterDir ?? stem])) fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(`${stem}.json`, { force: true });
        fs.rmSync(full, { force: true });
        logger.info({ cluster: stem }, 'removed a throwaway cluster left by a killed run');
      } catch (err) {
        logger.warn({ err, cluster: stem }, 'could not remove a throwaway cluster left by a killed run');
      }
    } else if (name.startsWith('run-') && !name.endsWith('.json') && !entries.includes(`${name}.lock`)) {
      // A claim always precedes its cluster, so a cluster without a claim is debris.
      fs.rmSync(full, { recursive: true, force: true });
    }
  }
}

export function readMeta(metaPath: string): ClusterMeta | undefined {
  try {
    return JSON.parse(fs.readFileSync(metaPath, 'utf8')) as ClusterMeta;
  } catch {
    return undefined;
  }
}
