import { Client } from 'pg';
import type { Logger } from 'pino';

import { resolveKeys } from './config/keys';
import { Runtime } from './config/runtime';
import { Settings } from './config/settings';
import { describeConnectionFailure, runMigrations } from './database/data-source';
import { EmbeddedDatabase } from './database/embedded-postgres';

/** Resolved runtime plus the embedded server to stop on shutdown, when one was started. */
export interface PreparedRuntime {
  runtime: Runtime;
  embedded: EmbeddedDatabase | undefined;
}

/**
 * Resolves keys, starts the embedded PostgreSQL when DATABASE_URL is unset, checks the connection
 * and applies migrations: always on the embedded default, and with DATABASE_URL only when
 * MIGRATIONS_RUN=true.
 */
export async function prepareRuntime(settings: Settings, logger: Logger): Promise<PreparedRuntime> {
  const keys = resolveKeys(settings);

  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = settings.databaseUrl;
  if (databaseUrl === undefined) {
    embedded = new EmbeddedDatabase(settings.dataDir, settings.embeddedPostgresPort, logger);
    databaseUrl = await embedded.start();
  }

  try {
    await checkConnection(databaseUrl);
    if (embedded !== undefined || settings.migrationsRun) {
      const applied = await runMigrations(databaseUrl);
      logger.info(
        applied.length > 0 ? `Applied migrations: ${applied.join(', ')}` : 'Schema is up to date',
      );
    }
  } catch (error) {
    await embedded?.stop();
    throw new Error(describeConnectionFailure(databaseUrl, error), { cause: error });
  }

  return { runtime: { settings, keys, databaseUrl }, embedded };
}

/** Fails fast with the driver's reason instead of letting the connection pool retry for minutes. */
async function checkConnection(databaseUrl: string): Promise<void> {
  const client = new Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}
