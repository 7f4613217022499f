// Renders a kustomization with the real kubectl (`kubectl kustomize`), as an administrator would.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { packageRoot } from '../../src/lib/paths.js';
import type { Doc } from '../helpers/rbac-rules.js';

export const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';

/** Why kubectl cannot be used here, or null when it can. */
export function kubectlMissing(): string | null {
  return fs.existsSync(KUBECTL) ? null : `kubectl not found at ${KUBECTL} (.ci/run installs Debian's kubernetes-client)`;
}

export async function kustomize(dir: string): Promise<Doc[]> {
  const { stdout } = await promisify(execFile)(KUBECTL, ['kustomize', path.join(packageRoot, dir)], { maxBuffer: 16 << 20 });
  return yaml.loadAll(stdout).filter((d): d is Doc => !!d && typeof d === 'object');
}
