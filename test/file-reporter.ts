// A node:test reporter that names each test file as its results arrive, and each failed test with
// its file. test/run.ts runs it beside the TAP reporter (on stderr).
import path from 'node:path';

interface TestEvent {
  type: string;
  data: { file?: string; name?: string };
}

export default async function* fileReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const seen = new Set<string>();
  const started = Date.now();
  for await (const event of source) {
    const file = event.data?.file;
    if (!file) continue;
    const rel = path.relative(process.cwd(), file);
    if (!seen.has(file)) {
      seen.add(file);
      yield `# file ${seen.size}: ${rel} (${Math.round((Date.now() - started) / 1000)} s into the run)\n`;
    }
    if (event.type === 'test:fail') yield `# FAILED in ${rel}: ${event.data.name ?? '?'}\n`;
  }
}
