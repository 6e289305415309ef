import { randomBytes } from 'node:crypto';

import { Client } from 'pg';

import { ADMIN_DATABASE_URL, databaseUrl, runId, templateDatabase } from './env';

/** Clones the migrated template into a new database for one suite and returns its URL. */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<string> {
  const name = `gov_t_${runId()}_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  try {
    const template = options.migrated === false ? '' : ` TEMPLATE ${templateDatabase()}`;
    await admin.query(`CREATE DATABASE ${name}${template}`);
  } finally {
    await admin.end();
  }
  return databaseUrl(name);
}

/** Runs SQL as the PostgreSQL superuser on a suite database: for forcing failures and tampering. */
export async function superuserQuery<T = Record<string, unknown>>(
  url: string,
  sql: string,
  parameters: unknown[] = [],
): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query(sql, parameters);
    return result.rows as T[];
  } finally {
    await client.end();
  }
}
