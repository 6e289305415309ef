import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Client } from 'pg';

import { Benchmark, BenchmarkResult, checkMaximum, TableRow } from '../benchmark';
import { runChild } from '../support/child-process';
import { createBenchDatabase } from '../support/database';
import { copiedRows, startPsql } from '../support/psql';
import { median, round } from '../support/stats';
import { ACCOUNT_COPY_COLUMNS, writeAccountCopyFile, writeCredentialReport } from './report';

/** Users in the generated credential report, the root user included. */
const ROWS = 100_000;
const ROUNDS = 3;
/** Maximum ratio of the import's median wall time to the COPY baseline's. */
const MAX_RATIO = 5;
/** Maximum peak RSS of the process running the import, in MiB. */
const MAX_RSS_MIB = 300;
const RUN_TIMEOUT_MS = 5 * 60_000;

interface ImportChildResult {
  wallMs: number;
  rssAtStartKb: number;
  maxRssKb: number;
  created: number;
  rows: number;
}

export const accountImport: Benchmark = {
  name: 'account-import',
  description:
    `AccountImportService.importAccounts() of a ${ROWS}-row AWS IAM credential report into an ` +
    'empty inventory, against a psql \\copy of the same account rows',
  run: runAccountImport,
};

async function runAccountImport(): Promise<BenchmarkResult> {
  const workDir = await mkdtemp(join(tmpdir(), 'gov-bench-accounts-'));
  const reportPath = join(workDir, 'credential-report.csv');
  await writeCredentialReport(reportPath, ROWS);
  const rows: TableRow[] = [];
  try {
    for (let roundNumber = 1; roundNumber <= ROUNDS; roundNumber++) {
      for (const side of ['import', 'copy'] as const) {
        const database = await createBenchDatabase();
        try {
          const systemId = await createSystem(database.url);
          let row: TableRow;
          if (side === 'import') {
            const result = await runChild<ImportChildResult>(
              join(__dirname, 'import-child.js'),
              [database.url, systemId, reportPath],
              RUN_TIMEOUT_MS,
            );
            if (result.created !== ROWS) throw new Error(`import created ${result.created} rows`);
            row = {
              round: roundNumber,
              side,
              wallMs: round(result.wallMs, 0),
              maxRssMiB: round(result.maxRssKb / 1024, 1),
              rssAtStartMiB: round(result.rssAtStartKb / 1024, 1),
            };
          } else {
            const copyPath = join(workDir, `accounts-${roundNumber}.csv`);
            await writeAccountCopyFile(copyPath, ROWS, systemId, new Date().toISOString());
            const psql = startPsql(
              database.url,
              `\\copy accounts (${ACCOUNT_COPY_COLUMNS}) FROM '${copyPath}' WITH (FORMAT csv)`,
              RUN_TIMEOUT_MS,
            );
            psql.stdin.end();
            const result = await psql.finished;
            if (copiedRows(result.stdout) !== ROWS) throw new Error('COPY wrote a wrong count');
            row = { round: roundNumber, side, wallMs: round(result.wallMs, 0), maxRssMiB: '' };
          }
          console.log(`Round ${roundNumber}, ${side}: ${row.wallMs} ms`);
          rows.push(row);
        } finally {
          await database.drop();
        }
      }
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }

  const wall = (side: string): number =>
    median(rows.filter((row) => row.side === side).map((row) => Number(row.wallMs)));
  const importMs = wall('import');
  const copyMs = wall('copy');
  const peakRss = Math.max(
    ...rows.filter((row) => row.side === 'import').map((row) => Number(row.maxRssMiB)),
  );
  const ratio = round(importMs / copyMs, 2);
  return {
    rows,
    summary: { importMedianMs: importMs, copyMedianMs: copyMs, ratio, importPeakRssMiB: peakRss },
    targets: [
      checkMaximum('median import wall time / median COPY wall time', ratio, MAX_RATIO),
      checkMaximum('peak RSS of the import process (MiB)', peakRss, MAX_RSS_MIB),
    ],
    details: { rows: ROWS, rounds: ROUNDS },
  };
}

/** Inserts the provider and system that the imported accounts belong to. */
async function createSystem(url: string): Promise<string> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const {
      rows: [provider],
    } = await client.query<{ id: string }>(
      `INSERT INTO providers (name, created_at, updated_at) VALUES ('Amazon Web Services', now(), now())
       RETURNING id`,
    );
    const {
      rows: [system],
    } = await client.query<{ id: string }>(
      `INSERT INTO systems (provider_id, name, product, category, criticality, created_at, updated_at)
       VALUES ($1, 'AWS production account', 'AWS IAM', 'ci-cd', 'critical', now(), now())
       RETURNING id`,
      [provider.id],
    );
    return system.id;
  } finally {
    await client.end();
  }
}
