import { Client, PoolConfig } from 'pg';
import { DataSource } from 'typeorm';

import { AuditService, ChainVerification } from '../../src/audit/audit.service';
import { Provider } from '../../src/catalog/provider.entity';
import { SystemClock } from '../../src/common/clock';
import { dataSourceOptions } from '../../src/database/data-source';
import { Benchmark, BenchmarkResult, checkMinimum, TableRow } from '../benchmark';
import { createBenchDatabase, runSql } from '../support/database';
import { mean, median, percentile, round } from '../support/stats';
import { PLAIN_SCHEMA, PROVIDER_COUNT, SETUP_SQL } from './setup';
import { ChangeTiming, runWriters } from './writers';

const WRITERS = 50;
/** Connections of each mode's pool: one per writer and a few spare. */
const POOL_MAX = 55;
const CHANGES_PER_WRITER = 200;
/** Changes per writer before each measured run, which open the pool's connections. */
const WARMUP_CHANGES_PER_WRITER = 10;
/** Each round measures the chained mode, then the unchained one. */
const ROUNDS = 3;
/** Minimum share of the unchained rate that the chained mode should reach. */
const MIN_RATIO = 0.3;
/** Writers start no new change after this, so a slow run still ends with fewer changes. */
const RUN_LIMIT_MS = 120_000;

const MODES = ['chained', 'unchained'] as const;
type Mode = (typeof MODES)[number];

/** Audit events in the chained table (public) and in the unchained copy (PLAIN_SCHEMA). */
interface EventCounts {
  chained: number;
  unchained: number;
}

interface RunMeasurement {
  round: number;
  mode: Mode;
  changes: number;
  durationMs: number;
  timings: ChangeTiming[];
  /** CPU time of this process (which runs all writers) over the run, in ms. */
  nodeCpuMs: number;
  /** AuditService.verify() after a chained run. */
  verification?: ChainVerification;
}

export const auditAppend: Benchmark = {
  name: 'audit-append',
  description:
    `${WRITERS} concurrent writers, each doing ${CHANGES_PER_WRITER} provider updates with an ` +
    'audit event: the hash-chained audit_events against a copy without the chain trigger',
  run: runAuditAppend,
};

async function runAuditAppend(): Promise<BenchmarkResult> {
  const database = await createBenchDatabase();
  try {
    await runSql(database.url, SETUP_SQL);
    const providerIds = await queryColumn<string>(
      database.url,
      'SELECT id FROM providers ORDER BY name',
    );
    let expectedChainEvents = (await countEvents(database.url)).chained;

    const measurements: RunMeasurement[] = [];
    for (let roundNumber = 1; roundNumber <= ROUNDS; roundNumber++) {
      for (const mode of MODES) {
        const { measurement, eventsWritten } = await measureMode(
          mode,
          roundNumber,
          database.url,
          providerIds,
        );
        if (mode === 'chained') {
          expectedChainEvents += eventsWritten;
          checkVerification(measurement.verification, expectedChainEvents);
        }
        console.log(
          `Round ${roundNumber}, ${mode}: ${measurement.changes} changes in ` +
            `${round(measurement.durationMs / 1000, 2)} s`,
        );
        measurements.push(measurement);
      }
    }
    const [eventBytes] = await queryColumn<number>(
      database.url,
      `SELECT round(avg(octet_length(before::text) + octet_length(after::text)))::int
         FROM audit_events WHERE action = 'provider.updated'`,
    );
    return summarize(measurements, eventBytes);
  } finally {
    await database.drop();
  }
}

/**
 * Creates a DataSource configured like the service's (UTC sessions, the same driver) with POOL_MAX
 * connections. In the unchained mode the sessions' search_path starts with PLAIN_SCHEMA, so the
 * unqualified `audit_events` of AuditService.record() is the copy without the trigger, while
 * `providers` is still public.providers.
 */
function createDataSource(mode: Mode, databaseUrl: string): DataSource {
  const base = dataSourceOptions(databaseUrl);
  const extra = base.extra as PoolConfig & { options: string };
  const options =
    mode === 'unchained' ? `${extra.options} -c search_path=${PLAIN_SCHEMA},public` : extra.options;
  return new DataSource({
    ...base,
    entities: [Provider],
    extra: { ...extra, max: POOL_MAX, options },
  });
}

/**
 * Warms up, then measures one run of the writers in one mode, checks that the events went to that
 * mode's table only, and verifies the chain after a chained run.
 */
async function measureMode(
  mode: Mode,
  roundNumber: number,
  databaseUrl: string,
  providerIds: string[],
): Promise<{ measurement: RunMeasurement; eventsWritten: number }> {
  const dataSource = createDataSource(mode, databaseUrl);
  await dataSource.initialize();
  try {
    const audit = new AuditService(dataSource, new SystemClock());
    const writers = { writers: WRITERS, runLabel: `Round ${roundNumber} ${mode}` };
    const warmup = await runWriters(dataSource, audit, providerIds, {
      ...writers,
      changesPerWriter: WARMUP_CHANGES_PER_WRITER,
      deadline: performance.now() + RUN_LIMIT_MS,
    });

    const before = await countEvents(databaseUrl);
    const cpuAtStart = process.cpuUsage();
    const startedAt = performance.now();
    const timings = await runWriters(dataSource, audit, providerIds, {
      ...writers,
      changesPerWriter: CHANGES_PER_WRITER,
      deadline: startedAt + RUN_LIMIT_MS,
    });
    const durationMs = performance.now() - startedAt;
    const cpu = process.cpuUsage(cpuAtStart);
    const after = await countEvents(databaseUrl);

    const other: Mode = mode === 'chained' ? 'unchained' : 'chained';
    if (after[mode] - before[mode] !== timings.length || after[other] !== before[other]) {
      throw new Error(
        `The ${mode} run did ${timings.length} changes, but the ${mode} table grew by ` +
          `${after[mode] - before[mode]} events and the ${other} one by ` +
          `${after[other] - before[other]}`,
      );
    }
    const verification = mode === 'chained' ? await audit.verify() : undefined;
    return {
      measurement: {
        round: roundNumber,
        mode,
        changes: timings.length,
        durationMs,
        timings,
        nodeCpuMs: (cpu.user + cpu.system) / 1000,
        verification,
      },
      eventsWritten: warmup.length + timings.length,
    };
  } finally {
    await dataSource.destroy();
  }
}

function checkVerification(
  verification: ChainVerification | undefined,
  expectedEvents: number,
): void {
  if (verification?.valid !== true || verification.events !== expectedEvents) {
    throw new Error(
      `AuditService.verify() returned ${JSON.stringify(verification)} ` +
        `after ${expectedEvents} chained events: expected valid: true and events: ${expectedEvents}`,
    );
  }
}

async function countEvents(databaseUrl: string): Promise<EventCounts> {
  const [counts] = await queryColumn<EventCounts>(
    databaseUrl,
    `SELECT json_build_object(
       'chained', (SELECT count(*) FROM public.audit_events),
       'unchained', (SELECT count(*) FROM ${PLAIN_SCHEMA}.audit_events))`,
  );
  return counts;
}

/** Runs a query through a short-lived connection and returns the first column of every row. */
async function queryColumn<T>(databaseUrl: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const result = await client.query<unknown[]>({ text: sql, rowMode: 'array' });
    return result.rows.map((row) => row[0] as T);
  } finally {
    await client.end();
  }
}

function summarize(measurements: RunMeasurement[], eventBytes: number): BenchmarkResult {
  const rate = (m: RunMeasurement): number => m.changes / (m.durationMs / 1000);
  const rows: TableRow[] = measurements.map((m) => {
    const totals = m.timings.map((timing) => timing.totalMs);
    return {
      round: m.round,
      mode: m.mode,
      changes: m.changes,
      'duration s': round(m.durationMs / 1000, 2),
      'changes/s': round(rate(m), 0),
      'p50 ms': round(percentile(totals, 50), 1),
      'p99 ms': round(percentile(totals, 99), 1),
      'append mean ms': round(mean(m.timings.map((timing) => timing.appendMs)), 2),
      'commit mean ms': round(mean(m.timings.map((timing) => timing.commitMs)), 2),
      'node CPU %': round((100 * m.nodeCpuMs) / m.durationMs, 0),
      'chain valid': m.verification === undefined ? '' : String(m.verification.valid),
      'chain events': m.verification?.events ?? '',
    };
  });

  const of = (mode: Mode): RunMeasurement[] => measurements.filter((m) => m.mode === mode);
  const chainedRate = median(of('chained').map(rate));
  const unchainedRate = median(of('unchained').map(rate));
  const ratio = round(chainedRate / unchainedRate, 3);
  // Chained appends hold the lock from inside the INSERT to the end of COMMIT, and holds never
  // overlap, so 1000 / (mean commit ms) is an upper bound of the chained rate.
  const chainedCommitMs = median(
    of('chained').map((m) => mean(m.timings.map((timing) => timing.commitMs))),
  );

  return {
    rows,
    summary: {
      chainedMedianChangesPerSecond: round(chainedRate, 0),
      unchainedMedianChangesPerSecond: round(unchainedRate, 0),
      chainedToUnchainedRatio: ratio,
      chainedMedianCommitMs: round(chainedCommitMs, 2),
      chainedRateBoundFromCommitMs: round(1000 / chainedCommitMs, 0),
      meanEventBeforeAfterBytes: eventBytes,
    },
    targets: [
      checkMinimum('median chained changes/s / median unchained changes/s', ratio, MIN_RATIO),
    ],
    details: {
      writers: WRITERS,
      poolMax: POOL_MAX,
      changesPerWriter: CHANGES_PER_WRITER,
      warmupChangesPerWriter: WARMUP_CHANGES_PER_WRITER,
      providers: PROVIDER_COUNT,
      rounds: ROUNDS,
      runLimitMs: RUN_LIMIT_MS,
      order: 'chained then unchained in each round, on one database, one pool at a time',
      unchainedTable: `${PLAIN_SCHEMA}.audit_events, reached through search_path`,
      verifications: measurements
        .filter((m) => m.verification !== undefined)
        .map((m) => ({ round: m.round, ...m.verification })),
    },
  };
}
