import 'reflect-metadata';

import { createReadStream } from 'node:fs';

import { AccountImportService } from '../../src/access/account-import.service';
import { sendResultAndExit } from '../support/child-process';
import { createServiceApp } from '../support/service';

/**
 * Measures one account import in its own process, so its peak RSS is its own: builds the whole
 * service, then times AccountImportService.importAccounts() streaming the report file to the commit.
 */
async function main(): Promise<void> {
  const [databaseUrl, systemId, reportPath] = process.argv.slice(2);
  if (!databaseUrl || !systemId || !reportPath) {
    throw new Error('Usage: node import-child.js <database URL> <system id> <report file>');
  }
  const service = await createServiceApp(databaseUrl);
  try {
    const rssAtStartKb = Math.round(process.memoryUsage().rss / 1024);
    const startedAt = performance.now();
    const report = await service.app
      .get(AccountImportService)
      .importAccounts(systemId, createReadStream(reportPath), {
        preset: 'aws-iam-credential-report',
        mode: 'full',
        allowPartialErrors: false,
        source: 'account-import benchmark',
      });
    const wallMs = performance.now() - startedAt;
    sendResultAndExit({
      wallMs,
      rssAtStartKb,
      maxRssKb: process.resourceUsage().maxRSS,
      created: report.created,
      rows: report.rows.length,
    });
  } finally {
    await service.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
