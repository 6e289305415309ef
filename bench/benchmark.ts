/** One benchmark that the runner can select by name and run on its own. */
export interface Benchmark {
  /** Name used on the command line (`npm run bench -- <name>`) and in result file names. */
  name: string;
  description: string;
  run(): Promise<BenchmarkResult>;
}

/**
 * A bound that a measured figure must respect: a minimum it must reach, such as a throughput ratio,
 * or a maximum it must not exceed, such as a ratio of wall times. Each target sets one of the two.
 */
export interface Target {
  description: string;
  value: number;
  minimum?: number;
  maximum?: number;
  met: boolean;
}

export type TableRow = Record<string, string | number>;

/** Figures of one benchmark run, which the runner prints as a table and stores as JSON. */
export interface BenchmarkResult {
  /** One row per measured run, in the order they ran. */
  rows: TableRow[];
  /** Headline figures computed from the rows, such as medians and ratios. */
  summary: Record<string, number>;
  targets: Target[];
  /** Settings and anything else needed to interpret the figures later. */
  details: Record<string, unknown>;
}

export function checkMinimum(description: string, value: number, minimum: number): Target {
  return { description, value, minimum, met: value >= minimum };
}

export function checkMaximum(description: string, value: number, maximum: number): Target {
  return { description, value, maximum, met: value <= maximum };
}
