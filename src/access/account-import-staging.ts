import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { EntityManager } from 'typeorm';

import { returnedRows } from '../common/transactions';
import type { ImportPreset } from './access.dto';
import { ImportedAccount, isRejected, readAccountRows, RejectedRow } from './account-csv';

/** Rejected rows of one file and how many rows it had; the valid rows are in the staging table. */
export interface StagedFile {
  rejected: RejectedRow[];
  rowsRead: number;
  rowsValid: number;
}

/**
 * Temporary tables of one import, dropped at commit. `account_import_rows` contains the valid file
 * rows; its primary key is added after the COPY and the duplicate check. `account_import_outcomes` contains each created or updated row with its account id, and
 * for an updated account the changed fields before and after. `account_import_removed` lists the
 * accounts a full import marked removed. Outcomes have their own table because inserting into it
 * is cheaper than updating every staged row.
 */
const CREATE_STAGING_TABLES = [
  `CREATE TEMP TABLE account_import_rows (
     line integer NOT NULL, lower_id text NOT NULL, external_id text NOT NULL,
     name text NOT NULL, privilege text NOT NULL, mfa_state text NOT NULL,
     status text NOT NULL, last_used_at timestamptz, attributes jsonb NOT NULL
   ) ON COMMIT DROP`,
  `CREATE TEMP TABLE account_import_outcomes (
     lower_id text NOT NULL, outcome text NOT NULL CHECK (outcome IN ('created', 'updated')),
     account_id uuid NOT NULL, before jsonb, after jsonb
   ) ON COMMIT DROP`,
  `CREATE TEMP TABLE account_import_removed (id uuid PRIMARY KEY) ON COMMIT DROP`,
];

const COPY_ROWS =
  'COPY account_import_rows (line, lower_id, external_id, name, privilege, mfa_state, status, ' +
  'last_used_at, attributes) FROM STDIN';

/** Characters of COPY text format written to the stream in one piece (an estimate, in UTF-16 units). */
const COPY_CHUNK_CHARS = 64 * 1024;

/** Escapes of the COPY text format; every other character is written as it is. */
const COPY_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
};

export interface StageOptions {
  preset: ImportPreset;
  mapping: Record<string, string> | undefined;
  progress: (message: string) => void;
  progressEvery: number;
}

/**
 * Streams the valid rows of a file into the staging table with COPY FROM STDIN and returns the
 * rejected rows. A second row with the same account id (ignoring case) is rejected as a duplicate.
 * Errors of the file as a whole (ImportFileError) abort the COPY and propagate, so the caller's
 * transaction rolls back.
 */
export async function stageRows(
  manager: EntityManager,
  content: Readable | string,
  options: StageOptions,
): Promise<StagedFile> {
  for (const sql of CREATE_STAGING_TABLES) await manager.query(sql);
  const staged: StagedFile = { rejected: [], rowsRead: 0, rowsValid: 0 };

  async function* copyChunks(): AsyncGenerator<string> {
    let chunk = '';
    for await (const row of readAccountRows(content, options.preset, options.mapping)) {
      staged.rowsRead++;
      if (staged.rowsRead % options.progressEvery === 0) {
        options.progress(`Read ${staged.rowsRead} rows`);
      }
      if (isRejected(row)) {
        staged.rejected.push(row);
        continue;
      }
      chunk += copyLine(row);
      if (chunk.length >= COPY_CHUNK_CHARS) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk !== '') yield chunk;
  }

  const client = (await manager.queryRunner!.connect()) as PoolClient;
  const copy = client.query(copyFrom(COPY_ROWS));
  // A small queue, because chunks that wait in it long enough are promoted to the old heap.
  await pipeline(Readable.from(copyChunks(), { highWaterMark: 2 }), copy);

  // The duplicate check runs here rather than in a Map of every id, so the memory of the import
  // does not grow with the file. The first valid row of an id is kept.
  const duplicates = returnedRows<{ line: number; externalId: string; firstLine: number }>(
    await manager.query(
      `WITH firsts AS (
         SELECT lower_id, min(line) AS first_line FROM account_import_rows
          GROUP BY lower_id HAVING count(*) > 1
       )
       DELETE FROM account_import_rows r USING firsts f
        WHERE r.lower_id = f.lower_id AND r.line > f.first_line
       RETURNING r.line, r.external_id AS "externalId", f.first_line AS "firstLine"`,
    ),
  );
  for (const row of duplicates) {
    staged.rejected.push({
      line: row.line,
      externalId: row.externalId,
      reason: `duplicate account id "${row.externalId}" (first on line ${row.firstLine}; ids ignore case)`,
    });
  }
  staged.rejected.sort((a, b) => a.line - b.line);
  staged.rowsValid = copy.rowCount - duplicates.length;
  await manager.query('ALTER TABLE account_import_rows ADD PRIMARY KEY (lower_id)');
  // Temporary tables get no automatic statistics, and the reconciliation joins on this one.
  await manager.query('ANALYZE account_import_rows');
  return staged;
}

function copyLine(row: ImportedAccount): string {
  const fields = [
    String(row.line),
    copyText(row.externalId.toLowerCase()),
    copyText(row.externalId),
    copyText(row.name),
    row.privilege,
    row.mfaState,
    row.status,
    row.lastUsedAt === null ? '\\N' : row.lastUsedAt.toISOString(),
    copyText(JSON.stringify(row.attributes)),
  ];
  return `${fields.join('\t')}\n`;
}

function copyText(value: string): string {
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]) : value;
}
