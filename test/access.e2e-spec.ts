import { createHmac, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';

import { Queue } from 'bullmq';
import IORedis from 'ioredis';

import { GrantsService } from '../src/access/grants.service';
import { startTestApp, TestApp, testKeyEnv } from './support/app';
import { approvedSystem, createPerson, ensureProvider } from './support/access';
import { superuserQuery } from './support/database';
import { TEST_REDIS_URL } from './support/env';

const HOUR = 3_600_000;

interface GrantInput {
  systemId: string;
  holderUserId?: string;
  providerId?: string;
  sponsorUserId?: string;
  accountExternalId: string;
  privilege: string;
  purpose: string;
  mfa?: string;
  endsAt?: string;
}

async function requestGrant(t: TestApp, input: GrantInput): Promise<string> {
  const response = await t.request(
    {
      method: 'POST',
      url: '/api/access-grants',
      payload: { justification: 'Needed for the support rota', ...input },
    },
    'requester',
  );
  if (response.statusCode !== 201) throw new Error(`grant not requested: ${response.body}`);
  return response.json().id;
}

function approve(t: TestApp, grantId: string, as: 'system-owner' | 'security-approver') {
  return t.request(
    { method: 'POST', url: `/api/access-grants/${grantId}/approve`, payload: {} },
    as,
  );
}

function provision(t: TestApp, grantId: string, extra: Record<string, unknown> = {}) {
  return t.request(
    {
      method: 'POST',
      url: `/api/access-grants/${grantId}/provision`,
      payload: { evidence: 'Created in the console, change CHG-1', ...extra },
    },
    'system-owner',
  );
}

/** Requests, approves and provisions an admin grant; returns the grant and account ids. */
async function activeAdmin(
  t: TestApp,
  systemId: string,
  externalId: string,
  extra: Record<string, unknown> = {},
): Promise<{ grantId: string; accountId: string }> {
  const grantId = await requestGrant(t, {
    systemId,
    holderUserId: await createPerson(t, externalId),
    accountExternalId: externalId,
    privilege: 'admin',
    purpose: 'admin',
    mfa: 'enabled',
    endsAt: new Date(t.clock.now().getTime() + 90 * 24 * HOUR).toISOString(),
  });
  expect((await approve(t, grantId, 'system-owner')).statusCode).toBe(200);
  const provisioned = await provision(t, grantId, extra);
  expect(provisioned.statusCode).toBe(200);
  return { grantId, accountId: provisioned.json().accountId };
}

function importCsv(t: TestApp, systemId: string, query: string, body: string | Buffer) {
  return t.request({
    method: 'POST',
    url: `/api/systems/${systemId}/account-imports?${query}`,
    headers: { 'content-type': 'text/csv' },
    payload: body,
  });
}

async function accountsOf(t: TestApp, systemId: string): Promise<Record<string, unknown>[]> {
  const response = await t.request({
    method: 'GET',
    url: `/api/systems/${systemId}/accounts?limit=200`,
  });
  expect(response.statusCode).toBe(200);
  return response.json().items;
}

async function findingsOf(t: TestApp, systemId: string): Promise<Record<string, unknown>[]> {
  const response = await t.request({
    method: 'GET',
    url: `/api/systems/${systemId}/access-findings?limit=200`,
  });
  expect(response.statusCode).toBe(200);
  return response.json().items;
}

const AWS_HEADER =
  'user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,' +
  'password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,' +
  'access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,' +
  'access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,' +
  'access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,' +
  'cert_1_last_rotated,cert_2_active,cert_2_last_rotated';

const AWS_REPORT = [
  AWS_HEADER,
  '<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,' +
    '2025-12-01T10:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,' +
    'N/A,N/A,N/A,N/A,false,N/A,false,N/A',
  'alice,arn:aws:iam::123456789012:user/alice,2021-03-04T05:06:07+00:00,true,' +
    '2025-12-20T08:00:00+00:00,2025-06-01T00:00:00+00:00,N/A,true,true,2025-01-01T00:00:00+00:00,' +
    '2025-12-30T09:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A',
  'bob,arn:aws:iam::123456789012:user/bob,2022-01-01T00:00:00+00:00,true,no_information,' +
    '2022-01-01T00:00:00+00:00,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A',
  'ci-deploy,arn:aws:iam::123456789012:user/ci-deploy,2023-02-02T00:00:00+00:00,false,N/A,N/A,' +
    'N/A,false,true,2024-02-02T00:00:00+00:00,2025-12-31T23:00:00+00:00,eu-west-1,ec2,true,' +
    '2025-11-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A',
  'old-user,arn:aws:iam::123456789012:user/old-user,2019-01-01T00:00:00+00:00,false,' +
    '2020-01-01T00:00:00+00:00,2019-01-01T00:00:00+00:00,N/A,false,false,N/A,N/A,N/A,N/A,false,' +
    'N/A,N/A,N/A,N/A,false,N/A,false,N/A',
].join('\n');

/** AWS report row for a plain IAM user with a password and the given MFA value. */
function awsUser(name: string, mfa: 'true' | 'false'): string {
  return (
    `${name},arn:aws:iam::123456789012:user/${name},2024-01-01T00:00:00+00:00,true,` +
    `2025-12-01T00:00:00+00:00,2024-01-01T00:00:00+00:00,N/A,${mfa},false,N/A,N/A,N/A,N/A,false,` +
    'N/A,N/A,N/A,N/A,false,N/A,false,N/A'
  );
}

describe('access', () => {
  const keys = testKeyEnv();
  const fingerprintKey = Buffer.from(keys.FINGERPRINT_KEY, 'base64');
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ env: keys });
    t.clock.set('2026-01-05T09:00:00Z');
  });

  afterAll(async () => {
    await t.close();
  });

  it('keeps the admin cap under five concurrent approvals', async () => {
    const systemId = await approvedSystem(t);
    await superuserQuery(t.databaseUrl, `UPDATE systems SET max_admins = 2 WHERE id = $1`, [
      systemId,
    ]);

    // An expired and a revoked admin grant hold no slot.
    const expiring = await requestGrant(t, {
      systemId,
      holderUserId: await createPerson(t, 'expiring'),
      accountExternalId: 'expiring-admin',
      privilege: 'admin',
      purpose: 'admin',
      mfa: 'enabled',
      endsAt: new Date(t.clock.now().getTime() + HOUR).toISOString(),
    });
    expect((await approve(t, expiring, 'system-owner')).statusCode).toBe(200);
    t.clock.advance(2 * HOUR);
    const revoked = await activeAdmin(t, systemId, 'revoked-admin');
    const revoke = await t.request(
      {
        method: 'POST',
        url: `/api/access-grants/${revoked.grantId}/revoke`,
        payload: { reason: 'Left the team' },
      },
      'system-owner',
    );
    expect(revoke.statusCode).toBe(200);
    await activeAdmin(t, systemId, 'existing-admin');

    const pending: string[] = [];
    for (let i = 0; i < 5; i++) {
      pending.push(
        await requestGrant(t, {
          systemId,
          holderUserId: await createPerson(t, `candidate-${i}`),
          accountExternalId: `candidate-${i}`,
          privilege: 'admin',
          purpose: 'admin',
          mfa: 'enabled',
          endsAt: new Date(t.clock.now().getTime() + 30 * 24 * HOUR).toISOString(),
        }),
      );
    }
    const responses = await Promise.all(pending.map((id) => approve(t, id, 'system-owner')));
    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([200, 409, 409, 409, 409]);
    for (const response of responses.filter((r) => r.statusCode === 409)) {
      expect(response.json().code).toBe('ACCESS.ADMIN_CAP_REACHED');
    }

    const winner = pending[responses.findIndex((response) => response.statusCode === 200)];
    expect((await provision(t, winner)).statusCode).toBe(200);
    const admins = (await accountsOf(t, systemId)).filter(
      (account) => account.privilege === 'admin' && account.grantStatus === 'active',
    );
    expect(admins).toHaveLength(2);
    const [{ held }] = await superuserQuery<{ held: number }>(
      t.databaseUrl,
      `SELECT count(*)::int AS held FROM access_grants WHERE system_id = $1 AND privilege = 'admin'
          AND status IN ('approved', 'active') AND ends_at > $2`,
      [systemId, t.clock.now()],
    );
    expect(held).toBe(2);
  });

  it('writes nothing when the audit insert fails', async () => {
    const systemId = await approvedSystem(t);
    const grantId = await requestGrant(t, {
      systemId,
      holderUserId: await createPerson(t, 'c9'),
      accountExternalId: 'c9-admin',
      privilege: 'admin',
      purpose: 'admin',
      mfa: 'enabled',
      endsAt: new Date(t.clock.now().getTime() + 24 * HOUR).toISOString(),
    });
    await superuserQuery(
      t.databaseUrl,
      `CREATE FUNCTION forced_audit_failure() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.action = 'access_grant.approved' THEN RAISE EXCEPTION 'forced audit failure'; END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER audit_events_forced_failure BEFORE INSERT ON audit_events
         FOR EACH ROW EXECUTE FUNCTION forced_audit_failure();`,
    );
    const redis = new IORedis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    const queue = new Queue('access', { connection: redis, prefix: t.queuePrefix });
    try {
      const failed = await approve(t, grantId, 'system-owner');
      expect(failed.statusCode).toBe(500);

      const grant = (
        await t.request({ method: 'GET', url: `/api/access-grants/${grantId}` })
      ).json();
      expect(grant.status).toBe('pending');
      expect(grant.ownerApprovedBy).toBeNull();
      const [{ held }] = await superuserQuery<{ held: number }>(
        t.databaseUrl,
        `SELECT count(*)::int AS held FROM access_grants
          WHERE system_id = $1 AND status IN ('approved', 'active')`,
        [systemId],
      );
      expect(held).toBe(0);
      expect(await accountsOf(t, systemId)).toHaveLength(0);
      expect(await queue.getJob(`grant-expiry-${grantId}`)).toBeUndefined();

      await superuserQuery(
        t.databaseUrl,
        `DROP TRIGGER audit_events_forced_failure ON audit_events`,
      );
      expect((await approve(t, grantId, 'system-owner')).statusCode).toBe(200);
      expect(await queue.getJob(`grant-expiry-${grantId}`)).toBeDefined();
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });

  it('refuses admin without MFA and flags MFA reported off', async () => {
    const systemId = await approvedSystem(t);
    const withoutMfa = await requestGrant(t, {
      systemId,
      holderUserId: await createPerson(t, 'no-mfa'),
      accountExternalId: 'no-mfa-admin',
      privilege: 'admin',
      purpose: 'admin',
      mfa: 'disabled',
      endsAt: new Date(t.clock.now().getTime() + 24 * HOUR).toISOString(),
    });
    const refused = await approve(t, withoutMfa, 'system-owner');
    expect(refused.statusCode).toBe(422);
    expect(refused.json().code).toBe('ACCESS.ADMIN_REQUIRES_MFA');
    expect(refused.json().message).toContain('MFA');

    const { accountId } = await activeAdmin(t, systemId, 'ops-admin');
    const report = await importCsv(
      t,
      systemId,
      'preset=aws-iam-credential-report&mode=partial',
      `${AWS_HEADER}\n${awsUser('ops-admin', 'false')}\n`,
    );
    expect(report.statusCode).toBe(201);
    expect(report.json().rows).toEqual([
      { line: 2, externalId: 'ops-admin', outcome: 'updated', accountId },
    ]);
    const flagged = (await findingsOf(t, systemId)).filter(
      (finding) => finding.type === 'admin-without-mfa',
    );
    expect(flagged).toHaveLength(1);
    expect(flagged[0]).toMatchObject({ accountId, status: 'open' });
    // The organisation-wide list an auditor reads shows it too.
    const organisation = await t.request(
      { method: 'GET', url: `/api/access-findings?type=admin-without-mfa&accountId=${accountId}` },
      'auditor',
    );
    expect(organisation.json().items).toHaveLength(1);
  });

  it('rejects admin privilege on an everyday account', async () => {
    const systemId = await approvedSystem(t);
    const response = await t.request(
      {
        method: 'POST',
        url: '/api/access-grants',
        payload: {
          systemId,
          holderUserId: t.users.requester.id,
          accountExternalId: 'jdoe',
          privilege: 'admin',
          purpose: 'everyday',
          justification: 'x',
          endsAt: '2026-06-01T00:00:00Z',
        },
      },
      'requester',
    );
    expect(response.statusCode).toBe(422);
    expect(response.json().code).toBe('ACCESS.ADMIN_ON_EVERYDAY_ACCOUNT');
  });

  it('rejects grants on a system that is not approved', async () => {
    const systemId = await approvedSystem(t, { approved: false });
    const response = await t.request(
      {
        method: 'POST',
        url: '/api/access-grants',
        payload: {
          systemId,
          holderUserId: t.users.requester.id,
          accountExternalId: 'jdoe',
          privilege: 'standard',
          purpose: 'everyday',
          justification: 'x',
        },
      },
      'requester',
    );
    expect(response.statusCode).toBe(422);
    expect(response.json().code).toBe('APPROVAL.SYSTEM_NOT_APPROVED');
  });

  it('forbids self-approval and needs a security approver on critical systems', async () => {
    const systemId = await approvedSystem(t, { criticality: 'critical' });
    const grantId = await requestGrant(t, {
      systemId,
      holderUserId: await createPerson(t, 'critical'),
      accountExternalId: 'critical-admin',
      privilege: 'admin',
      purpose: 'admin',
      mfa: 'enabled',
      endsAt: new Date(t.clock.now().getTime() + 24 * HOUR).toISOString(),
    });
    const self = await t.request(
      { method: 'POST', url: `/api/access-grants/${grantId}/approve`, payload: {} },
      'requester',
    );
    expect(self.statusCode).toBe(403);

    const owner = await approve(t, grantId, 'system-owner');
    expect(owner.json().status).toBe('pending');
    const again = await approve(t, grantId, 'system-owner');
    expect(again.statusCode).toBe(409);
    const security = await approve(t, grantId, 'security-approver');
    expect(security.statusCode).toBe(200);
    expect(security.json().status).toBe('approved');
  });

  it('flags reused credentials by fingerprint without keeping secrets', async () => {
    const secret = `shared-${randomBytes(12).toString('hex')}`;
    const other = `other-${randomBytes(12).toString('hex')}`;
    const fingerprint = createHmac('sha256', fingerprintKey).update(secret).digest();
    const sys1 = await approvedSystem(t);
    const sys2 = await approvedSystem(t, { provider: 'VendorB' });
    const vendorB = await ensureProvider(t, 'VendorB');
    const responses: string[] = [];

    const admin = await activeAdmin(t, sys1, 'sys1-admin', { credentialSecret: secret });
    const serviceGrant = await requestGrant(t, {
      systemId: sys2,
      providerId: vendorB,
      sponsorUserId: t.users.manager.id,
      accountExternalId: 'vendorb-svc',
      privilege: 'standard',
      purpose: 'everyday',
      endsAt: new Date(t.clock.now().getTime() + 30 * 24 * HOUR).toISOString(),
    });
    await approve(t, serviceGrant, 'system-owner');
    const service = await provision(t, serviceGrant, { credentialSecret: secret });
    responses.push(service.body);
    const serviceAccount = service.json().accountId;

    const thirdGrant = await requestGrant(t, {
      systemId: sys2,
      holderUserId: await createPerson(t, 'third'),
      accountExternalId: 'third',
      privilege: 'standard',
      purpose: 'everyday',
    });
    await approve(t, thirdGrant, 'system-owner');
    const third = await provision(t, thirdGrant, { credentialSecret: other });
    responses.push(third.body);

    const fourthGrant = await requestGrant(t, {
      systemId: sys1,
      holderUserId: await createPerson(t, 'legacy'),
      accountExternalId: 'legacy',
      privilege: 'standard',
      purpose: 'everyday',
    });
    await approve(t, fourthGrant, 'system-owner');
    const fourth = await provision(t, fourthGrant, { credentialCannotBeChecked: true });
    responses.push(fourth.body);

    const account = async (id: string) => {
      const response = await t.request({ method: 'GET', url: `/api/accounts/${id}` });
      responses.push(response.body);
      return response.json();
    };
    expect((await account(admin.accountId)).credentialCheck).toBe('reuse-found');
    expect((await account(serviceAccount)).credentialCheck).toBe('reuse-found');
    expect((await account(third.json().accountId)).credentialCheck).toBe('no-reuse');
    expect((await account(fourth.json().accountId)).credentialCheck).toBe('cannot-be-checked');

    const reuse = [...(await findingsOf(t, sys1)), ...(await findingsOf(t, sys2))].filter(
      (finding) => finding.type === 'credential-reuse',
    );
    expect(reuse.map((finding) => finding.accountId).sort()).toEqual(
      [admin.accountId, serviceAccount].sort(),
    );
    responses.push(JSON.stringify(reuse));

    for (const systemId of [sys1, sys2]) {
      const exported = await t.request({
        method: 'GET',
        url: `/api/systems/${systemId}/accounts/export`,
      });
      expect(exported.statusCode).toBe(200);
      expect(exported.headers['content-type']).toContain('text/csv');
      responses.push(exported.body);
    }
    const everything = responses.join('\n');
    for (const forbidden of [
      secret,
      other,
      fingerprint.toString('hex'),
      fingerprint.toString('base64'),
    ]) {
      expect(everything).not.toContain(forbidden);
    }
    const dump = execFileSync('pg_dump', ['--data-only', t.databaseUrl], {
      maxBuffer: 256 * 1024 * 1024,
    }).toString();
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(other);
  });

  it('imports an AWS credential report and changes nothing the second time', async () => {
    const systemId = await approvedSystem(t);
    const first = await importCsv(t, systemId, 'preset=aws-iam-credential-report', AWS_REPORT);
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ created: 5, updated: 0, unchanged: 0, rejected: 0 });
    expect(
      first.json().rows.map((row: { line: number; outcome: string }) => [row.line, row.outcome]),
    ).toEqual([
      [2, 'created'],
      [3, 'created'],
      [4, 'created'],
      [5, 'created'],
      [6, 'created'],
    ]);

    const byId = Object.fromEntries(
      (await accountsOf(t, systemId)).map((account) => [account.externalId, account]),
    );
    expect(byId['<root_account>']).toMatchObject({
      privilege: 'admin',
      purpose: 'admin',
      mfaState: 'enabled',
      status: 'active',
      origin: 'imported',
      lastUsedAt: '2025-12-01T10:00:00.000Z',
    });
    expect(byId.alice).toMatchObject({
      privilege: 'unknown',
      mfaState: 'enabled',
      status: 'active',
      lastUsedAt: '2025-12-30T09:00:00.000Z',
    });
    expect(byId.bob).toMatchObject({ mfaState: 'disabled', status: 'active', lastUsedAt: null });
    expect(byId['ci-deploy']).toMatchObject({
      status: 'active',
      lastUsedAt: '2025-12-31T23:00:00.000Z',
    });
    expect(byId['old-user']).toMatchObject({ status: 'disabled' });

    const unapproved = (await findingsOf(t, systemId))
      .filter((finding) => finding.type === 'unapproved-access')
      .map((finding) => finding.accountId);
    expect(unapproved.sort()).toEqual(
      ['<root_account>', 'alice', 'bob', 'ci-deploy'].map((id) => byId[id].id).sort(),
    );

    const snapshot = () =>
      superuserQuery(
        t.databaseUrl,
        `SELECT (SELECT json_agg(a ORDER BY a.id) FROM accounts a WHERE a.system_id = $1) AS accounts,
                (SELECT json_agg(json_build_object('id', f.id, 'type', f.type, 'status', f.status,
                   'firstSeenAt', f.first_seen_at, 'version', f.version) ORDER BY f.id)
                   FROM access_findings f WHERE f.system_id = $1) AS findings`,
        [systemId],
      );
    const before = await snapshot();
    t.clock.advance(HOUR);
    const second = await importCsv(t, systemId, 'preset=aws-iam-credential-report', AWS_REPORT);
    expect(second.statusCode).toBe(201);
    expect(second.json()).toMatchObject({ created: 0, updated: 0, unchanged: 5, removed: 0 });
    expect(await snapshot()).toEqual(before);

    const partial = await importCsv(
      t,
      systemId,
      'preset=aws-iam-credential-report&mode=partial',
      `${AWS_HEADER}\n${awsUser('alice', 'true')}\n`,
    );
    expect(partial.json()).toMatchObject({ removed: 0 });
    const full = await importCsv(
      t,
      systemId,
      'preset=aws-iam-credential-report',
      `${AWS_HEADER}\n${awsUser('alice', 'true')}\n`,
    );
    expect(full.json()).toMatchObject({ removed: 4 });
    expect((await accountsOf(t, systemId)).filter((a) => a.status === 'removed')).toHaveLength(4);
  });

  it('records each import in one audit event', async () => {
    const systemId = await approvedSystem(t);
    const first = await importCsv(t, systemId, 'preset=aws-iam-credential-report', AWS_REPORT);
    expect(first.statusCode).toBe(201);
    const byId = Object.fromEntries(
      (await accountsOf(t, systemId)).map((account) => [account.externalId, account.id]),
    );
    t.clock.advance(HOUR);
    const second = await importCsv(
      t,
      systemId,
      'preset=aws-iam-credential-report',
      `${AWS_HEADER}\n${awsUser('alice', 'false')}\n`,
    );
    expect(second.statusCode).toBe(201);
    expect(second.json().rows).toEqual([
      { line: 2, externalId: 'alice', outcome: 'updated', accountId: byId.alice },
    ]);

    const events = await superuserQuery<{ entity_id: string; after: Record<string, unknown> }>(
      t.databaseUrl,
      `SELECT entity_id, after FROM audit_events
        WHERE action = 'account_import.applied' AND after->>'systemId' = $1 ORDER BY seq`,
      [systemId],
    );
    expect(events.map((event) => event.entity_id)).toEqual([first.json().id, second.json().id]);
    const [created, changed] = events.map((event) => event.after);
    expect(created.createdAccounts).toEqual(
      ['<root_account>', 'alice', 'bob', 'ci-deploy', 'old-user'].map((externalId) => ({
        id: byId[externalId],
        externalId,
      })),
    );
    expect(created.updatedAccounts).toEqual([]);
    expect(created.removedAccountIds).toEqual([]);
    expect(created).toMatchObject({ created: 5, updated: 0, removed: 0, rejectedRows: [] });

    expect(changed.createdAccounts).toEqual([]);
    expect(changed.updatedAccounts).toEqual([
      {
        id: byId.alice,
        externalId: 'alice',
        before: expect.objectContaining({ mfaState: 'enabled' }),
        after: expect.objectContaining({ mfaState: 'disabled' }),
      },
    ]);
    expect(changed.removedAccountIds).toEqual(
      [byId['<root_account>'], byId.bob, byId['ci-deploy'], byId['old-user']].sort(),
    );
    expect(changed).toMatchObject({ created: 0, updated: 1, removed: 4, unchanged: 0 });
  });

  it('rejects malformed files with line numbers and changes nothing', async () => {
    const systemId = await approvedSystem(t);
    expect(
      (await importCsv(t, systemId, 'preset=aws-iam-credential-report', AWS_REPORT)).statusCode,
    ).toBe(201);
    const inventory = async () =>
      superuserQuery(
        t.databaseUrl,
        `SELECT json_agg(a ORDER BY a.id) AS accounts FROM accounts a WHERE a.system_id = $1`,
        [systemId],
      );
    const before = await inventory();
    const lines = AWS_REPORT.split('\n');

    const badQuote = [lines[0], lines[1], `"broken,${lines[2]}`, lines[3]].join('\n');
    const quoted = await importCsv(t, systemId, 'preset=aws-iam-credential-report', badQuote);
    expect(quoted.statusCode).toBe(400);
    expect(quoted.json().code).toBe('ACCESS.IMPORT_INVALID');
    expect(quoted.json().details.rejected[0].line).toBeGreaterThanOrEqual(3);

    const shortRow = [lines[0], lines[1], lines[2].split(',').slice(0, 10).join(','), lines[3]];
    const short = await importCsv(
      t,
      systemId,
      'preset=aws-iam-credential-report',
      shortRow.join('\n'),
    );
    expect(short.statusCode).toBe(400);
    expect(short.json().details.rejected).toEqual([
      { line: 3, externalId: null, reason: 'row has 10 fields, the header has 22' },
    ]);

    const noMfaColumn = AWS_REPORT.replace('mfa_active', 'mfa_status');
    const header = await importCsv(t, systemId, 'preset=aws-iam-credential-report', noMfaColumn);
    expect(header.statusCode).toBe(400);
    expect(header.json().details.rejected[0]).toMatchObject({ line: 1 });
    expect(header.json().message).toContain('mfa_active');

    const invalidUtf8 = Buffer.concat([
      Buffer.from(`${lines[0]}\n${lines[1]}\n`),
      Buffer.from([0x62, 0x6f, 0xff, 0x62]),
      Buffer.from(`${lines[3].slice(3)}\n`),
    ]);
    const utf8 = await importCsv(t, systemId, 'preset=aws-iam-credential-report', invalidUtf8);
    expect(utf8.statusCode).toBe(400);
    expect(utf8.json().details.rejected).toEqual([
      { line: 3, externalId: null, reason: 'invalid UTF-8 in field 1' },
    ]);

    const badValue = lines.slice(0, 3).join('\n').replace(',true,true,', ',maybe,true,');
    const value = await importCsv(t, systemId, 'preset=aws-iam-credential-report', badValue);
    expect(value.statusCode).toBe(400);
    expect(value.json().details.rejected[0]).toMatchObject({ line: 3, externalId: 'alice' });

    expect(await inventory()).toEqual(before);

    const partial = await importCsv(
      t,
      systemId,
      'preset=aws-iam-credential-report&allowPartialErrors=true',
      badValue,
    );
    expect(partial.statusCode).toBe(201);
    // The rejected row keeps alice; bob, ci-deploy and old-user are absent from this full import.
    expect(partial.json()).toMatchObject({ rejected: 1, unchanged: 1, removed: 3 });
  });

  it('rolls back a large file that breaks midway', async () => {
    const systemId = await approvedSystem(t);
    // Enough rows that part of the file has reached PostgreSQL before the broken line.
    const users = Array.from({ length: 2000 }, (_, i) => awsUser(`bulk-${i}`, 'true'));
    const broken = [AWS_HEADER, ...users, `"broken,${awsUser('late', 'true')}`].join('\n');
    const failed = await importCsv(t, systemId, 'preset=aws-iam-credential-report', broken);
    expect(failed.statusCode).toBe(400);
    expect(failed.json().code).toBe('ACCESS.IMPORT_INVALID');
    expect(await accountsOf(t, systemId)).toEqual([]);

    const valid = [AWS_HEADER, ...users].join('\n');
    const imported = await importCsv(t, systemId, 'preset=aws-iam-credential-report', valid);
    expect(imported.statusCode).toBe(201);
    expect(imported.json()).toMatchObject({ created: 2000, rejected: 0 });
    expect(imported.json().rows).toHaveLength(2000);
  });

  it('rejects a repeated account id ignoring case', async () => {
    const systemId = await approvedSystem(t);
    const lines = [
      AWS_HEADER,
      awsUser('alice', 'true'),
      awsUser('bob', 'true'),
      awsUser('ALICE', 'false'),
      awsUser('carol', 'true'),
      awsUser('Alice', 'true'),
    ].join('\n');
    const refused = await importCsv(t, systemId, 'preset=aws-iam-credential-report', lines);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().details.rejected).toEqual([
      {
        line: 4,
        externalId: 'ALICE',
        reason: 'duplicate account id "ALICE" (first on line 2; ids ignore case)',
      },
      {
        line: 6,
        externalId: 'Alice',
        reason: 'duplicate account id "Alice" (first on line 2; ids ignore case)',
      },
    ]);
    expect(await accountsOf(t, systemId)).toEqual([]);

    const partial = await importCsv(
      t,
      systemId,
      'preset=aws-iam-credential-report&allowPartialErrors=true',
      lines,
    );
    expect(partial.statusCode).toBe(201);
    expect(partial.json()).toMatchObject({ created: 3, rejected: 2 });
    expect(
      partial.json().rows.map((row: { line: number; outcome: string }) => [row.line, row.outcome]),
    ).toEqual([
      [2, 'created'],
      [3, 'created'],
      [4, 'rejected'],
      [5, 'created'],
      [6, 'rejected'],
    ]);
    const [alice] = (await accountsOf(t, systemId)).filter((a) => a.externalId === 'alice');
    expect(alice).toMatchObject({ mfaState: 'enabled' });
  });

  it('header-only full snapshot removes nothing', async () => {
    const systemId = await approvedSystem(t);
    expect(
      (await importCsv(t, systemId, 'preset=aws-iam-credential-report', AWS_REPORT)).statusCode,
    ).toBe(201);
    const headerOnly = `${AWS_HEADER}\n`;
    const empty = await importCsv(
      t,
      systemId,
      'preset=aws-iam-credential-report&mode=full',
      headerOnly,
    );
    expect(empty.statusCode).toBe(201);
    expect(empty.json()).toMatchObject({ rowsRead: 0, removed: 0 });
    expect(empty.json().removalSkipped).toContain('no account rows');
    const statuses = (await accountsOf(t, systemId)).map((account) => account.status);
    expect(statuses).toHaveLength(5);
    expect(statuses).not.toContain('removed');
  });

  it('one open grant per account', async () => {
    const systemId = await approvedSystem(t);
    const holderUserId = await createPerson(t, 'duplicate');
    const input = {
      systemId,
      holderUserId,
      accountExternalId: 'dup-user',
      privilege: 'standard',
      purpose: 'everyday',
    };
    const responses = await Promise.all(
      [0, 1, 2].map(() =>
        t.request(
          {
            method: 'POST',
            url: '/api/access-grants',
            payload: { justification: 'Needed for the support rota', ...input },
          },
          'requester',
        ),
      ),
    );
    expect(responses.map((response) => response.statusCode).sort()).toEqual([201, 409, 409]);
    const conflict = responses.find((response) => response.statusCode === 409);
    expect(conflict?.json().code).toBe('ACCESS.GRANT_EXISTS');
    const rows = await superuserQuery<{ n: number }>(
      t.databaseUrl,
      `SELECT count(*)::int AS n FROM access_grants WHERE system_id = $1`,
      [systemId],
    );
    expect(rows[0].n).toBe(1);
  });

  it('imports a generic CSV through a column mapping', async () => {
    const systemId = await approvedSystem(t);
    const csv =
      'login,display,role,mfa,last_login,active\nsam,Sam,Administrator,yes,2025-10-01,true\n';
    const mapping =
      'externalId:login,name:display,privilege:role,mfa:mfa,lastUsed:last_login,enabled:active';
    const response = await importCsv(
      t,
      systemId,
      `preset=generic&mapping=${encodeURIComponent(mapping)}`,
      csv,
    );
    expect(response.statusCode).toBe(201);
    const [sam] = await accountsOf(t, systemId);
    expect(sam).toMatchObject({
      externalId: 'sam',
      name: 'Sam',
      privilege: 'admin',
      mfaState: 'enabled',
    });

    const noMapping = await importCsv(t, systemId, 'preset=generic', csv);
    expect(noMapping.statusCode).toBe(400);
    expect(noMapping.json().details.fields[0].field).toBe('mapping');
  });

  it('answers bad grant input with 400 naming the fields', async () => {
    const [{ count: before }] = await superuserQuery<{ count: string }>(
      t.databaseUrl,
      'SELECT count(*) FROM access_grants',
    );
    const invalid = await t.request(
      {
        method: 'POST',
        url: '/api/access-grants',
        payload: { systemId: 'nope', privilege: 'superuser', purpose: 'admin' },
      },
      'requester',
    );
    expect(invalid.statusCode).toBe(400);
    const fields = invalid.json().details.fields.map((field: { field: string }) => field.field);
    expect(fields).toEqual(
      expect.arrayContaining(['systemId', 'privilege', 'accountExternalId', 'justification']),
    );

    const systemId = await approvedSystem(t);
    const provider = await ensureProvider(t, 'VendorA');
    const missing = await t.request(
      {
        method: 'POST',
        url: '/api/access-grants',
        payload: {
          systemId,
          providerId: provider,
          accountExternalId: 'va-1',
          privilege: 'standard',
          purpose: 'everyday',
          justification: 'Support contract',
        },
      },
      'requester',
    );
    expect(missing.statusCode).toBe(400);
    expect(missing.json().details.fields.map((field: { field: string }) => field.field)).toEqual([
      'sponsorUserId',
      'endsAt',
    ]);
    const farEnd = await t.request(
      {
        method: 'POST',
        url: '/api/access-grants',
        payload: {
          systemId,
          holderUserId: t.users.manager.id,
          accountExternalId: 'far-admin',
          privilege: 'admin',
          purpose: 'admin',
          justification: 'On call',
          endsAt: '9999-12-31T00:00:00Z',
        },
      },
      'requester',
    );
    expect(farEnd.statusCode).toBe(400);
    expect(farEnd.json().details.fields[0].field).toBe('endsAt');
    expect(farEnd.json().details.fields[0].problems[0]).toContain('365 days');
    const [{ count: after }] = await superuserQuery<{ count: string }>(
      t.databaseUrl,
      'SELECT count(*) FROM access_grants',
    );
    expect(after).toBe(before);
  });

  it('keeps a provider account on one system and provider', async () => {
    const sys1 = await approvedSystem(t);
    const sys2 = await approvedSystem(t);
    const vendorA = await ensureProvider(t, 'VendorA');
    const vendorB = await ensureProvider(t, 'VendorB');
    const endsAt = new Date(t.clock.now().getTime() + 10 * 24 * HOUR).toISOString();
    const first = await requestGrant(t, {
      systemId: sys1,
      providerId: vendorA,
      sponsorUserId: t.users.manager.id,
      accountExternalId: 'VA-7',
      privilege: 'standard',
      purpose: 'everyday',
      endsAt,
    });
    await approve(t, first, 'system-owner');
    const provisioned = await provision(t, first);
    const accountId = provisioned.json().accountId;

    for (const [systemId, providerId] of [
      [sys2, vendorA],
      [sys1, vendorB],
    ]) {
      const conflict = await t.request(
        {
          method: 'POST',
          url: '/api/access-grants',
          payload: {
            systemId,
            providerId,
            sponsorUserId: t.users.manager.id,
            accountExternalId: 'va-7',
            privilege: 'standard',
            purpose: 'everyday',
            justification: 'Second use',
            endsAt,
          },
        },
        'requester',
      );
      expect(conflict.statusCode).toBe(422);
      expect(conflict.json().code).toBe('ACCESS.PROVIDER_ACCOUNT_CONFLICT');
    }

    // The same identity showing up in another system's export is a finding.
    const imported = await importCsv(
      t,
      sys2,
      `preset=generic&mapping=${encodeURIComponent('externalId:login')}`,
      'login\nva-7\n',
    );
    expect(imported.statusCode).toBe(201);
    const conflicts = (await findingsOf(t, sys2)).filter(
      (finding) => finding.type === 'provider-account-conflict',
    );
    expect(conflicts).toHaveLength(1);

    const version = (await t.request({ method: 'GET', url: `/api/accounts/${accountId}` })).json()
      .version;
    const transfer = await t.request(
      {
        method: 'POST',
        url: `/api/accounts/${accountId}/transfer`,
        payload: {
          providerId: vendorB,
          sponsorUserId: t.users.manager.id,
          reason: 'Contract moved to VendorB',
          version,
        },
      },
      'security-approver',
    );
    expect(transfer.statusCode).toBe(200);
    expect(transfer.json().providerId).toBe(vendorB);
    const [event] = await superuserQuery<{ after: { transferReason: string } }>(
      t.databaseUrl,
      `SELECT after FROM audit_events WHERE action = 'account.transferred' AND entity_id = $1`,
      [accountId],
    );
    expect(event.after.transferReason).toBe('Contract moved to VendorB');
  });

  it('shows expiry at read time and opens one de-provisioning task', async () => {
    const systemId = await approvedSystem(t);
    const grantId = await requestGrant(t, {
      systemId,
      holderUserId: await createPerson(t, 'temp'),
      accountExternalId: 'temp-admin',
      privilege: 'admin',
      purpose: 'admin',
      mfa: 'enabled',
      endsAt: new Date(t.clock.now().getTime() + 2 * HOUR).toISOString(),
    });
    await approve(t, grantId, 'system-owner');
    const { accountId } = (await provision(t, grantId)).json();
    t.clock.advance(3 * HOUR);

    const grant = (await t.request({ method: 'GET', url: `/api/access-grants/${grantId}` })).json();
    expect(grant.status).toBe('expired');
    const account = (await t.request({ method: 'GET', url: `/api/accounts/${accountId}` })).json();
    expect(account.grantStatus).toBe('expired');

    const grants = t.app.get(GrantsService);
    expect(await grants.expireDue()).toBeGreaterThanOrEqual(1);
    await grants.expireDue();
    const tasks = await t.request({
      method: 'GET',
      url: `/api/deprovisioning-tasks?accountId=${accountId}`,
    });
    expect(tasks.json().items).toHaveLength(1);
    expect(tasks.json().items[0]).toMatchObject({
      trigger: 'grant-expired',
      triggerRefId: grantId,
      status: 'open',
      assigneeId: t.users['system-owner'].id,
    });
  });

  it('accepts the risk of a finding until its expiry', async () => {
    const systemId = await approvedSystem(t);
    await importCsv(
      t,
      systemId,
      'preset=aws-iam-credential-report',
      `${AWS_HEADER}\n${awsUser('eve', 'true')}\n`,
    );
    const [finding] = await findingsOf(t, systemId);
    const url = `/api/access-findings/${String(finding.id)}/accept-risk`;
    const noReason = await t.request(
      { method: 'POST', url, payload: { expiresAt: '2026-02-01T00:00:00Z', version: 1 } },
      'security-approver',
    );
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json().details.fields[0].field).toBe('reason');
    const owner = await t.request(
      {
        method: 'POST',
        url,
        payload: { reason: 'x', expiresAt: '2026-02-01T00:00:00Z', version: 1 },
      },
      'system-owner',
    );
    expect(owner.statusCode).toBe(403);
    const forever = await t.request(
      {
        method: 'POST',
        url,
        payload: { reason: 'Break-glass account', expiresAt: '9999-01-01T00:00:00Z', version: 1 },
      },
      'security-approver',
    );
    expect(forever.statusCode).toBe(400);
    expect(forever.json().details.fields[0].field).toBe('expiresAt');
    const accepted = await t.request(
      {
        method: 'POST',
        url,
        payload: { reason: 'Break-glass account', expiresAt: '2026-02-01T00:00:00Z', version: 1 },
      },
      'security-approver',
    );
    expect(accepted.statusCode).toBe(200);
    expect(accepted.json().status).toBe('risk-accepted');
    t.clock.set('2026-02-02T00:00:00Z');
    const [lapsed] = await findingsOf(t, systemId);
    expect(lapsed.status).toBe('open');
  });
});
