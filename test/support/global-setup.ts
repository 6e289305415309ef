import { randomBytes } from 'node:crypto';

import { Client } from 'pg';

import { runMigrations } from '../../src/database/data-source';
import { ADMIN_DATABASE_URL, databaseUrl, templateDatabase } from './env';

/**
 * Creates one template database with every migration applied; each suite then clones it, which
 * takes milliseconds and keeps suites from seeing each other's rows.
 */
export default async function globalSetup(): Promise<void> {
  process.env.GOV_TEST_RUN_ID = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const admin = new Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${templateDatabase()}`);
  } finally {
    await admin.end();
  }
  await runMigrations(databaseUrl(templateDatabase()));
}
