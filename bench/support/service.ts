import 'reflect-metadata';

import { randomBytes } from 'node:crypto';

import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import IORedis from 'ioredis';

import { buildApp } from '../../src/app';
import { resolveKeys } from '../../src/config/keys';
import { loadSettings } from '../../src/config/settings';
import { AuthService } from '../../src/identity/auth.service';
import { UsersService } from '../../src/identity/users.service';
import { baseUrl, RunningServer } from './server';

export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The service's Nest application, initialised but not listening, and how to stop it. */
export interface ServiceApp {
  app: NestFastifyApplication;
  close(): Promise<void>;
}

/**
 * Builds the whole service in this process the way src/main.ts builds it: Nest with Fastify, the
 * global validation pipe, pino request logging (at level silent) and the TypeORM pool. It runs in
 * the `api` role, so no job worker competes with the benchmark, and with fresh random keys and its
 * own BullMQ key prefix, which `close()` deletes. The application is initialised, so services can
 * be taken with `app.get()`, but it does not listen.
 */
export async function createServiceApp(databaseUrl: string): Promise<ServiceApp> {
  const queuePrefix = `bench_${randomBytes(5).toString('hex')}`;
  const settings = loadSettings({
    DATABASE_URL: databaseUrl,
    REDIS_URL: BENCH_REDIS_URL,
    QUEUE_PREFIX: queuePrefix,
    PROCESS_ROLE: 'api',
    LOG_LEVEL: 'silent',
    SEED_DEMO: 'false',
    MFA_REQUIRED_ROLES: '',
    FINGERPRINT_KEY: randomKey(),
    SECRETS_KEY: randomKey(),
    EVIDENCE_SIGNING_KEY: randomKey(),
  });
  const app = await buildApp({ settings, keys: resolveKeys(settings), databaseUrl });
  await app.init();
  return {
    app,
    close: async () => {
      await app.close();
      await deleteRedisKeys(`${queuePrefix}:*`);
    },
  };
}

/** Starts the service from createServiceApp() listening on a free port of 127.0.0.1. */
export async function startService(databaseUrl: string): Promise<RunningServer> {
  const service = await createServiceApp(databaseUrl);
  try {
    await service.app.listen({ port: 0, host: '127.0.0.1' });
  } catch (error) {
    await service.close();
    throw error;
  }
  return {
    url: baseUrl(service.app.getHttpServer().address()),
    headers: { authorization: `Bearer ${await signInAdmin(service.app)}` },
    close: () => service.close(),
  };
}

/**
 * Creates a platform admin and signs it in, because every API route needs a session. The session
 * lookup is part of what each measured request costs.
 */
async function signInAdmin(app: NestFastifyApplication): Promise<string> {
  const email = `bench-${randomBytes(4).toString('hex')}@bench.example`;
  const password = randomBytes(18).toString('base64url');
  await app
    .get(UsersService)
    .create({ email, name: 'Benchmark admin', password, roles: ['platform-admin'] });
  return (await app.get(AuthService).signIn(email, password)).accessToken;
}

function randomKey(): string {
  return randomBytes(32).toString('base64');
}

async function deleteRedisKeys(pattern: string): Promise<void> {
  const redis = new IORedis(BENCH_REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
