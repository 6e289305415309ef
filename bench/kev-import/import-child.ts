import 'reflect-metadata';

import { readFile } from 'node:fs/promises';

import { KevImportService } from '../../src/vulnerabilities/kev-import.service';
import { sendResultAndExit } from '../support/child-process';
import { createServiceApp } from '../support/service';
import { childArguments, ChildResult, cpuMsSince, ProgressMark } from './child-result';

/**
 * Measures the import side of one kev-import run in its own process, so that its peak RSS is its
 * own. It reads the catalog file and builds the whole service before the clock starts, then times
 * KevImportService.importContent() from the JSON text in memory to the commit.
 */
async function main(): Promise<void> {
  const { databaseUrl, catalogPath } = childArguments('import-child.js');
  const content = await readFile(catalogPath, 'utf8');
  const service = await createServiceApp(databaseUrl);
  let result: ChildResult;
  try {
    const imports = service.app.get(KevImportService);
    const progress: ProgressMark[] = [];
    const rssAtStartKb = Math.round(process.memoryUsage().rss / 1024);
    const startedAt = performance.now();
    const startCpu = process.cpuUsage();
    const mark = (message: string): void => {
      progress.push({ message, ms: performance.now() - startedAt, cpuMs: cpuMsSince(startCpu) });
    };
    const report = await imports.importContent(content, 'kev-import benchmark', {
      progress: mark,
    });
    result = {
      wallMs: performance.now() - startedAt,
      cpuMs: cpuMsSince(startCpu),
      rssAtStartKb,
      maxRssKb: process.resourceUsage().maxRSS,
      rowsWritten: report.added,
      progress,
    };
  } finally {
    await service.close();
  }
  sendResultAndExit(result);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
