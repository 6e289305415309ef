import { randomBytes } from 'node:crypto';

import { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { DataSource } from 'typeorm';

import { buildApp } from '../../src/app';
import { ManualClock } from '../../src/common/clock';
import { resolveKeys } from '../../src/config/keys';
import { loadSettings } from '../../src/config/settings';
import { AuthService, tokenHash } from '../../src/identity/auth.service';
import { Role, ROLES } from '../../src/identity/permissions';
import { UsersService } from '../../src/identity/users.service';
import { createTestDatabase } from './database';
import { TEST_REDIS_URL } from './env';

export const TEST_PASSWORD = 'test-password-1234';

/** A signed-in test user holding exactly one role. */
export interface TestUser {
  id: string;
  email: string;
  token: string;
}

export interface TestApp {
  app: NestFastifyApplication;
  clock: ManualClock;
  databaseUrl: string;
  queuePrefix: string;
  /** One signed-in user per role. */
  users: Record<Role, TestUser>;
  /** Sends a request as the platform admin, as another role's user, or with no credentials. */
  request(options: InjectOptions, as?: Role | 'anonymous'): Promise<LightMyRequestResponse>;
  /** Creates another signed-in user, for cases that need several holders of one role. */
  createUser(roles: Role[], extra?: { managerId?: string; name?: string }): Promise<TestUser>;
  /** Sends a request as a user made by `createUser`. */
  requestAs(user: TestUser, options: InjectOptions): Promise<LightMyRequestResponse>;
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
 * manual clock and one signed-in user per role. Requests go through Fastify's inject, so routing,
 * guards, pipes and filters all run.
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
    // Suites that test MFA or rate limits set these themselves.
    MFA_REQUIRED_ROLES: '',
    AUTH_RATE_LIMIT_PER_MINUTE: '100000',
    ...testKeyEnv(),
    ...options.env,
  });
  const clock = options.clock ?? new ManualClock();
  const app = await buildApp({ settings, keys: resolveKeys(settings), databaseUrl }, clock);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();

  const users = await createOnePerRole(app, queuePrefix);
  const auth = app.get(AuthService);
  const expiries = new Map<Role, number>();
  const tokenExpiries = new Map<string, number>();
  // Tests move the clock by months, so a token is renewed whenever the clock passed its expiry.
  const tokenFor = async (role: Role): Promise<string> => {
    const expiry = expiries.get(role);
    const now = clock.now().getTime();
    if (expiry === undefined || now >= expiry || now < expiry - 86_400_000) {
      const tokens = await auth.signIn(users[role].email, TEST_PASSWORD);
      // Harness users act as if they passed the second factor; MFA suites sign in their own users.
      await app
        .get(DataSource)
        .query(`UPDATE sessions SET mfa_verified = true WHERE access_token_hash = $1`, [
          tokenHash(tokens.accessToken),
        ]);
      users[role].token = tokens.accessToken;
      expiries.set(role, tokens.accessExpiresAt.getTime());
    }
    return users[role].token;
  };

  return {
    app,
    clock,
    databaseUrl,
    queuePrefix,
    users,
    request: async (injectOptions, as = 'platform-admin') => {
      const headers = { ...(injectOptions.headers ?? {}) } as Record<string, string>;
      if (as !== 'anonymous' && headers.authorization === undefined) {
        headers.authorization = `Bearer ${await tokenFor(as)}`;
      }
      return app.inject({ ...injectOptions, headers });
    },
    createUser: async (roles, extra = {}) => {
      const email = `${roles.join('-')}.${randomBytes(4).toString('hex')}.${queuePrefix}@test.example`;
      const user = await app.get(UsersService).create({
        email,
        name: extra.name ?? `Test ${roles.join(' ')}`,
        password: TEST_PASSWORD,
        roles,
        managerId: extra.managerId,
      });
      return { id: user.id, email, token: '' };
    },
    requestAs: async (user, injectOptions) => {
      if (
        !user.token ||
        !tokenExpiries.has(user.id) ||
        clock.now().getTime() >= (tokenExpiries.get(user.id) ?? 0)
      ) {
        const tokens = await auth.signIn(user.email, TEST_PASSWORD);
        await app
          .get(DataSource)
          .query(`UPDATE sessions SET mfa_verified = true WHERE access_token_hash = $1`, [
            tokenHash(tokens.accessToken),
          ]);
        user.token = tokens.accessToken;
        tokenExpiries.set(user.id, tokens.accessExpiresAt.getTime());
      }
      const headers = {
        ...((injectOptions.headers ?? {}) as Record<string, string>),
        authorization: `Bearer ${user.token}`,
      };
      return app.inject({ ...injectOptions, headers });
    },
    close: () => app.close(),
  };
}

async function createOnePerRole(
  app: NestFastifyApplication,
  tag: string,
): Promise<Record<Role, TestUser>> {
  const usersService = app.get(UsersService);
  const users = {} as Record<Role, TestUser>;
  for (const role of ROLES) {
    const email = `${role}.${tag}@test.example`;
    const user = await usersService.create({
      email,
      name: `Test ${role}`,
      password: TEST_PASSWORD,
      roles: [role],
    });
    users[role] = { id: user.id, email, token: '' };
  }
  return users;
}
