import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';

import { AppModule } from '../src/app.module';
import { ManualClock } from '../src/common/clock';
import { resolveKeys } from '../src/config/keys';
import { loadSettings } from '../src/config/settings';
import { PERMISSIONS, Role, ROLES } from '../src/identity/permissions';
import { startTestApp, TEST_PASSWORD, TestApp, testKeyEnv } from './support/app';
import { createTestDatabase, superuserQuery } from './support/database';
import { TEST_REDIS_URL } from './support/env';
import { concretePath, listRoutes, undeclaredRoutes } from './support/routes';

describe('authorization', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });

  afterAll(async () => {
    await t.close();
  });

  it('declares an access rule on every route', () => {
    const routes = listRoutes(t.app);
    expect(routes.length).toBeGreaterThan(30);
    expect(undeclaredRoutes(routes)).toEqual([]);
  });

  it('allows, forbids or requires sign-in exactly as the table says', async () => {
    const mismatches: string[] = [];
    // Signing out would end the walking user's session; it has its own test below.
    const routes = listRoutes(t.app).filter((route) => route.path !== '/api/auth/sign-out');

    for (const route of routes) {
      const url = concretePath(route.path);
      const method = route.method as 'GET' | 'POST' | 'PATCH' | 'DELETE';
      const payload = method === 'GET' || method === 'DELETE' ? undefined : {};
      const rule = route.rule!;

      const anonymous = await t.request({ method, url, payload }, 'anonymous');
      const anonymousExpected = 'public' in rule ? 'allowed' : 401;
      const anonymousActual = [401, 403].includes(anonymous.statusCode)
        ? anonymous.statusCode
        : 'allowed';
      if (anonymousActual !== anonymousExpected) {
        mismatches.push(`${method} ${route.path} anonymous: ${anonymous.statusCode}`);
      }

      for (const role of ROLES) {
        const response = await t.request({ method, url, payload }, role);
        const allowed =
          'public' in rule || (PERMISSIONS[rule.permission] as readonly Role[]).includes(role);
        const actual = [401, 403].includes(response.statusCode) ? response.statusCode : 'allowed';
        if (actual !== (allowed ? 'allowed' : 403)) {
          mismatches.push(
            `${method} ${route.path} as ${role}: ${response.statusCode} ${response.body.slice(0, 80)}`,
          );
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('closes and reports a route added without a declaration', async () => {
    @Controller('undeclared')
    class UndeclaredController {
      @Get()
      read(): string {
        return 'open';
      }
    }
    @Module({
      imports: [AppModule.forRoot(runtimeFor(t.databaseUrl), new ManualClock())],
      controllers: [UndeclaredController],
    })
    class ExtendedModule {}

    const app = await NestFactory.create<NestFastifyApplication>(
      ExtendedModule,
      new FastifyAdapter(),
      {
        logger: false,
      },
    );
    app.setGlobalPrefix('api', { exclude: ['health/live', 'health/ready'] });
    await app.init();
    try {
      expect(undeclaredRoutes(listRoutes(app))).toEqual(['GET /api/undeclared']);
      const response = await app.inject({
        method: 'GET',
        url: '/api/undeclared',
        headers: { authorization: `Bearer ${t.users['platform-admin'].token}` },
      });
      expect(response.statusCode).toBe(403);
      expect(response.json().code).toBe('AUTH.ROUTE_UNDECLARED');
    } finally {
      await app.close();
    }
  });

  it('lets an owner change only systems they own', async () => {
    const provider = (
      await t.request({ method: 'POST', url: '/api/providers', payload: { name: 'Ownership' } })
    ).json();
    const base = {
      providerId: provider.id,
      product: 'Tool',
      category: 'other',
      criticality: 'low',
    };
    const own = (
      await t.request({
        method: 'POST',
        url: '/api/systems',
        payload: { ...base, name: 'Owned', ownerId: t.users['system-owner'].id },
      })
    ).json();
    const other = (
      await t.request({
        method: 'POST',
        url: '/api/systems',
        payload: { ...base, name: 'Not owned' },
      })
    ).json();

    const allowed = await t.request(
      {
        method: 'PATCH',
        url: `/api/systems/${own.id}`,
        payload: { productVersion: '2.0', version: 1 },
      },
      'system-owner',
    );
    expect(allowed.statusCode).toBe(200);

    const denied = await t.request(
      {
        method: 'PATCH',
        url: `/api/systems/${other.id}`,
        payload: { productVersion: '2.0', version: 1 },
      },
      'system-owner',
    );
    expect(denied.statusCode).toBe(403);
    expect(denied.json().code).toBe('AUTH.NOT_OWNER');

    const handOver = await t.request(
      {
        method: 'PATCH',
        url: `/api/systems/${own.id}`,
        payload: { ownerId: t.users.requester.id, version: 2 },
      },
      'system-owner',
    );
    expect(handOver.statusCode).toBe(403);

    const auditorWrite = await t.request(
      { method: 'POST', url: '/api/providers', payload: { name: 'Auditor provider' } },
      'auditor',
    );
    expect(auditorWrite.statusCode).toBe(403);
  });
});

function runtimeFor(databaseUrl: string) {
  const settings = loadSettings({
    DATABASE_URL: databaseUrl,
    REDIS_URL: TEST_REDIS_URL,
    LOG_LEVEL: 'silent',
    SEED_DEMO: 'false',
    PROCESS_ROLE: 'api',
    ...testKeyEnv(),
  });
  return { settings, keys: resolveKeys(settings), databaseUrl };
}

describe('sign-in and sessions', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });

  afterAll(async () => {
    await t.close();
  });

  function signIn(email: string, password: string) {
    return t.request(
      { method: 'POST', url: '/api/auth/sign-in', payload: { email, password } },
      'anonymous',
    );
  }

  async function createUser(email: string, roles: Role[] = ['requester']) {
    const response = await t.request({
      method: 'POST',
      url: '/api/users',
      payload: { email, name: email, password: TEST_PASSWORD, roles },
    });
    expect(response.statusCode).toBe(201);
    return response.json();
  }

  it('signs in, reads itself and signs out', async () => {
    await createUser('casey@test.example');
    const response = await signIn('Casey@Test.example', TEST_PASSWORD);
    expect(response.statusCode).toBe(200);
    const { accessToken } = response.json();
    const authorization = `Bearer ${accessToken}`;

    const me = await t.request({ method: 'GET', url: '/api/auth/me', headers: { authorization } });
    expect(me.json()).toMatchObject({ email: 'casey@test.example', roles: ['requester'] });

    const out = await t.request({
      method: 'POST',
      url: '/api/auth/sign-out',
      headers: { authorization },
    });
    expect(out.statusCode).toBe(204);
    const after = await t.request({
      method: 'GET',
      url: '/api/auth/me',
      headers: { authorization },
    });
    expect(after.statusCode).toBe(401);
  });

  it('rejects wrong passwords, then locks with back-off', async () => {
    await createUser('locked@test.example');
    const unknown = await signIn('nobody@test.example', TEST_PASSWORD);
    const wrong = await signIn('locked@test.example', 'wrong-password-123');
    expect(unknown.statusCode).toBe(401);
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().message).toBe(unknown.json().message);

    for (let attempt = 2; attempt <= 5; attempt += 1) {
      await signIn('locked@test.example', 'wrong-password-123');
    }
    const locked = await signIn('locked@test.example', TEST_PASSWORD);
    expect(locked.statusCode).toBe(429);
    expect(locked.json().code).toBe('AUTH.TOO_MANY_ATTEMPTS');

    t.clock.advance(61_000);
    const unlocked = await signIn('locked@test.example', TEST_PASSWORD);
    expect(unlocked.statusCode).toBe(200);
  });

  it('expires access tokens and rotates refresh tokens', async () => {
    await createUser('refresh@test.example');
    const first = (await signIn('refresh@test.example', TEST_PASSWORD)).json();

    t.clock.advance(16 * 60_000);
    const expired = await t.request({
      method: 'GET',
      url: '/api/auth/me',
      headers: { authorization: `Bearer ${first.accessToken}` },
    });
    expect(expired.statusCode).toBe(401);

    const refreshed = await t.request(
      { method: 'POST', url: '/api/auth/refresh', payload: { refreshToken: first.refreshToken } },
      'anonymous',
    );
    expect(refreshed.statusCode).toBe(200);
    const me = await t.request({
      method: 'GET',
      url: '/api/auth/me',
      headers: { authorization: `Bearer ${refreshed.json().accessToken}` },
    });
    expect(me.statusCode).toBe(200);

    const reused = await t.request(
      { method: 'POST', url: '/api/auth/refresh', payload: { refreshToken: first.refreshToken } },
      'anonymous',
    );
    expect(reused.statusCode).toBe(401);
  });

  it('ends sessions and sign-in of a deactivated user, keeping history', async () => {
    const user = await createUser('leaver@test.example');
    const { accessToken } = (await signIn('leaver@test.example', TEST_PASSWORD)).json();
    const authorization = `Bearer ${accessToken}`;
    expect(
      (await t.request({ method: 'GET', url: '/api/auth/me', headers: { authorization } }))
        .statusCode,
    ).toBe(200);

    const deactivated = await t.request({
      method: 'POST',
      url: `/api/users/${user.id}/deactivate`,
      payload: { version: 1, reason: 'Left the company' },
    });
    expect(deactivated.statusCode).toBe(200);
    expect(deactivated.json()).toMatchObject({ active: false, email: 'leaver@test.example' });

    expect(
      (await t.request({ method: 'GET', url: '/api/auth/me', headers: { authorization } }))
        .statusCode,
    ).toBe(401);
    const again = await signIn('leaver@test.example', TEST_PASSWORD);
    expect(again.statusCode).toBe(403);
    expect(again.json().code).toBe('AUTH.USER_INACTIVE');

    const events = await superuserQuery<{ action: string }>(
      t.databaseUrl,
      `SELECT action FROM audit_events WHERE entity_id = $1 ORDER BY seq`,
      [user.id],
    );
    expect(events.map((event) => event.action)).toEqual(['user.created', 'user.deactivated']);
  });

  it('keeps the last platform admin', async () => {
    const admin = t.users['platform-admin'];
    const self = (await t.request({ method: 'GET', url: `/api/users/${admin.id}` })).json();
    const demote = await t.request({
      method: 'PATCH',
      url: `/api/users/${admin.id}`,
      payload: { version: self.version, roles: ['auditor'] },
    });
    expect(demote.statusCode).toBe(409);
    expect(demote.json().code).toBe('USER.LAST_ADMIN');
    const deactivate = await t.request({
      method: 'POST',
      url: `/api/users/${admin.id}/deactivate`,
      payload: { version: self.version, reason: 'Leaving' },
    });
    expect(deactivate.statusCode).toBe(409);
  });

  it('loads users and managers from a directory CSV', async () => {
    const csv = [
      'id,name,email,manager,active',
      'E1,Mia Manager,mia@corp.example,,true',
      'E2,Ulf User,ulf@corp.example,E1,true',
      'E3,Gone Person,gone@corp.example,E1,false',
    ].join('\n');
    const response = await t.request({
      method: 'POST',
      url: '/api/users/import',
      headers: { 'content-type': 'text/csv' },
      payload: csv,
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({ rows: 3, created: 3, updated: 0, deactivated: 1 });

    const ulf = (await t.request({ method: 'GET', url: '/api/users?q=ulf@corp' })).json().items[0];
    const mia = (await t.request({ method: 'GET', url: '/api/users?q=mia@corp' })).json().items[0];
    expect(ulf.managerId).toBe(mia.id);

    const before = (await t.request({ method: 'GET', url: '/api/users?limit=200' })).json().items
      .length;
    const bad = await t.request({
      method: 'POST',
      url: '/api/users/import',
      headers: { 'content-type': 'text/csv' },
      payload:
        'id,name,email,manager,active\nE9,New Person,new@corp.example,E404,true\n' +
        'E10,,not-an-email,,maybe\nE11,Self,self@corp.example,E11,true\n',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().details.fields.map((f: { field: string }) => f.field)).toEqual([
      'line 3',
      'line 4',
    ]);
    const after = (await t.request({ method: 'GET', url: '/api/users?limit=200' })).json().items
      .length;
    expect(after).toBe(before);
  });
});

describe('audit trail', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ databaseUrl: await createTestDatabase() });
  });

  afterAll(async () => {
    await t.close();
  });

  it('rolls back a change whose audit write fails', async () => {
    await superuserQuery(
      t.databaseUrl,
      `CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN IF NEW.action = 'provider.created' THEN RAISE EXCEPTION 'forced audit failure'; END IF; RETURN NEW; END $$`,
    );
    await superuserQuery(
      t.databaseUrl,
      `CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION fail_audit()`,
    );
    try {
      const response = await t.request({
        method: 'POST',
        url: '/api/providers',
        payload: { name: 'Never stored' },
      });
      expect(response.statusCode).toBe(500);
      const rows = await superuserQuery(
        t.databaseUrl,
        `SELECT 1 FROM providers WHERE name = 'Never stored'`,
      );
      expect(rows).toHaveLength(0);
    } finally {
      await superuserQuery(t.databaseUrl, `DROP TRIGGER fail_audit ON audit_events`);
    }
  });

  it('refuses updates and reports a tampered event exactly', async () => {
    for (const name of ['Chain A', 'Chain B', 'Chain C']) {
      await t.request({ method: 'POST', url: '/api/providers', payload: { name } });
    }
    const intact = await t.request({ method: 'GET', url: '/api/audit/verify' });
    expect(intact.json()).toMatchObject({ valid: true, firstBrokenSeq: null });

    await expect(
      superuserQuery(t.databaseUrl, `UPDATE audit_events SET actor = 'someone' WHERE seq = 1`),
    ).rejects.toThrow(/append-only/);

    const [target] = await superuserQuery<{ seq: string }>(
      t.databaseUrl,
      `SELECT seq::text FROM audit_events WHERE action = 'provider.created' AND after->>'name' = 'Chain B'`,
    );
    await superuserQuery(
      t.databaseUrl,
      `ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
       UPDATE audit_events SET after = jsonb_set(after, '{name}', '"Chain X"') WHERE seq = ${Number(target.seq)};
       ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;`,
    );
    const broken = await t.request({ method: 'GET', url: '/api/audit/verify' });
    expect(broken.json()).toMatchObject({ valid: false, firstBrokenSeq: target.seq });
  });

  it('records who read the trail', async () => {
    const read = await t.request(
      { method: 'GET', url: '/api/audit?entityType=provider&limit=5' },
      'auditor',
    );
    expect(read.statusCode).toBe(200);
    const [event] = await superuserQuery<{ actor: string; channel: string }>(
      t.databaseUrl,
      `SELECT actor, channel FROM audit_events WHERE action = 'audit.read' ORDER BY seq DESC LIMIT 1`,
    );
    expect(event).toEqual({ actor: t.users.auditor.id, channel: 'session' });
  });
});
