import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Client } from 'pg';

import { bundledKevFile } from '../../src/common/project-root';
import { parseCatalog } from '../../src/vulnerabilities/kev-catalog';
import { Benchmark, BenchmarkResult, checkMaximum, TableRow } from '../benchmark';
import { runChild } from '../support/child-process';
import { createBenchDatabase } from '../support/database';
import { copiedRows, startPsql } from '../support/psql';
import { median, round } from '../support/stats';
import { buildScaledCatalog, KEV_COPY_COLUMNS, kevCopyCommand, writeKevCopyFile } from './catalog';
import type { ChildResult, ProgressMark } from './child-result';

/** The benchmark catalog repeats every entry of the bundled one this many times. */
const COPIES = 100;
/** Each round measures every side once, in the order of SIDES, so drift hits all of them. */
const ROUNDS = 3;
/** Maximum ratio of the import's median wall time to the COPY baseline's. */
const MAX_RATIO = 3;
/** Limit of one measured run. The server cancels a COPY after it, and a child gets SIGKILL. */
const RUN_TIMEOUT_MS = 5 * 60_000;

/**
 * Sides of the comparison, each measured on its own fresh database:
 * - import: KevImportService.importContent() in the whole service, from the JSON text in memory to
 *   the commit.
 * - copy: psql `\copy … FROM '<file>'` of a ready CSV file with the rows the import writes.
 * - copy-parse: parseCatalog() on the JSON text in memory, row building with content hashes and
 *   `\copy … FROM pstdin` fed by a stream from the same process.
 */
const SIDES = ['import', 'copy', 'copy-parse'] as const;
type Side = (typeof SIDES)[number];

/** Wall time and CPU time of the child process in one step of the import, in ms. */
interface PhaseTime {
  wallMs: number;
  nodeCpuMs: number;
}

/** The import's time split at the progress lines of KevImportService. */
interface ImportPhases {
  /** Start to "Parsed …": JSON.parse and validation. */
  parse: PhaseTime;
  /** "Parsed …" to the last "Wrote …": id staging, withdrawal check, content hashes and batched upserts. */
  stage: PhaseTime;
  /** Last "Wrote …" to "Added …": marking withdrawn entries. */
  apply: PhaseTime;
  /** "Added …" to "Matched …": matching systems to the new entries. */
  match: PhaseTime;
  /** "Matched …" to the return: import record, audit event and COMMIT. */
  recordAndCommit: PhaseTime;
}

const PHASES = ['parse', 'stage', 'apply', 'match', 'recordAndCommit'] as const;

/** Contents of a measured database after a run. */
interface TableState {
  kevEntries: number;
  activeEntries: number;
  /** md5 over every kev_entries column except the two timestamps, in cve_id order. */
  contentChecksum: string;
  auditEvents: number;
  succeededImports: number;
  findings: number;
}

interface RunMeasurement {
  round: number;
  side: Side;
  wallMs: number;
  /** CPU time of the Node.js child process over the timed part (import and copy-parse), in ms. */
  nodeCpuMs?: number;
  /** CPU time of psql (copy and copy-parse), in ms. */
  psqlCpuMs?: number;
  /** Peak RSS of the Node.js child process (import and copy-parse), in KiB. */
  nodeMaxRssKb?: number;
  /** RSS of the Node.js child when its clock started, in KiB. */
  nodeRssAtStartKb?: number;
  /** Peak RSS of psql (copy and copy-parse), in KiB. */
  psqlMaxRssKb?: number;
  rowsWritten: number;
  /** Time in parseCatalog() (copy-parse only), in ms. */
  parseMs?: number;
  phases?: ImportPhases;
  table: TableState;
}

export const kevImport: Benchmark = {
  name: 'kev-import',
  description:
    `KevImportService.importContent() of a KEV catalog ${COPIES} times the bundled one, ` +
    'against a psql \\copy of the same rows into kev_entries',
  run: runKevImport,
};

async function runKevImport(): Promise<BenchmarkResult> {
  const workDir = await mkdtemp(join(tmpdir(), 'gov-bench-kev-'));
  try {
    const files = {
      catalog: join(workDir, 'catalog.json'),
      rows: join(workDir, 'kev-entries.csv'),
    };
    const prepared = await prepareFiles(files.catalog, files.rows);
    console.log(
      `Catalog of ${prepared.entries} entries (${mebibytes(prepared.catalogBytes)} MiB JSON, ` +
        `${mebibytes(prepared.csvBytes)} MiB CSV) in ${workDir}`,
    );

    const measurements: RunMeasurement[] = [];
    for (let roundNumber = 1; roundNumber <= ROUNDS; roundNumber++) {
      for (const side of SIDES) {
        const measurement = await measureSide(side, roundNumber, files, prepared.entries);
        console.log(
          `Round ${roundNumber}, ${side}: ${round(measurement.wallMs / 1000, 2)} s, ` +
            `${measurement.table.kevEntries} rows`,
        );
        measurements.push(measurement);
      }
    }
    checkSameContent(measurements);
    return summarize(measurements, prepared);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

interface PreparedFiles {
  entries: number;
  catalogBytes: number;
  csvBytes: number;
}

/** Writes the scaled catalog as JSON and its kev_entries rows as CSV for the COPY baseline. */
async function prepareFiles(catalogPath: string, rowsPath: string): Promise<PreparedFiles> {
  const text = buildScaledCatalog(await readFile(bundledKevFile(), 'utf8'), COPIES);
  await writeFile(catalogPath, text);
  const { entries } = parseCatalog(text);
  await writeKevCopyFile(rowsPath, entries, new Date().toISOString());
  return {
    entries: entries.length,
    catalogBytes: Buffer.byteLength(text),
    csvBytes: (await stat(rowsPath)).size,
  };
}

/** Measures one side on a fresh migrated database and checks the rows it wrote. */
async function measureSide(
  side: Side,
  roundNumber: number,
  files: { catalog: string; rows: string },
  expectedRows: number,
): Promise<RunMeasurement> {
  const database = await createBenchDatabase();
  try {
    let measurement: Omit<RunMeasurement, 'table'>;
    if (side === 'copy') {
      const psql = startPsql(database.url, kevCopyCommand(`'${files.rows}'`), RUN_TIMEOUT_MS);
      psql.stdin.end();
      const result = await psql.finished;
      measurement = {
        round: roundNumber,
        side,
        wallMs: result.wallMs,
        psqlCpuMs: result.cpuMs,
        psqlMaxRssKb: result.maxRssKb,
        rowsWritten: copiedRows(result.stdout),
      };
    } else {
      const result = await runChild<ChildResult>(
        join(__dirname, `${side}-child.js`),
        [database.url, files.catalog, String(RUN_TIMEOUT_MS)],
        RUN_TIMEOUT_MS + 60_000,
      );
      measurement = {
        round: roundNumber,
        side,
        wallMs: result.wallMs,
        nodeCpuMs: result.cpuMs,
        psqlCpuMs: result.psqlCpuMs,
        nodeMaxRssKb: result.maxRssKb,
        nodeRssAtStartKb: result.rssAtStartKb,
        psqlMaxRssKb: result.psqlMaxRssKb,
        rowsWritten: result.rowsWritten,
        parseMs: result.parseMs,
        phases: result.progress && importPhases(result.progress, result.wallMs, result.cpuMs),
      };
    }

    const table = await inspectTables(database.url);
    if (measurement.rowsWritten !== expectedRows || table.kevEntries !== expectedRows) {
      throw new Error(
        `${side} in round ${roundNumber} wrote ${measurement.rowsWritten} rows and left ` +
          `${table.kevEntries} in kev_entries, expected ${expectedRows}`,
      );
    }
    return { ...measurement, table };
  } finally {
    await database.drop();
  }
}

/** Splits the import's times at its progress lines, or returns undefined when a line is missing. */
function importPhases(
  progress: ProgressMark[],
  wallMs: number,
  cpuMs: number,
): ImportPhases | undefined {
  const lastMark = (prefix: string): ProgressMark | undefined =>
    progress.filter((mark) => mark.message.startsWith(prefix)).at(-1);
  const start: ProgressMark = { message: '', ms: 0, cpuMs: 0 };
  const end: ProgressMark = { message: '', ms: wallMs, cpuMs };
  const marks = [start, ...['Parsed ', 'Wrote ', 'Added ', 'Matched '].map(lastMark), end];
  if (marks.some((mark) => mark === undefined)) return undefined;
  const between = (index: number): PhaseTime => ({
    wallMs: marks[index + 1]!.ms - marks[index]!.ms,
    nodeCpuMs: marks[index + 1]!.cpuMs - marks[index]!.cpuMs,
  });
  return {
    parse: between(0),
    stage: between(1),
    apply: between(2),
    match: between(3),
    recordAndCommit: between(4),
  };
}

async function inspectTables(databaseUrl: string): Promise<TableState> {
  // Every column the import writes except first_seen_at and updated_at, which contain the time of the run.
  const contentColumns = [
    ...KEV_COPY_COLUMNS.filter((column) => !column.endsWith('_at')),
    'vendor_key',
    'product_key',
    'withdrawn_at',
  ];
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<TableState>(`
      SELECT count(*)::int AS "kevEntries",
             (count(*) FILTER (WHERE withdrawn_at IS NULL))::int AS "activeEntries",
             md5(string_agg(md5(ROW(${contentColumns.join(', ')})::text), '' ORDER BY cve_id))
               AS "contentChecksum",
             (SELECT count(*) FROM audit_events)::int AS "auditEvents",
             (SELECT count(*) FROM kev_imports WHERE status = 'succeeded')::int
               AS "succeededImports",
             (SELECT count(*) FROM vulnerability_findings)::int AS "findings"
        FROM kev_entries`);
    return rows[0];
  } finally {
    await client.end();
  }
}

/** Throws unless every run left the same kev_entries content, timestamps aside. */
function checkSameContent(measurements: RunMeasurement[]): void {
  const checksums = new Set(measurements.map((m) => m.table.contentChecksum));
  if (checksums.size !== 1) {
    const listed = measurements.map((m) => `${m.side} ${m.round}: ${m.table.contentChecksum}`);
    throw new Error(`The runs left different kev_entries content:\n${listed.join('\n')}`);
  }
}

function summarize(measurements: RunMeasurement[], prepared: PreparedFiles): BenchmarkResult {
  const rows: TableRow[] = measurements.map((m) => ({
    round: m.round,
    side: m.side,
    'wall s': seconds(m.wallMs),
    'node CPU s': seconds(m.nodeCpuMs),
    'psql CPU s': seconds(m.psqlCpuMs),
    'node peak RSS MiB': m.nodeMaxRssKb === undefined ? '' : mebibytes(m.nodeMaxRssKb * 1024),
    'psql peak RSS MiB': m.psqlMaxRssKb === undefined ? '' : mebibytes(m.psqlMaxRssKb * 1024),
    'kev_entries rows': m.table.kevEntries,
    'parse s': seconds(m.phases?.parse.wallMs ?? m.parseMs),
    'stage s': seconds(m.phases?.stage.wallMs),
    'apply s': seconds(m.phases?.apply.wallMs),
    'match s': seconds(m.phases?.match.wallMs),
    'record+commit s': seconds(m.phases?.recordAndCommit.wallMs),
  }));

  const of = (side: Side): RunMeasurement[] => measurements.filter((m) => m.side === side);
  const medianOf = (side: Side, value: (m: RunMeasurement) => number | undefined): number =>
    median(of(side).map((m) => value(m) ?? Number.NaN));
  const importSeconds = medianOf('import', (m) => m.wallMs) / 1000;
  const copySeconds = medianOf('copy', (m) => m.wallMs) / 1000;
  const copyParseSeconds = medianOf('copy-parse', (m) => m.wallMs) / 1000;
  const ratio = round(importSeconds / copySeconds, 2);
  const mib = (kilobytes: number): number => mebibytes(kilobytes * 1024);

  return {
    rows,
    summary: {
      importMedianSeconds: round(importSeconds, 2),
      copyMedianSeconds: round(copySeconds, 2),
      copyWithParseMedianSeconds: round(copyParseSeconds, 2),
      importToCopyRatio: ratio,
      importToCopyWithParseRatio: round(importSeconds / copyParseSeconds, 2),
      importNodeCpuMedianSeconds: round(medianOf('import', (m) => m.nodeCpuMs) / 1000, 2),
      copyPsqlCpuMedianSeconds: round(medianOf('copy', (m) => m.psqlCpuMs) / 1000, 2),
      copyWithParseNodeCpuMedianSeconds: round(
        medianOf('copy-parse', (m) => m.nodeCpuMs) / 1000,
        2,
      ),
      importMedianPeakRssMiB: mib(medianOf('import', (m) => m.nodeMaxRssKb)),
      importMedianRssAtStartMiB: mib(medianOf('import', (m) => m.nodeRssAtStartKb)),
      copyPsqlMedianPeakRssMiB: mib(medianOf('copy', (m) => m.psqlMaxRssKb)),
      copyWithParseNodeMedianPeakRssMiB: mib(medianOf('copy-parse', (m) => m.nodeMaxRssKb)),
      copyWithParsePsqlMedianPeakRssMiB: mib(medianOf('copy-parse', (m) => m.psqlMaxRssKb)),
    },
    targets: [checkMaximum('median import wall time / median COPY wall time', ratio, MAX_RATIO)],
    details: {
      copies: COPIES,
      entries: prepared.entries,
      catalogBytes: prepared.catalogBytes,
      csvBytes: prepared.csvBytes,
      rounds: ROUNDS,
      order: `${SIDES.join(', ')} in each round, each on its own fresh migrated database`,
      copyCommand: kevCopyCommand("'<file>'"),
      importPhaseMedians: Object.fromEntries(
        PHASES.map((phase) => [
          phase,
          {
            wallSeconds: seconds(medianOf('import', (m) => m.phases?.[phase].wallMs)),
            nodeCpuSeconds: seconds(medianOf('import', (m) => m.phases?.[phase].nodeCpuMs)),
          },
        ]),
      ),
      tablesAfterEachRun: measurements.map((m) => ({ round: m.round, side: m.side, ...m.table })),
    },
  };
}

function seconds(milliseconds: number | undefined): number | string {
  return milliseconds === undefined ? '' : round(milliseconds / 1000, 2);
}

function mebibytes(bytes: number): number {
  return round(bytes / 1_048_576, 1);
}
