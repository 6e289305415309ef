import { deepStrictEqual } from 'node:assert/strict';

import { Benchmark, BenchmarkResult, checkMinimum, TableRow } from '../benchmark';
import { captureSql } from '../support/capture-sql';
import { createBenchDatabase, runSql } from '../support/database';
import { LoadResult, measureLoad } from '../support/load';
import { RunningServer } from '../support/server';
import { startService } from '../support/service';
import { median, round } from '../support/stats';
import { startBareServer, systemsPageSql } from './bare-server';
import { PROVIDER_COUNT, SEED_SQL, SYSTEM_COUNT } from './seed';

const PAGE_SIZE = 50;
const PATH = `/api/systems?limit=${PAGE_SIZE}`;
const CONNECTIONS = 50;
const WARMUP_SECONDS = 2;
const DURATION_SECONDS = 10;
/** Each round loads the service, then the bare server, so drift on a shared machine hits both. */
const ROUNDS = 2;
/** Minimum share of the bare server's throughput that the service should reach. */
const MIN_RATIO = 0.5;

type ServerKind = 'service' | 'bare';

interface RoundMeasurement {
  round: number;
  server: ServerKind;
  load: LoadResult;
}

export const systemsList: Benchmark = {
  name: 'systems-list',
  description:
    `GET ${PATH} over ${SYSTEM_COUNT.toLocaleString('en-US')} systems at ${CONNECTIONS} ` +
    'connections: the service against a bare Fastify + pg handler running the same SQL',
  run: runSystemsList,
};

async function runSystemsList(): Promise<BenchmarkResult> {
  const database = await createBenchDatabase();
  try {
    await runSql(database.url, SEED_SQL);
    const servers: Record<ServerKind, () => Promise<RunningServer>> = {
      service: () => startService(database.url),
      bare: () => startBareServer(database.url),
    };

    const measurements: RoundMeasurement[] = [];
    let servicePage: unknown;
    for (let roundNumber = 1; roundNumber <= ROUNDS; roundNumber++) {
      for (const server of ['service', 'bare'] as const) {
        const { load, page } = await measureServer(server, servers[server]);
        // Both servers must return the same page, or their throughput is not comparable.
        if (server === 'service') {
          servicePage = page;
        } else {
          deepStrictEqual(page, servicePage, 'The bare server returned a different page');
        }
        measurements.push({ round: roundNumber, server, load });
      }
    }
    return summarize(measurements);
  } finally {
    await database.drop();
  }
}

/** Starts one server, checks its response to a single request, loads it and stops it. */
async function measureServer(
  kind: ServerKind,
  start: () => Promise<RunningServer>,
): Promise<{ load: LoadResult; page: unknown }> {
  const server = await start();
  try {
    const url = `${server.url}${PATH}`;
    const { result: page, statements } = await captureSql(() => fetchPage(url, server.headers));
    const expectedSql = systemsPageSql(PAGE_SIZE, 0);
    if (kind === 'service' && !statements.includes(expectedSql)) {
      throw new Error(
        'The service no longer sends the SQL that the bare server runs. Update systemsPageSql() ' +
          `in bench/systems-list/bare-server.ts.\nExpected: ${expectedSql}\n` +
          `Sent: ${statements.join('\n      ')}`,
      );
    }
    const load = await measureLoad({
      url,
      headers: server.headers,
      connections: CONNECTIONS,
      warmupSeconds: WARMUP_SECONDS,
      durationSeconds: DURATION_SECONDS,
    });
    return { load, page };
  } finally {
    await server.close();
  }
}

async function fetchPage(url: string, headers: Record<string, string>): Promise<unknown> {
  const response = await fetch(url, { headers });
  if (response.status !== 200) {
    throw new Error(`GET ${url} returned ${response.status}: ${await response.text()}`);
  }
  const page = (await response.json()) as { items?: unknown[] };
  if (page.items?.length !== PAGE_SIZE) {
    throw new Error(`GET ${url} returned ${page.items?.length} items, expected ${PAGE_SIZE}`);
  }
  return page;
}

function summarize(measurements: RoundMeasurement[]): BenchmarkResult {
  const rows: TableRow[] = measurements.map(({ round: roundNumber, server, load }) => ({
    round: roundNumber,
    server,
    'req/s': round(load.requestsPerSecond, 0),
    requests: load.requests,
    'duration s': round(load.durationSeconds, 2),
    'p50 ms': round(load.latencyP50Ms, 1),
    'p99 ms': round(load.latencyP99Ms, 1),
  }));
  const rate = (server: ServerKind): number[] =>
    measurements.filter((m) => m.server === server).map((m) => m.load.requestsPerSecond);
  const serviceMedian = median(rate('service'));
  const bareMedian = median(rate('bare'));
  const ratio = serviceMedian / bareMedian;

  return {
    rows,
    summary: {
      serviceMedianRequestsPerSecond: round(serviceMedian, 0),
      bareMedianRequestsPerSecond: round(bareMedian, 0),
      serviceToBareRatio: round(ratio, 3),
    },
    targets: [checkMinimum('median service req/s / median bare req/s', round(ratio, 3), MIN_RATIO)],
    details: {
      path: PATH,
      providers: PROVIDER_COUNT,
      systems: SYSTEM_COUNT,
      connections: CONNECTIONS,
      warmupSeconds: WARMUP_SECONDS,
      durationSeconds: DURATION_SECONDS,
      rounds: ROUNDS,
      order: 'service then bare in each round, one server running at a time',
      sql: systemsPageSql(PAGE_SIZE, 0),
    },
  };
}
