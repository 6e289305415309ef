import { createHmac, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';

import { testKeyEnv } from './support/app';
import { markSystemApproved } from './support/approvals';
import { createTestDatabase } from './support/database';
import { TEST_REDIS_URL } from './support/env';
import { freePort, ServiceProcess } from './support/service-process';

const ADMIN = { email: 'root@test.example', password: 'bootstrap-password-1' };

describe('credential secrets', () => {
  let service: ServiceProcess | undefined;

  afterEach(async () => {
    await service?.stop();
  });

  it('never appear in the database, logs, responses or exports', async () => {
    const keys = testKeyEnv();
    const databaseUrl = await createTestDatabase();
    const port = await freePort();
    service = new ServiceProcess({
      DATABASE_URL: databaseUrl,
      REDIS_URL: TEST_REDIS_URL,
      PORT: String(port),
      LOG_LEVEL: 'trace',
      BOOTSTRAP_ADMIN_EMAIL: ADMIN.email,
      BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
      ...keys,
    });
    const base = `http://127.0.0.1:${port}`;
    await service.waitForStatus(`${base}/health/live`, 200);

    const bodies: string[] = [];
    const call = async (method: string, path: string, body?: string, type = 'application/json') => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { 'content-type': type, authorization },
        body,
      });
      const text = await response.text();
      bodies.push(text);
      return { status: response.status, text, json: () => JSON.parse(text) };
    };
    let authorization = '';
    const signIn = await call('POST', '/api/auth/sign-in', JSON.stringify(ADMIN));
    authorization = `Bearer ${signIn.json().accessToken}`;

    const provider = await call('POST', '/api/providers', JSON.stringify({ name: 'VendorC' }));
    const system = await call(
      'POST',
      '/api/systems',
      JSON.stringify({
        providerId: provider.json().id,
        name: 'Kaseya VSA',
        product: 'VSA',
        category: 'remote-management',
        criticality: 'high',
      }),
    );
    const systemId = system.json().id;
    const [admin] = JSON.parse((await call('GET', '/api/users?limit=1')).text).items as {
      id: string;
    }[];
    await markSystemApproved(databaseUrl, systemId, admin.id, new Date('2027-01-01'));
    const imported = await call(
      'POST',
      `/api/systems/${systemId}/account-imports?preset=generic&mapping=externalId%3Alogin`,
      'login\nsvc-backup\nsvc-deploy\n',
      'text/csv',
    );
    expect(imported.status).toBe(201);
    const accounts = (await call('GET', `/api/systems/${systemId}/accounts`)).json().items as {
      id: string;
    }[];

    const secret = `s3cr3t-${randomBytes(16).toString('hex')}`;
    const fingerprint = createHmac('sha256', Buffer.from(keys.FINGERPRINT_KEY, 'base64'))
      .update(secret)
      .digest();
    for (const account of accounts) {
      const recorded = await call(
        'POST',
        `/api/accounts/${account.id}/credential`,
        JSON.stringify({ credentialSecret: secret }),
      );
      expect(recorded.status).toBe(200);
    }
    const reread = await call('GET', `/api/accounts/${accounts[0].id}`);
    expect(reread.json().credentialCheck).toBe('reuse-found');
    // A rejected body must not echo the secret either.
    const rejected = await call(
      'POST',
      `/api/accounts/${accounts[0].id}/credential`,
      JSON.stringify({ credentialSecret: secret, credentialCannotBeChecked: true, extra: 1 }),
    );
    expect(rejected.status).toBe(400);
    const exported = await call('GET', `/api/systems/${systemId}/accounts/export`);
    expect(exported.status).toBe(200);
    await call('GET', `/api/access-findings?systemId=${systemId}`);
    await call('GET', `/api/audit?limit=200`);

    const dump = execFileSync('pg_dump', ['--data-only', databaseUrl], {
      maxBuffer: 256 * 1024 * 1024,
    }).toString();
    const secretForms = [secret, Buffer.from(secret).toString('base64')];
    const fingerprintForms = [fingerprint.toString('hex'), fingerprint.toString('base64')];
    for (const form of secretForms) {
      expect(dump).not.toContain(form);
      expect(service.log).not.toContain(form);
    }
    for (const form of [...secretForms, ...fingerprintForms]) {
      expect(bodies.join('\n')).not.toContain(form);
    }
    // The log did record the credential requests, so the search above had something to search.
    expect(service.log).toContain('/credential');
  });
});
