// The house rules of src/: the watcher (production) never imports the CLI, the developer tools or
// the simulator; the database and library plumbing import none of those nor the watcher; nothing
// in src/ imports the tests; no file over 400 lines. See test/helpers/architecture.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../src/lib/paths.js';
import { checkArchitecture, importsOf, MAX_LINES } from './helpers/architecture.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsync-arch-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(scratch, 'tree-'));
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return root;
}

describe('architecture of src/', () => {
  it('the tree keeps the import boundaries and the file size limit', () => {
    const violations = checkArchitecture(packageRoot);
    assert.deepEqual(violations, [], `\n${violations.join('\n')}`);
  });
});

describe('the architecture checker', () => {
  it('finds static, re-exported, type-only and dynamic imports', () => {
    const refs = importsOf('x.ts', [
      "import a from './a.js';",
      "import type { B } from '../b.js';",
      "export { c } from './c.js';",
      "import './side-effect.js';",
      'async function f(p: string) { await import(\'./d.js\'); await import(p); }',
      "type T = import('./e.js').E;",
    ].join('\n'));
    assert.deepEqual(refs.map((r) => [r.specifier, r.kind, r.line]), [
      ['./a.js', 'static', 1], ['../b.js', 'static', 2], ['./c.js', 'static', 3], ['./side-effect.js', 'static', 4],
      ['./d.js', 'dynamic', 5], [undefined, 'dynamic', 5], ['./e.js', 'static', 6],
    ]);
  });

  it('reports every kind of violation, and allows what the rules allow', () => {
    const root = tree({
      'src/watcher/term.ts': "import { x } from '../dev/embedded/server.js';\nimport { y } from '../pg/connect.js';\n",
      'src/watcher/run.ts': "export async function f() { return import('../sim/simulator.js'); }\n",
      'src/watcher/lazy.ts': 'export async function g(p: string) { return import(p); }\n',
      'src/pg/connect.ts': "import type { Term } from '../watcher/term.js';\nexport const y = 1;\n",
      'src/lib/log.ts': "export { z } from '../cli/main.js';\n",
      'src/sim/server.ts': "import { t } from '../../test/helpers/objects.js';\n",
      'src/cli/main.ts': "import '../dev/demo/demo.js';\nimport '../watcher/run.js';\nimport '../sim/server.js';\n",
      'src/dev/big.ts': 'export const a = 1;\n'.repeat(MAX_LINES + 1),
      'src/dev/fine.ts': 'export const a = 1;\n'.repeat(MAX_LINES),
    });
    const v = checkArchitecture(root);
    assert.deepEqual([...v].sort(), [
      "src/watcher/term.ts:1: src/watcher must not import from src/dev (static import of ../dev/embedded/server.js)",
      "src/watcher/run.ts:1: src/watcher must not import from src/sim (dynamic import of ../sim/simulator.js)",
      'src/watcher/lazy.ts:1: a dynamic import of a computed path (cannot be checked) in src/watcher',
      "src/pg/connect.ts:1: src/pg must not import from src/watcher (static import of ../watcher/term.js)",
      "src/lib/log.ts:1: src/lib must not import from src/cli (static import of ../cli/main.js)",
      "src/sim/server.ts:1: imports ../../test/helpers/objects.js, outside src/ (test/helpers/objects.js)",
      `files over ${MAX_LINES} lines: src/dev/big.ts (${MAX_LINES + 1} lines)`,
    ].sort(), v.join('\n'));
  });
});
