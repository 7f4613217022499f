// What the shipped Deployment sets, for tests that run the watcher as it is deployed.
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../src/lib/paths.js';

/** NODE_OPTIONS of the watcher container (deploy/base/deployment.yaml; the overlays keep it). */
export function deployedNodeOptions(): string {
  for (const rel of ['deploy/base/deployment.yaml']) {
    const file = path.join(packageRoot, rel);
    if (!fs.existsSync(file)) continue;
    const m = /name: NODE_OPTIONS\s*\n\s*value: "([^"]*)"/.exec(fs.readFileSync(file, 'utf8'));
    if (m) return m[1]!;
  }
  throw new Error('no NODE_OPTIONS in the Deployment under deploy/');
}
