import { Secret, TOTP } from 'otpauth';

import { startTestApp, TEST_PASSWORD, TestApp } from './support/app';
import { superuserQuery } from './support/database';

function codeAt(secret: string, time: Date): string {
  return new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30 }).generate({
    timestamp: time.getTime(),
  });
}

describe('multi-factor sign-in', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ env: { MFA_REQUIRED_ROLES: 'platform-admin,security-approver' } });
    t.clock.set('2026-07-01T10:00:05Z');
  });

  afterAll(async () => {
    await t.close();
  });

  function signIn(email: string, code?: string) {
    return t.request(
      {
        method: 'POST',
        url: '/api/auth/sign-in',
        payload: { email, password: TEST_PASSWORD, code },
      },
      'anonymous',
    );
  }

  async function createUser(email: string, roles: string[]) {
    const created = await t.request(
      {
        method: 'POST',
        url: '/api/users',
        payload: { email, name: email, password: TEST_PASSWORD, roles },
      },
      'platform-admin',
    );
    expect(created.statusCode).toBe(201);
    return created.json();
  }

  it('limits an unenrolled privileged user to enrolment and sign-out', async () => {
    await createUser('needs-mfa@test.example', ['security-approver']);
    const session = (await signIn('needs-mfa@test.example')).json();
    const authorization = `Bearer ${session.accessToken}`;

    const read = await t.request({
      method: 'GET',
      url: '/api/systems',
      headers: { authorization },
    });
    expect(read.statusCode).toBe(403);
    expect(read.json().code).toBe('AUTH.MFA_REQUIRED');
    const me = await t.request({ method: 'GET', url: '/api/auth/me', headers: { authorization } });
    expect(me.statusCode).toBe(200);
    const enrol = await t.request({
      method: 'POST',
      url: '/api/auth/mfa/totp',
      headers: { authorization },
    });
    expect(enrol.statusCode).toBe(201);
    expect(enrol.json().otpauthUri).toMatch(/^otpauth:\/\/totp\//);
    const out = await t.request({
      method: 'POST',
      url: '/api/auth/sign-out',
      headers: { authorization },
    });
    expect(out.statusCode).toBe(204);
  });

  it('accepts each one-time code once and never an older one', async () => {
    await createUser('totp@test.example', ['platform-admin']);
    const first = (await signIn('totp@test.example')).json();
    const authorization = `Bearer ${first.accessToken}`;
    const { secret } = (
      await t.request({ method: 'POST', url: '/api/auth/mfa/totp', headers: { authorization } })
    ).json();

    const enrolmentCode = codeAt(secret, t.clock.now());
    const confirmed = await t.request({
      method: 'POST',
      url: '/api/auth/mfa/totp/confirm',
      headers: { authorization },
      payload: { code: enrolmentCode },
    });
    expect(confirmed.statusCode).toBe(200);
    expect(confirmed.json().recoveryCodes).toHaveLength(10);
    // The enrolling session passed the second factor.
    expect(
      (await t.request({ method: 'GET', url: '/api/systems', headers: { authorization } }))
        .statusCode,
    ).toBe(200);

    const [stored] = await superuserQuery<{ seed: Buffer }>(
      t.databaseUrl,
      `SELECT totp_seed_ciphertext AS seed FROM users WHERE email = 'totp@test.example'`,
    );
    expect(stored.seed.toString('latin1')).not.toContain(secret);

    // (c) the code that confirmed enrolment does not sign in.
    expect((await signIn('totp@test.example', enrolmentCode)).json().code).toBe(
      'AUTH.MFA_CODE_INVALID',
    );
    expect((await signIn('totp@test.example')).json().code).toBe('AUTH.MFA_CODE_REQUIRED');

    t.clock.advance(30_000);
    const nextCode = codeAt(secret, t.clock.now());
    expect((await signIn('totp@test.example', nextCode)).statusCode).toBe(200);
    // (a) the same code again, within the same time step.
    expect((await signIn('totp@test.example', nextCode)).statusCode).toBe(401);

    t.clock.advance(30_000);
    const newer = codeAt(secret, t.clock.now());
    expect((await signIn('totp@test.example', newer)).statusCode).toBe(200);
    // (b) the previous step's code is still inside the drift window but older than the last accepted.
    expect((await signIn('totp@test.example', nextCode)).statusCode).toBe(401);

    // (d) ten parallel sign-ins with one recovery code: exactly one succeeds.
    const [recovery] = confirmed.json().recoveryCodes as string[];
    const [{ hashed }] = await superuserQuery<{ hashed: number }>(
      t.databaseUrl,
      `SELECT count(*)::int AS hashed FROM recovery_codes WHERE encode(code_hash, 'escape') LIKE '%' || $1 || '%'`,
      [recovery],
    );
    expect(hashed).toBe(0);
    const attempts = await Promise.all(
      Array.from({ length: 10 }, () => signIn('totp@test.example', recovery)),
    );
    expect(attempts.filter((response) => response.statusCode === 200)).toHaveLength(1);
  });
});

describe('personal API tokens', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ env: { MFA_REQUIRED_ROLES: 'platform-admin' } });
  });

  afterAll(async () => {
    await t.close();
  });

  async function createToken(
    as: 'auditor' | 'platform-admin',
    scopes: string[],
    expiresInDays = 30,
  ) {
    const response = await t.request(
      {
        method: 'POST',
        url: '/api/auth/tokens',
        payload: { name: `${as} token`, scopes, expiresInDays },
      },
      as,
    );
    expect(response.statusCode).toBe(201);
    return response.json();
  }

  it('token scopes beyond roles rejected', async () => {
    const response = await t.request(
      {
        method: 'POST',
        url: '/api/auth/tokens',
        payload: {
          name: 'too wide',
          scopes: ['catalog.read', 'approvals.decide'],
          expiresInDays: 30,
        },
      },
      'auditor',
    );
    expect(response.statusCode).toBe(400);
    expect(response.json().details.fields[0]).toMatchObject({ field: 'scopes' });
    expect(response.json().details.fields[0].problems[0]).toContain('approvals.decide');
  });

  it('reads within its scopes, is audited with the token, and ends on revocation', async () => {
    const created = await createToken('auditor', ['catalog.read', 'audit.read']);
    expect(created.token).toMatch(/^gvt_/);
    const authorization = `Bearer ${created.token}`;

    expect(
      (await t.request({ method: 'GET', url: '/api/systems', headers: { authorization } }))
        .statusCode,
    ).toBe(200);
    const outOfScope = await t.request({
      method: 'GET',
      url: '/api/findings',
      headers: { authorization },
    });
    expect(outOfScope.statusCode).toBe(403);
    expect(outOfScope.json().code).toBe('AUTH.TOKEN_SCOPE');

    await t.request({ method: 'GET', url: '/api/audit?limit=1', headers: { authorization } });
    const [event] = await superuserQuery<{ actor: string; channel: string }>(
      t.databaseUrl,
      `SELECT actor, channel FROM audit_events WHERE action = 'audit.read' ORDER BY seq DESC LIMIT 1`,
    );
    expect(event).toEqual({ actor: t.users.auditor.id, channel: `api-token:${created.id}` });

    const listed = await t.request({ method: 'GET', url: '/api/auth/tokens' }, 'auditor');
    expect(listed.json()[0].lastUsedAt).not.toBeNull();
    expect(JSON.stringify(listed.json())).not.toContain(created.token);

    const revoked = await t.request(
      { method: 'DELETE', url: `/api/auth/tokens/${created.id}` },
      'auditor',
    );
    expect(revoked.statusCode).toBe(204);
    expect(
      (await t.request({ method: 'GET', url: '/api/systems', headers: { authorization } }))
        .statusCode,
    ).toBe(401);
  });

  it('expires on time and never reaches MFA-gated routes', async () => {
    const created = await createToken('platform-admin', ['catalog.read', 'catalog.write'], 1);
    const authorization = `Bearer ${created.token}`;

    const write = await t.request({
      method: 'POST',
      url: '/api/providers',
      headers: { authorization },
      payload: { name: 'Through a token' },
    });
    expect(write.statusCode).toBe(403);
    expect(write.json().code).toBe('AUTH.MFA_REQUIRED');
    expect(
      (await t.request({ method: 'GET', url: '/api/systems', headers: { authorization } }))
        .statusCode,
    ).toBe(200);

    t.clock.advance(86_400_000 + 1000);
    expect(
      (await t.request({ method: 'GET', url: '/api/systems', headers: { authorization } }))
        .statusCode,
    ).toBe(401);
  });
});

describe('hardening', () => {
  it('sets security headers and answers CORS only for listed origins', async () => {
    const t = await startTestApp({ env: { CORS_ORIGINS: 'https://console.example.com' } });
    try {
      const response = await t.request({ method: 'GET', url: '/health/live' }, 'anonymous');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['content-security-policy']).toContain("default-src 'self'");

      const allowed = await t.request(
        { method: 'GET', url: '/health/live', headers: { origin: 'https://console.example.com' } },
        'anonymous',
      );
      expect(allowed.headers['access-control-allow-origin']).toBe('https://console.example.com');
      const other = await t.request(
        { method: 'GET', url: '/health/live', headers: { origin: 'https://evil.example' } },
        'anonymous',
      );
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await t.close();
    }
  });

  it('limits sign-in attempts across two instances', async () => {
    const env = { AUTH_RATE_LIMIT_PER_MINUTE: '5' };
    const first = await startTestApp({ env });
    const second = await startTestApp({
      databaseUrl: first.databaseUrl,
      env: { ...env, QUEUE_PREFIX: first.queuePrefix },
    });
    try {
      const attempt = (app: TestApp) =>
        app.request(
          {
            method: 'POST',
            url: '/api/auth/sign-in',
            payload: { email: 'nobody@test.example', password: 'x' },
          },
          'anonymous',
        );
      const statuses: number[] = [];
      for (const app of [first, second, first, second, first, second]) {
        statuses.push((await attempt(app)).statusCode);
      }
      expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
      expect(statuses[5]).toBe(429);
      const limited = await attempt(first);
      expect(limited.json().code).toBe('REQUEST.RATE_LIMITED');
    } finally {
      await second.close();
      await first.close();
    }
  });
});
