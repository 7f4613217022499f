// Where the package's own files live, whether we run from src/ (tsx) or dist/src/.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      const pkg = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string };
      if (pkg.name === 'ssvirt-vm-sync') return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`ssvirt-vm-sync: cannot find the package root above ${start}`);
    dir = parent;
  }
}

export const packageRoot = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));
export const sqlDir = path.join(packageRoot, 'sql');
export const migrationsDir = path.join(packageRoot, 'migrations');
export const packageVersion = (
  JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }
).version;
