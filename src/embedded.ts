// Placeholder replaced by the embedded-PostgreSQL work (issue 4); the test runner only needs this signature.
import type { Logger } from './log.js';

export interface EmbeddedServer {
  url: string;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(_options: {
  dataDir: string;
  port?: number;
  ephemeral?: boolean;
  logger?: Logger;
}): Promise<EmbeddedServer> {
  throw new Error('embedded PostgreSQL is not available yet');
}
