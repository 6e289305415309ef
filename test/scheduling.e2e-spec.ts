import { readFileSync } from 'node:fs';

import { bundledKevFile } from '../src/common/project-root';
import { startTestApp } from './support/app';
import { createTestDatabase, superuserQuery } from './support/database';
import { eventually, HttpFixture } from './support/http-fixture';
import { OwnRedis } from './support/redis-server';
import { freePort } from './support/service-process';

const BUNDLED = readFileSync(bundledKevFile(), 'utf8');

async function succeededImports(databaseUrl: string): Promise<number> {
  const [row] = await superuserQuery<{ count: string }>(
    databaseUrl,
    `SELECT count(*) FROM kev_imports WHERE status = 'succeeded'`,
  );
  return Number(row.count);
}

describe('scheduled work', () => {
  const fixture = new HttpFixture();

  beforeAll(async () => {
    await fixture.start();
    fixture.serve('/kev.json', BUNDLED);
  });

  afterAll(async () => {
    await fixture.stop();
  });

  it('resumes when Redis comes back after start-up', async () => {
    const redis = new OwnRedis(await freePort());
    const databaseUrl = await createTestDatabase();
    const t = await startTestApp({
      databaseUrl,
      env: {
        REDIS_URL: redis.url,
        KEV_URL: fixture.url('/kev.json'),
        KEV_REFRESH_CRON: '*/1 * * * * *',
      },
    });
    try {
      const health = await t.request({ method: 'GET', url: '/health/ready' });
      expect(health.json()).toMatchObject({
        status: 'degraded',
        checks: { redis: { state: 'down' } },
      });
      expect(await succeededImports(databaseUrl)).toBe(0);

      await redis.start();
      await eventually(
        async () => ((await succeededImports(databaseUrl)) > 0 ? true : undefined),
        30_000,
      );
      const ready = await t.request({ method: 'GET', url: '/health/ready' });
      expect(ready.json().status).toBe('ready');
    } finally {
      await t.close();
      await redis.stop();
    }
  });

  it('lets a running job finish on shutdown', async () => {
    const databaseUrl = await createTestDatabase();
    let release: () => void = () => undefined;
    const responseReleased = new Promise<void>((resolve) => (release = resolve));
    fixture.route('/slow.json', async (response) => {
      await responseReleased;
      response.writeHead(200, { 'content-type': 'application/json' }).end(BUNDLED);
    });
    const t = await startTestApp({
      databaseUrl,
      env: { KEV_URL: fixture.url('/slow.json'), KEV_REFRESH_CRON: '*/1 * * * * *' },
    });

    await eventually(async () => (fixture.requests.includes('/slow.json') ? true : undefined));
    const closing = t.close();
    setTimeout(release, 500);
    await closing;

    expect(await succeededImports(databaseUrl)).toBe(1);
  });

  it('shuts down while Redis is gone', async () => {
    const redis = new OwnRedis(await freePort());
    await redis.start();
    const t = await startTestApp({
      env: {
        REDIS_URL: redis.url,
        KEV_URL: fixture.url('/kev.json'),
        KEV_REFRESH_CRON: '0 0 1 1 *',
      },
    });
    await redis.stop();
    await expect(t.close()).resolves.toBeUndefined();
  });
});
