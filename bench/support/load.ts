import autocannon from 'autocannon';

/** Settings of one closed-loop load run: a fixed number of connections for a fixed time. */
export interface LoadOptions {
  url: string;
  headers: Record<string, string>;
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
}

/** Figures from the measured part of one load run, without the warm-up. */
export interface LoadResult {
  /** Completed requests divided by the run's duration. */
  requestsPerSecond: number;
  requests: number;
  durationSeconds: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

/**
 * Loads `url` with autocannon for the warm-up, then again for the measured duration, and returns
 * the second run's figures. Autocannon runs in one worker thread, so the load generator does not
 * share the event loop of a server started in this process. Any connection error, timeout or
 * non-2xx response fails the run, because throughput of failing requests is not comparable.
 */
export async function measureLoad(options: LoadOptions): Promise<LoadResult> {
  await runAutocannon(options, options.warmupSeconds);
  const result = await runAutocannon(options, options.durationSeconds);
  return {
    requestsPerSecond: result.requests.total / result.duration,
    requests: result.requests.total,
    durationSeconds: result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  };
}

async function runAutocannon(
  options: LoadOptions,
  durationSeconds: number,
): Promise<autocannon.Result> {
  const { url, headers, connections } = options;
  const result = await autocannon({
    url,
    headers,
    connections,
    duration: durationSeconds,
    workers: 1,
    timeout: 10,
  });
  const failures = result.errors + result.timeouts + result.non2xx;
  if (failures > 0) {
    const statusCounts = JSON.stringify(result.statusCodeStats);
    throw new Error(
      `Load run on ${url} failed: ${result.errors} connection errors, ` +
        `${result.timeouts} timeouts, ${result.non2xx} non-2xx responses ` +
        `(responses by status: ${statusCounts})`,
    );
  }
  if (result.requests.total === 0) {
    throw new Error(`Load run on ${url} completed no request in ${durationSeconds} s`);
  }
  return result;
}
