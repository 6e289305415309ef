import 'reflect-metadata';

import { Logger } from '@nestjs/common';

import { buildApp } from './app';
import { prepareRuntime } from './bootstrap';
import { ConfigurationError, loadSettings, runsApi } from './config/settings';
import { describeConnectionFailure } from './database/data-source';

const logger = new Logger('Main');

async function main(): Promise<void> {
  const settings = loadSettings();
  const { runtime, embedded } = await prepareRuntime(settings);

  let app;
  try {
    app = await buildApp(runtime);
  } catch (error) {
    await embedded?.stop();
    throw new Error(describeConnectionFailure(runtime.databaseUrl, error), { cause: error });
  }
  if (embedded) {
    // Runs after Nest has closed the HTTP server, the workers and the connection pool.
    process.once('beforeExit', () => void embedded.stop());
  }

  if (runsApi(settings)) {
    await app.listen({ port: settings.port, host: settings.host });
    logger.log(
      `Serving on http://${settings.host}:${settings.port} (role ${settings.role}); API docs at /docs`,
    );
  } else {
    await app.init();
    logger.log('Running as worker only; no HTTP port is opened');
  }
}

main().catch((error: unknown) => {
  // Configuration and connection problems are the operator's to fix: print the message, not a trace.
  const message =
    error instanceof ConfigurationError || error instanceof Error ? error.message : String(error);
  process.stderr.write(`Start-up failed: ${message}\n`);
  if (!(error instanceof ConfigurationError) && process.env.LOG_LEVEL === 'debug') {
    process.stderr.write(`${(error as Error).stack ?? ''}\n`);
  }
  process.exit(1);
});
