/** Connection to the machine's PostgreSQL used to create per-suite databases (trust auth on 127.0.0.1). */
export const ADMIN_DATABASE_URL =
  process.env.TEST_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Names every database of one test run, so teardown drops exactly those. */
export function runId(): string {
  const id = process.env.GOV_TEST_RUN_ID;
  if (!id)
    throw new Error('GOV_TEST_RUN_ID is unset; run the suite through jest so global-setup runs');
  return id;
}

export function templateDatabase(): string {
  return `gov_tpl_${runId()}`;
}

export function databaseUrl(database: string): string {
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${database}`;
  return url.toString();
}
