import 'reflect-metadata';

import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { Benchmark, BenchmarkResult, TableRow } from './benchmark';
import { BENCHMARKS } from './benchmarks';

/** The folder bench/results of the source tree, found from the compiled file dist/bench/run.js. */
const RESULTS_DIR = resolve(__dirname, '..', '..', 'bench', 'results');
/** Hard stop for one benchmark, so a hung server cannot keep the run going. */
const BENCHMARK_TIMEOUT_MS = 15 * 60 * 1000;

const USAGE = `Usage: npm run bench [-- <name>...]

Runs every benchmark, or only the named ones, prints a table per benchmark and writes
bench/results/<name>-<time>.json. Exits with 1 when a benchmark fails or misses a target.

Benchmarks:
${BENCHMARKS.map((benchmark) => `  ${benchmark.name}  ${benchmark.description}`).join('\n')}`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const selected = selectBenchmarks(positionals);
  if (selected === undefined) return 2;

  let exitCode = 0;
  for (const benchmark of selected) {
    console.log(`\n== ${benchmark.name}: ${benchmark.description}`);
    const startedAt = new Date();
    let result: BenchmarkResult;
    try {
      result = await runWithTimeout(benchmark);
    } catch (error) {
      console.error(`Benchmark ${benchmark.name} failed:`, error);
      exitCode = 1;
      continue;
    }
    const finishedAt = new Date();

    printResult(result);
    const file = writeResult(benchmark, result, startedAt, finishedAt);
    console.log(`Results written to ${relative(process.cwd(), file)}`);
    if (result.targets.some((target) => !target.met)) exitCode = 1;
  }
  return exitCode;
}

function selectBenchmarks(names: string[]): Benchmark[] | undefined {
  if (names.length === 0) return BENCHMARKS;
  const unknown = names.filter((name) => !BENCHMARKS.some((b) => b.name === name));
  if (unknown.length > 0) {
    const known = BENCHMARKS.map((benchmark) => benchmark.name).join(', ');
    console.error(`Unknown benchmark: ${unknown.join(', ')}. Known benchmarks: ${known}`);
    return undefined;
  }
  return BENCHMARKS.filter((benchmark) => names.includes(benchmark.name));
}

async function runWithTimeout(benchmark: Benchmark): Promise<BenchmarkResult> {
  // Exits the process, because a benchmark stuck in a server or the database cannot be cancelled.
  const watchdog = setTimeout(() => {
    console.error(
      `Benchmark ${benchmark.name} timed out after ${BENCHMARK_TIMEOUT_MS / 60_000} minutes; ` +
        'its database (gov_bench_*) may need dropping by hand',
    );
    process.exit(1);
  }, BENCHMARK_TIMEOUT_MS);
  try {
    return await benchmark.run();
  } finally {
    clearTimeout(watchdog);
  }
}

function printResult(result: BenchmarkResult): void {
  console.log(formatTable(result.rows));
  for (const [name, value] of Object.entries(result.summary)) {
    console.log(`${name}: ${value}`);
  }
  for (const target of result.targets) {
    const verdict = target.met ? 'met' : 'MISSED';
    const bound =
      target.maximum === undefined ? `minimum ${target.minimum}` : `maximum ${target.maximum}`;
    console.log(`Target ${verdict}: ${target.description} = ${target.value} (${bound})`);
  }
}

/** Formats rows as a plain-text table: text columns aligned left, numbers right. */
function formatTable(rows: TableRow[]): string {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (row: TableRow, column: string): string => String(row[column] ?? '');
  const widths = columns.map((column) =>
    Math.max(column.length, ...rows.map((row) => cell(row, column).length)),
  );
  const line = (cells: string[], numeric: boolean[]): string =>
    cells
      .map((text, i) => (numeric[i] ? text.padStart(widths[i]) : text.padEnd(widths[i])))
      .join('  ')
      .trimEnd();

  const header = line(
    columns,
    columns.map(() => false),
  );
  const separator = widths.map((width) => '-'.repeat(width)).join('  ');
  const body = rows.map((row) =>
    line(
      columns.map((column) => cell(row, column)),
      columns.map((column) => typeof row[column] === 'number'),
    ),
  );
  return [header, separator, ...body].join('\n');
}

function writeResult(
  benchmark: Benchmark,
  result: BenchmarkResult,
  startedAt: Date,
  finishedAt: Date,
): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const file = join(RESULTS_DIR, `${benchmark.name}-${stamp}.json`);
  const record = {
    benchmark: benchmark.name,
    description: benchmark.description,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model,
      totalMemoryBytes: totalmem(),
      node: process.version,
      platform: process.platform,
    },
    ...result,
  };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  return file;
}

main().then(
  (exitCode) => {
    process.exitCode = exitCode;
  },
  (error: unknown) => {
    console.error('Benchmark run failed:', error);
    process.exitCode = 1;
  },
);
