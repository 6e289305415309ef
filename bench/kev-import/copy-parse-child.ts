import { readFile } from 'node:fs/promises';

import { parseCatalog } from '../../src/vulnerabilities/kev-catalog';
import { sendResultAndExit } from '../support/child-process';
import { copiedRows, startPsql } from '../support/psql';
import { kevCopyCommand, writeKevCopyRows } from './catalog';
import { childArguments, cpuMsSince } from './child-result';

/**
 * Measures the COPY-with-parsing side of one kev-import run in its own process, so that its peak
 * RSS is its own. It reads the catalog file before the clock starts, then times parseCatalog() on the JSON
 * text in memory, building the CSV rows with their content hashes and streaming them into
 * `\copy … FROM pstdin` of a psql process, until psql exits. It loads no Nest module.
 */
async function main(): Promise<void> {
  const { databaseUrl, catalogPath, timeoutMs } = childArguments('copy-parse-child.js');
  const content = await readFile(catalogPath, 'utf8');
  const rssAtStartKb = Math.round(process.memoryUsage().rss / 1024);
  const startedAt = performance.now();
  const startCpu = process.cpuUsage();
  const catalog = parseCatalog(content);
  const parseMs = performance.now() - startedAt;

  const psql = startPsql(databaseUrl, kevCopyCommand('pstdin'), timeoutMs);
  // Settled before the writes, because a psql that fails early rejects while they still run.
  const finished = psql.finished.then(
    (result) => ({ result }),
    (error: unknown) => ({ error }),
  );
  try {
    await writeKevCopyRows(psql.stdin, catalog.entries, new Date().toISOString());
    psql.stdin.end();
  } catch (writeError) {
    const outcome = await finished;
    throw 'error' in outcome ? outcome.error : writeError;
  }
  const outcome = await finished;
  if ('error' in outcome) throw outcome.error;

  sendResultAndExit({
    wallMs: performance.now() - startedAt,
    cpuMs: cpuMsSince(startCpu),
    rssAtStartKb,
    maxRssKb: process.resourceUsage().maxRSS,
    psqlCpuMs: outcome.result.cpuMs,
    psqlMaxRssKb: outcome.result.maxRssKb,
    rowsWritten: copiedRows(outcome.result.stdout),
    parseMs,
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
