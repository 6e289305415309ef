import { randomBytes } from 'node:crypto';

import { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';

import { buildApp } from '../../src/app';
import { ManualClock } from '../../src/common/clock';
import { resolveKeys } from '../../src/config/keys';
import { loadSettings } from '../../src/config/settings';
import { createTestDatabase } from './database';
import { TEST_REDIS_URL } from './env';

export interface TestApp {
  app: NestFastifyApplication;
  clock: ManualClock;
  databaseUrl: string;
  queuePrefix: string;
  request(options: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  databaseUrl?: string;
  env?: Record<string, string>;
  clock?: ManualClock;
}

/** Random base64 keys so suites exercise real cryptography without touching DATA_DIR. */
export function testKeyEnv(): Record<string, string> {
  return {
    FINGERPRINT_KEY: randomBytes(32).toString('base64'),
    SECRETS_KEY: randomBytes(32).toString('base64'),
    EVIDENCE_SIGNING_KEY: randomBytes(32).toString('base64'),
  };
}

/**
 * Starts the whole application on its own cloned database and its own BullMQ key prefix, with a
 * manual clock. Requests go through Fastify's inject, so routing, pipes and filters all run.
 */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const databaseUrl = options.databaseUrl ?? (await createTestDatabase());
  const queuePrefix = `t${randomBytes(5).toString('hex')}`;
  const settings = loadSettings({
    DATABASE_URL: databaseUrl,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: queuePrefix,
    LOG_LEVEL: 'silent',
    SEED_DEMO: 'false',
    ...testKeyEnv(),
    ...options.env,
  });
  const clock = options.clock ?? new ManualClock();
  const app = await buildApp({ settings, keys: resolveKeys(settings), databaseUrl }, clock);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();

  return {
    app,
    clock,
    databaseUrl,
    queuePrefix,
    request: (injectOptions) => app.inject(injectOptions),
    close: () => app.close(),
  };
}
