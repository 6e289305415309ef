import { randomBytes } from 'node:crypto';

import { Client } from 'pg';

import { runMigrations } from '../../src/database/data-source';

/** Superuser connection to the local PostgreSQL, used to create and drop benchmark databases. */
export const ADMIN_DATABASE_URL =
  process.env.BENCH_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A migrated database that exists only for one benchmark. */
export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** Creates a uniquely named database beside ADMIN_DATABASE_URL and applies every migration. */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `gov_bench_${randomBytes(6).toString('hex')}`;
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;

  await withAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
  const database: BenchDatabase = {
    name,
    url: url.toString(),
    drop: () => withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
  };
  try {
    await runMigrations(database.url);
  } catch (error) {
    await database.drop();
    throw error;
  }
  return database;
}

/** Runs SQL on a benchmark database through a short-lived connection. */
export async function runSql(url: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function withAdmin(work: (admin: Client) => Promise<unknown>): Promise<void> {
  const admin = new Client({ connectionString: ADMIN_DATABASE_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await work(admin);
  } finally {
    await admin.end();
  }
}
