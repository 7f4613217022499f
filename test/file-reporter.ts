// A node:test reporter that names each test file when it starts and when it ends, and each failed
// test with its file. test/run.ts runs it beside the TAP reporter (on stderr).
import path from 'node:path';

interface TestEvent {
  type: string;
  data: { file?: string; name?: string; nesting?: number; details?: { duration_ms?: number; passed?: boolean } };
}

export default async function* fileReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const started = new Set<string>();
  const t0 = Date.now();
  const at = () => `${Math.round((Date.now() - t0) / 1000)} s`;
  for await (const event of source) {
    const file = event.data?.file;
    // Every file is enqueued at once; the first other event of a file is its start.
    if (!file || event.type === 'test:enqueue') continue;
    const rel = path.relative(process.cwd(), file);
    if (!started.has(file)) {
      started.add(file);
      yield `# started ${rel} (at ${at()})\n`;
    }
    const isFile = event.data.name === file;
    if (event.type === 'test:fail') yield `# FAILED in ${rel}: ${isFile ? '(the file itself)' : event.data.name}\n`;
    if (event.type === 'test:complete' && isFile) {
      yield `# finished ${rel} (at ${at()}, ${event.data.details?.passed === false ? 'failed' : 'passed'})\n`;
    }
  }
}
