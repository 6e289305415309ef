import { Logger } from '@nestjs/common';

import { resolveKeys } from './config/keys';
import { Runtime } from './config/runtime';
import { Settings } from './config/settings';
import { describeConnectionFailure, runMigrations } from './database/data-source';
import { EmbeddedDatabase } from './database/embedded-postgres';

const logger = new Logger('Bootstrap');

/** Resolved runtime plus the embedded server to stop on shutdown, when one was started. */
export interface PreparedRuntime {
  runtime: Runtime;
  embedded: EmbeddedDatabase | undefined;
}

/**
 * Resolves keys, starts the embedded PostgreSQL when DATABASE_URL is unset and applies migrations:
 * always on the embedded default, and with DATABASE_URL only when MIGRATIONS_RUN=true.
 */
export async function prepareRuntime(settings: Settings): Promise<PreparedRuntime> {
  const keys = resolveKeys(settings);

  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = settings.databaseUrl;
  if (databaseUrl === undefined) {
    embedded = new EmbeddedDatabase(settings.dataDir, settings.embeddedPostgresPort);
    databaseUrl = await embedded.start();
  }

  if (embedded !== undefined || settings.migrationsRun) {
    try {
      const applied = await runMigrations(databaseUrl);
      logger.log(
        applied.length > 0 ? `Applied migrations: ${applied.join(', ')}` : 'Schema is up to date',
      );
    } catch (error) {
      await embedded?.stop();
      throw new Error(describeConnectionFailure(databaseUrl, error), { cause: error });
    }
  }

  return { runtime: { settings, keys, databaseUrl }, embedded };
}
