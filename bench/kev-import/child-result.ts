/** A progress line of KevImportService and when it arrived, in ms after the import started. */
export interface ProgressMark {
  message: string;
  ms: number;
  /** CPU time (user and system) of the child process since the import started, in ms. */
  cpuMs: number;
}

/** CPU time (user and system) of this process since `start`, in ms. */
export function cpuMsSince(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1000;
}

/** Figures that a child process of the kev-import benchmark sends to the runner. */
export interface ChildResult {
  wallMs: number;
  /** CPU time (user and system) of the child process over the timed part, in ms. */
  cpuMs: number;
  /** Resident set size when the clock started, with the catalog text already read, in KiB. */
  rssAtStartKb: number;
  /** Peak resident set size of the child process over its whole life, in KiB. */
  maxRssKb: number;
  /** CPU time (user and system) of psql (copy-parse only), in ms. */
  psqlCpuMs?: number;
  /** Peak resident set size of psql (copy-parse only), in KiB. */
  psqlMaxRssKb?: number;
  /** Rows that the import reports as added, or that psql reports as copied. */
  rowsWritten: number;
  /** Time spent in parseCatalog() (copy-parse only), in ms. */
  parseMs?: number;
  /** Progress lines of the import (import only). */
  progress?: ProgressMark[];
}

/** Reads the arguments that the runner passes to both child scripts. */
export function childArguments(script: string): {
  databaseUrl: string;
  catalogPath: string;
  timeoutMs: number;
} {
  const [databaseUrl, catalogPath, timeout] = process.argv.slice(2);
  const timeoutMs = Number(timeout);
  if (!databaseUrl || !catalogPath || !(timeoutMs > 0)) {
    throw new Error(`Usage: node ${script} <database URL> <catalog JSON file> <timeout ms>`);
  }
  return { databaseUrl, catalogPath, timeoutMs };
}
