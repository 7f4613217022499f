// The sync's functions, from the readable files under sql/ (one concern each).
import { loadSqlFiles } from './lib/sql-files.js';

export const up = (pgm) => {
  loadSqlFiles(pgm, [
    '010_quantity.sql',
    '020_extract.sql',
    '030_status.sql',
    '040_derive.sql',
    '050_stage.sql',
    '060_merge.sql',
    '070_ingest.sql',
    '080_leader.sql',
  ]);
};

export const down = false;
