import { DataSource, DataSourceOptions } from 'typeorm';

import { MIGRATIONS } from '../../migrations';

/** Options shared by the application and the operator commands; the schema comes only from migrations. */
export function dataSourceOptions(databaseUrl: string): DataSourceOptions {
  return {
    type: 'postgres',
    url: databaseUrl,
    migrations: MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    migrationsTransactionMode: 'all',
    synchronize: false,
    // pg reads timestamptz as JavaScript Dates; sessions run in UTC so text output agrees.
    extra: { options: '-c TimeZone=UTC', max: 20, connectionTimeoutMillis: 5000 },
    logging: false,
  };
}

/** Arbitrary constant that names the migration lock among PostgreSQL advisory locks. */
const MIGRATION_LOCK_ID = 72_107_201;

/**
 * Applies pending migrations while holding a session advisory lock, so instances starting together
 * apply each migration once: the second waits, then finds nothing pending.
 * Returns the names of the migrations this call applied.
 */
export async function runMigrations(databaseUrl: string): Promise<string[]> {
  const dataSource = new DataSource(dataSourceOptions(databaseUrl));
  await dataSource.initialize();
  const lockRunner = dataSource.createQueryRunner();
  try {
    await lockRunner.connect();
    await lockRunner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    const applied = await dataSource.runMigrations({ transaction: 'all' });
    return applied.map((migration) => migration.name);
  } finally {
    await lockRunner
      .query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID])
      .catch(() => undefined);
    await lockRunner.release();
    await dataSource.destroy();
  }
}

/** Explains a failed connection without echoing the password in the URL. */
export function describeConnectionFailure(databaseUrl: string, error: unknown): string {
  let target = 'the database';
  try {
    const url = new URL(databaseUrl);
    target = `PostgreSQL at ${url.hostname}:${url.port || '5432'}${url.pathname}`;
  } catch {
    // The URL was validated at start-up; keep the generic wording if it still fails to parse.
  }
  const reason = error instanceof Error ? error.message : String(error);
  return `Cannot connect to ${target}: ${reason}. Check DATABASE_URL and that the server is running.`;
}

/** True when every migration is applied; start-up work that writes rows waits for that. */
export async function schemaIsCurrent(dataSource: DataSource): Promise<boolean> {
  return !(await dataSource.showMigrations());
}
