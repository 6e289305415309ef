import type { LightMyRequestResponse } from 'fastify';

import { ConfigurationError, loadSettings } from '../src/config/settings';
import { OidcService } from '../src/identity/oidc.service';
import { startTestApp, TestApp, testKeyEnv } from './support/app';
import { createTestDatabase, superuserQuery } from './support/database';
import { authorizeInBrowser, ProviderAccount, TestProvider } from './support/oidc-provider';
import { freePort, ServiceProcess } from './support/service-process';

const CLIENT_ID = 'governance';
const CLIENT_SECRET = 'oidc-client-secret-7c1d9e';
const OTHER_CLIENT_ID = 'other-app';
const OTHER_CLIENT_SECRET = 'other-client-secret-52aa01';
const REDIRECT_URI = 'http://127.0.0.1:3999/api/auth/oidc/callback';

describe('OpenID Connect sign-in', () => {
  let provider: TestProvider;
  let t: TestApp;

  beforeAll(async () => {
    provider = await TestProvider.start([
      { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [REDIRECT_URI] },
      {
        client_id: OTHER_CLIENT_ID,
        client_secret: OTHER_CLIENT_SECRET,
        redirect_uris: [REDIRECT_URI],
      },
    ]);
    t = await startTestApp({
      env: {
        OIDC_ISSUER_URL: provider.issuer,
        OIDC_CLIENT_ID: CLIENT_ID,
        OIDC_CLIENT_SECRET: CLIENT_SECRET,
        OIDC_REDIRECT_URI: REDIRECT_URI,
        OIDC_SCOPES: 'openid email profile groups',
        OIDC_ROLE_MAP: 'gov-admins=platform-admin,gov-security=security-approver,gov-audit=auditor',
        MFA_REQUIRED_ROLES: 'platform-admin,security-approver',
      },
    });
  });

  afterAll(async () => {
    await t?.close();
    await provider?.stop();
  });

  interface StartedSignIn {
    authorizationUrl: string;
    cookie: string;
  }

  async function startSignIn(returnTo?: string): Promise<StartedSignIn> {
    const query = returnTo ? `?returnTo=${encodeURIComponent(returnTo)}` : '';
    const started = await t.request(
      { method: 'GET', url: `/api/auth/oidc/start${query}` },
      'anonymous',
    );
    expect(started.statusCode).toBe(302);
    const setCookie = String(started.headers['set-cookie']);
    return { authorizationUrl: String(started.headers.location), cookie: setCookie.split(';')[0] };
  }

  function callback(callbackUrl: URL, cookie: string | undefined): Promise<LightMyRequestResponse> {
    return t.request(
      {
        method: 'GET',
        url: `/api/auth/oidc/callback${callbackUrl.search}`,
        headers: cookie ? { cookie } : {},
      },
      'anonymous',
    );
  }

  /** Runs the whole flow for one provider account and returns the callback's response. */
  async function signInAs(
    account: ProviderAccount,
    returnTo?: string,
  ): Promise<{ response: LightMyRequestResponse; callbackUrl: URL; cookie: string }> {
    provider.addAccount(account);
    provider.nextLogin = account.sub;
    const started = await startSignIn(returnTo);
    const callbackUrl = await authorizeInBrowser(started.authorizationUrl, REDIRECT_URI);
    return {
      response: await callback(callbackUrl, started.cookie),
      callbackUrl,
      cookie: started.cookie,
    };
  }

  async function userCount(email: string): Promise<number> {
    const [{ count }] = await superuserQuery<{ count: number }>(
      t.databaseUrl,
      `SELECT count(*)::int AS count FROM users WHERE lower(email) = lower($1)`,
      [email],
    );
    return count;
  }

  async function sessionCount(): Promise<number> {
    const [{ count }] = await superuserQuery<{ count: number }>(
      t.databaseUrl,
      `SELECT count(*)::int AS count FROM sessions`,
    );
    return count;
  }

  const alice: ProviderAccount = {
    sub: 'alice-0001',
    email: 'alice@idp.example',
    email_verified: true,
    name: 'Alice Auditor',
    groups: ['gov-audit', 'lunch-club'],
  };

  it('redirects to the provider with PKCE, state and nonce', async () => {
    const started = await startSignIn('/systems');
    const url = new URL(started.authorizationUrl);

    expect(url.origin).toBe(provider.issuer);
    expect(url.searchParams.get('client_id')).toBe(CLIENT_ID);
    expect(url.searchParams.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(url.searchParams.get('response_type')).toBe('code');
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(url.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(started.cookie).toMatch(/^oidc_login=[A-Za-z0-9_-]{43}$/);
  });

  it('rejects a returnTo that leaves the site', async () => {
    for (const returnTo of ['//evil.example/x', 'https://evil.example', '/\\evil.example']) {
      const response = await t.request(
        {
          method: 'GET',
          url: `/api/auth/oidc/start?returnTo=${encodeURIComponent(returnTo)}`,
        },
        'anonymous',
      );
      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('REQUEST.INVALID');
    }
  });

  it('creates the user on first sign-in with mapped roles', async () => {
    const { response } = await signInAs(alice, '/systems');

    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.accessToken).toEqual(expect.any(String));
    expect(body.refreshToken).toEqual(expect.any(String));
    expect(body.returnTo).toBe('/systems');
    expect(body.user.email).toBe('alice@idp.example');
    expect(body.user.roles).toEqual(['auditor']);

    const authorization = `Bearer ${body.accessToken}`;
    const allowed = await t.request({
      method: 'GET',
      url: '/api/audit/verify',
      headers: { authorization },
    });
    expect(allowed.statusCode).toBe(200);
    const forbidden = await t.request({
      method: 'POST',
      url: '/api/systems',
      headers: { authorization },
      payload: {},
    });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json().code).toBe('AUTH.FORBIDDEN');

    const [identity] = await superuserQuery<{ user_id: string; password_hash: string | null }>(
      t.databaseUrl,
      `SELECT i.user_id, u.password_hash FROM user_identities i JOIN users u ON u.id = i.user_id
        WHERE i.issuer = $1 AND i.subject = $2`,
      [provider.issuer, alice.sub],
    );
    expect(identity.user_id).toBe(body.user.id);
    expect(identity.password_hash).toBeNull();
    const events = await superuserQuery<{ action: string }>(
      t.databaseUrl,
      `SELECT action FROM audit_events WHERE entity_id = $1 ORDER BY seq`,
      [body.user.id],
    );
    expect(events.map((event) => event.action)).toEqual([
      'user.created',
      'user.identity_linked',
      'user.roles_synced',
    ]);
  });

  it('updates roles when the groups change', async () => {
    alice.groups = ['gov-audit', 'gov-admins'];
    alice.amr = ['pwd', 'mfa'];
    const { response } = await signInAs(alice);

    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.user.roles).toEqual(['auditor', 'platform-admin']);
    expect(await userCount(alice.email)).toBe(1);

    const [event] = await superuserQuery<{
      before: { roles: string[] };
      after: { roles: string[] };
    }>(
      t.databaseUrl,
      `SELECT before, after FROM audit_events WHERE entity_id = $1 AND action = 'user.roles_synced'
        ORDER BY seq DESC LIMIT 1`,
      [body.user.id],
    );
    expect(event.before.roles).toEqual(['auditor']);
    expect(event.after.roles).toEqual(['auditor', 'platform-admin']);

    // The provider reported a second factor, so MFA-gated admin routes are open.
    const list = await t.request({
      method: 'GET',
      url: '/api/users?limit=1',
      headers: { authorization: `Bearer ${body.accessToken}` },
    });
    expect(list.statusCode).toBe(200);
  });

  it('gates a session without a second factor in amr', async () => {
    alice.amr = ['pwd'];
    const { response } = await signInAs(alice);

    expect(response.statusCode).toBe(200);
    const authorization = `Bearer ${response.json().accessToken}`;
    const list = await t.request({
      method: 'GET',
      url: '/api/users?limit=1',
      headers: { authorization },
    });
    expect(list.statusCode).toBe(403);
    expect(list.json().code).toBe('AUTH.MFA_REQUIRED');
    const me = await t.request({ method: 'GET', url: '/api/auth/me', headers: { authorization } });
    expect(me.statusCode).toBe(200);
  });

  it('rejects a replayed state', async () => {
    const bob: ProviderAccount = {
      sub: 'bob-0002',
      email: 'bob@idp.example',
      email_verified: true,
      name: 'Bob',
      groups: ['gov-audit'],
    };
    const first = await signInAs(bob);
    expect(first.response.statusCode).toBe(200);
    const sessions = await sessionCount();

    const replay = await callback(first.callbackUrl, first.cookie);

    expect(replay.statusCode).toBe(400);
    expect(replay.json().code).toBe('AUTH.OIDC_STATE_INVALID');
    expect(await sessionCount()).toBe(sessions);
  });

  it('rejects a forged state', async () => {
    const started = await startSignIn();
    const forged = new URL(REDIRECT_URI);
    forged.searchParams.set('code', 'made-up-code');
    forged.searchParams.set('state', 'made-up-state-0123456789abcdef');

    const response = await callback(forged, started.cookie);

    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('AUTH.OIDC_STATE_INVALID');
    const missing = await callback(new URL(`${REDIRECT_URI}?code=abc`), started.cookie);
    expect(missing.statusCode).toBe(400);
    expect(missing.json().code).toBe('AUTH.OIDC_STATE_INVALID');
  });

  it('rejects a callback from another browser', async () => {
    const carol: ProviderAccount = {
      sub: 'carol-0003',
      email: 'carol@idp.example',
      email_verified: true,
      name: 'Carol',
      groups: ['gov-audit'],
    };
    provider.addAccount(carol);
    provider.nextLogin = carol.sub;
    const started = await startSignIn();
    const callbackUrl = await authorizeInBrowser(started.authorizationUrl, REDIRECT_URI);

    const withoutCookie = await callback(callbackUrl, undefined);

    expect(withoutCookie.statusCode).toBe(400);
    expect(withoutCookie.json().code).toBe('AUTH.OIDC_STATE_MISMATCH');
    expect(await userCount(carol.email)).toBe(0);
  });

  it('rejects a code issued to another client', async () => {
    const dave: ProviderAccount = {
      sub: 'dave-0004',
      email: 'dave@idp.example',
      email_verified: true,
      name: 'Dave',
      groups: ['gov-audit'],
    };
    provider.addAccount(dave);
    provider.nextLogin = dave.sub;
    const started = await startSignIn();
    const otherClientUrl = new URL(started.authorizationUrl);
    otherClientUrl.searchParams.set('client_id', OTHER_CLIENT_ID);
    const callbackUrl = await authorizeInBrowser(otherClientUrl.href, REDIRECT_URI);
    const sessions = await sessionCount();

    const response = await callback(callbackUrl, started.cookie);

    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('AUTH.OIDC_CODE_REJECTED');
    expect(await userCount(dave.email)).toBe(0);
    expect(await sessionCount()).toBe(sessions);
  });

  it('rejects an ID token for another audience', async () => {
    const erin: ProviderAccount = {
      sub: 'erin-0005',
      email: 'erin@idp.example',
      email_verified: true,
      name: 'Erin',
      groups: ['gov-audit'],
    };
    provider.addAccount(erin);
    provider.nextLogin = erin.sub;
    const started = await startSignIn();
    const otherClientUrl = new URL(started.authorizationUrl);
    otherClientUrl.searchParams.set('client_id', OTHER_CLIENT_ID);
    const callbackUrl = await authorizeInBrowser(otherClientUrl.href, REDIRECT_URI);
    const sessions = await sessionCount();

    // The token request authenticates as the other client, so the provider issues tokens whose
    // audience is that client, signed with its real key and carrying the expected nonce.
    const client = await import('openid-client');
    const configuration = await t.app.get(OidcService).providerConfiguration();
    const otherCredentials = `Basic ${Buffer.from(`${OTHER_CLIENT_ID}:${OTHER_CLIENT_SECRET}`).toString('base64')}`;
    configuration[client.customFetch] = (url, options) => {
      const headers = new Headers(options.headers);
      if (url.endsWith('/token')) headers.set('authorization', otherCredentials);
      return fetch(url, { ...options, headers });
    };
    let response: LightMyRequestResponse;
    try {
      response = await callback(callbackUrl, started.cookie);
    } finally {
      // The property is an accessor of the configuration class, so it is reset, not deleted.
      (configuration as unknown as Record<symbol, unknown>)[client.customFetch] = undefined;
    }

    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('AUTH.OIDC_RESPONSE_INVALID');
    expect(response.json().details.claim).toBe('aud');
    expect(await userCount(erin.email)).toBe(0);
    expect(await sessionCount()).toBe(sessions);
  });

  it('rejects a user whose groups map to no role', async () => {
    const frank: ProviderAccount = {
      sub: 'frank-0006',
      email: 'frank@idp.example',
      email_verified: true,
      name: 'Frank',
      groups: ['lunch-club'],
    };
    const { response } = await signInAs(frank);

    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('AUTH.OIDC_NO_ROLE');
    expect(response.json().details.groups).toEqual(['lunch-club']);
    expect(await userCount(frank.email)).toBe(0);
  });

  it('links a local user only by verified e-mail', async () => {
    const local = t.users.requester;
    const account: ProviderAccount = {
      sub: 'requester-0007',
      email: local.email.toUpperCase(),
      email_verified: false,
      name: 'Local requester',
      groups: ['gov-audit'],
    };

    const unverified = await signInAs(account);
    expect(unverified.response.statusCode).toBe(409);
    expect(unverified.response.json().code).toBe('AUTH.OIDC_EMAIL_UNVERIFIED');

    account.email_verified = true;
    const verified = await signInAs(account);
    expect(verified.response.statusCode).toBe(200);
    expect(verified.response.json().user.id).toBe(local.id);
    expect(verified.response.json().user.roles).toEqual(['auditor']);
    expect(await userCount(local.email)).toBe(1);
    const [link] = await superuserQuery<{ after: { createdUser: boolean } }>(
      t.databaseUrl,
      `SELECT after FROM audit_events WHERE entity_id = $1 AND action = 'user.identity_linked'`,
      [local.id],
    );
    expect(link.after.createdUser).toBe(false);
  });

  it('rejects a deactivated user', async () => {
    const grace: ProviderAccount = {
      sub: 'grace-0008',
      email: 'grace@idp.example',
      email_verified: true,
      name: 'Grace',
      groups: ['gov-audit'],
    };
    const first = await signInAs(grace);
    expect(first.response.statusCode).toBe(200);
    const user = first.response.json().user;
    const current = (await t.request({ method: 'GET', url: `/api/users/${user.id}` })).json();
    const deactivated = await t.request({
      method: 'POST',
      url: `/api/users/${user.id}/deactivate`,
      payload: { version: current.version, reason: 'Left the company' },
    });
    expect(deactivated.statusCode).toBe(200);

    const again = await signInAs(grace);

    expect(again.response.statusCode).toBe(403);
    expect(again.response.json().code).toBe('AUTH.USER_INACTIVE');
  });
});

describe('OpenID Connect settings', () => {
  const base = {
    OIDC_ISSUER_URL: 'https://idp.example.com/realms/gov',
    OIDC_CLIENT_ID: 'governance',
    OIDC_CLIENT_SECRET: 'never-echo-this-secret',
    OIDC_REDIRECT_URI: 'https://governance.example.com/api/auth/oidc/callback',
  };

  function problems(env: Record<string, string>): string[] {
    try {
      loadSettings(env);
    } catch (error) {
      if (error instanceof ConfigurationError) return error.problems;
      throw error;
    }
    return [];
  }

  it('reads the mapping and defaults', () => {
    const settings = loadSettings({
      ...base,
      OIDC_ROLE_MAP: 'gov-admins=platform-admin, gov-admins=auditor,cn=ops=manager',
    });

    expect(settings.oidc).toEqual({
      issuerUrl: base.OIDC_ISSUER_URL,
      clientId: 'governance',
      clientSecret: 'never-echo-this-secret',
      redirectUri: base.OIDC_REDIRECT_URI,
      scopes: 'openid email profile',
      groupsClaim: 'groups',
      roleMap: { 'gov-admins': ['platform-admin', 'auditor'], 'cn=ops': ['manager'] },
      defaultRole: undefined,
      allowInsecureIssuer: false,
    });
    expect(loadSettings({}).oidc).toBeUndefined();
  });

  it('names every bad variable without the secret', () => {
    const listed = problems({
      ...base,
      OIDC_ISSUER_URL: 'http://idp.example.com',
      OIDC_CLIENT_ID: '',
      OIDC_SCOPES: 'email profile',
      OIDC_ROLE_MAP: 'gov-admins=platform-admin,gov-ops=root,=auditor,lonely',
      OIDC_DEFAULT_ROLE: 'superuser',
    });

    expect(listed).toEqual([
      expect.stringMatching(/^OIDC_ISSUER_URL must use https:/),
      expect.stringMatching(/^OIDC_CLIENT_ID must be set/),
      expect.stringMatching(/^OIDC_SCOPES must include openid/),
      expect.stringMatching(/"gov-ops=root"/),
      expect.stringMatching(/"=auditor"/),
      expect.stringMatching(/"lonely"/),
      expect.stringMatching(/^OIDC_DEFAULT_ROLE must be one of/),
    ]);
    expect(listed.join('\n')).not.toContain('never-echo-this-secret');
  });

  it('allows plain http only for a loopback issuer', () => {
    const settings = loadSettings({ ...base, OIDC_ISSUER_URL: 'http://127.0.0.1:8080' });
    expect(settings.oidc?.allowInsecureIssuer).toBe(true);
    expect(problems({ ...base, OIDC_ISSUER_URL: 'http://10.0.0.5:8080' })).toHaveLength(1);
  });

  it('reports OIDC variables set without an issuer', () => {
    const { OIDC_ISSUER_URL: _issuer, ...rest } = base;
    expect(problems(rest)).toEqual([expect.stringMatching(/OIDC_ISSUER_URL is not/)]);
  });
});

describe('OpenID Connect turned off', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });

  afterAll(async () => {
    await t?.close();
  });

  it('answers 404 on both routes', async () => {
    for (const url of ['/api/auth/oidc/start', '/api/auth/oidc/callback?state=x&code=y']) {
      const response = await t.request({ method: 'GET', url }, 'anonymous');
      expect(response.statusCode).toBe(404);
      expect(response.json().code).toBe('AUTH.OIDC_DISABLED');
    }
  });
});

describe('OpenID Connect logging', () => {
  it('keeps the client secret out of the log', async () => {
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/api/auth/oidc/callback`;
    const provider = await TestProvider.start([
      { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUri] },
    ]);
    const service = new ServiceProcess({
      PORT: String(port),
      DATABASE_URL: await createTestDatabase(),
      QUEUE_PREFIX: `oidc${port}`,
      LOG_LEVEL: 'trace',
      ...testKeyEnv(),
      OIDC_ISSUER_URL: provider.issuer,
      OIDC_CLIENT_ID: CLIENT_ID,
      OIDC_CLIENT_SECRET: CLIENT_SECRET,
      OIDC_REDIRECT_URI: redirectUri,
      OIDC_SCOPES: 'openid email profile groups',
      OIDC_ROLE_MAP: 'gov-audit=auditor',
    });
    try {
      await service.waitForStatus(`http://127.0.0.1:${port}/health/live`, 200);
      provider.addAccount({
        sub: 'logged-0009',
        email: 'logged@idp.example',
        email_verified: true,
        name: 'Logged',
        groups: ['gov-audit'],
      });
      provider.nextLogin = 'logged-0009';

      const started = await fetch(`http://127.0.0.1:${port}/api/auth/oidc/start`, {
        redirect: 'manual',
      });
      expect(started.status).toBe(302);
      const cookie = started.headers.getSetCookie()[0].split(';')[0];
      const callbackUrl = await authorizeInBrowser(started.headers.get('location')!, redirectUri);
      const signedIn = await fetch(callbackUrl, { headers: { cookie } });
      expect(signedIn.status).toBe(200);
      const replayed = await fetch(callbackUrl, { headers: { cookie } });
      expect(replayed.status).toBe(400);

      await service.waitForLog(/Linked an OpenID Connect identity/);
      const basicCredentials = Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64');
      expect(service.log).not.toContain(CLIENT_SECRET);
      expect(service.log).not.toContain(basicCredentials);
    } finally {
      await service.stop();
      await provider.stop();
    }
  });
});
