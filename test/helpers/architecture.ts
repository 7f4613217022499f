// The rooms of src/ and who may enter which: the import-boundary rules as code, checked over the
// TypeScript sources (not dist/), static and dynamic imports alike.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export const MAX_LINES = 400;

/** Which rooms of src/ a room must never import from. Rooms not named here may import any. */
export const FORBIDDEN: Record<string, string[]> = {
  watcher: ['cli', 'dev', 'sim'],
  pg: ['cli', 'dev', 'sim', 'watcher'],
  lib: ['cli', 'dev', 'sim', 'watcher'],
};

export interface ImportRef {
  specifier: string | undefined; // undefined: a dynamic import of a computed path
  line: number;
  kind: 'static' | 'dynamic';
}

/** Every module a TypeScript source names: import/export ... from, import '...', import(...). */
export function importsOf(fileName: string, text: string): ImportRef[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true);
  const out: ImportRef[] = [];
  const line = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push({ specifier: node.moduleSpecifier.text, line: line(node), kind: 'static' });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const e = node.moduleReference.expression;
      out.push({ specifier: ts.isStringLiteral(e) ? e.text : undefined, line: line(node), kind: 'static' });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      const literal = arg && (ts.isStringLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg)) ? arg.text : undefined;
      out.push({ specifier: literal, line: line(node), kind: 'dynamic' });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push({ specifier: node.argument.literal.text, line: line(node), kind: 'static' });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function sourcesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith('.ts') && !d.name.endsWith('.d.ts'))
    .map((d) => path.join(d.parentPath ?? (d as unknown as { path: string }).path, d.name))
    .sort();
}

/**
 * The violations in the tree at root (which holds src/ and test/), one readable line each:
 * forbidden imports between rooms, imports of test/ (or anything outside src/) from src/,
 * dynamic imports of computed paths in a restricted room, and files over MAX_LINES lines.
 */
export function checkArchitecture(root: string): string[] {
  const src = path.join(root, 'src');
  const violations: string[] = [];
  const oversized: string[] = [];
  for (const file of sourcesUnder(src)) {
    const rel = path.relative(root, file);
    const room = path.relative(src, file).split(path.sep)[0]!;
    const text = fs.readFileSync(file, 'utf8');
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_LINES) oversized.push(`${rel} (${lines} lines)`);
    const forbidden = FORBIDDEN[room] ?? [];
    for (const ref of importsOf(file, text)) {
      if (ref.specifier === undefined) {
        if (forbidden.length) violations.push(`${rel}:${ref.line}: a dynamic import of a computed path (cannot be checked) in src/${room}`);
        continue;
      }
      if (!ref.specifier.startsWith('.')) continue; // a package
      const target = path.resolve(path.dirname(file), ref.specifier);
      const fromSrc = path.relative(src, target);
      if (fromSrc.startsWith('..')) {
        violations.push(`${rel}:${ref.line}: imports ${ref.specifier}, outside src/ (${path.relative(root, target)})`);
        continue;
      }
      const targetRoom = fromSrc.split(path.sep)[0]!;
      if (forbidden.includes(targetRoom)) {
        violations.push(`${rel}:${ref.line}: src/${room} must not import from src/${targetRoom} (${ref.kind} import of ${ref.specifier})`);
      }
    }
  }
  if (oversized.length) violations.push(`files over ${MAX_LINES} lines: ${oversized.join(', ')}`);
  return violations;
}
