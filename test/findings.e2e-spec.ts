import { readFileSync } from 'node:fs';

import { Queue } from 'bullmq';

import { bundledKevFile } from '../src/common/project-root';
import { KEV_QUEUE } from '../src/vulnerabilities/kev-refresh';
import { startTestApp, TestApp } from './support/app';
import { createTestDatabase, superuserQuery } from './support/database';
import { TEST_REDIS_URL } from './support/env';
import { eventually, HttpFixture } from './support/http-fixture';

const BUNDLED = readFileSync(bundledKevFile(), 'utf8');
const DAY = 86_400_000;

interface Finding {
  id: string;
  vulnerabilityId: string;
  status: string;
  matchState: string;
  matchedBy: string;
  dueAt: string;
  slaDueAt: string;
  kevDueDate: string | null;
  knownRansomwareUse: boolean;
  version: number;
}

async function createSystem(
  t: TestApp,
  provider: string,
  product: string,
  criticality = 'critical',
): Promise<string> {
  let providerId: string;
  const created = await t.request({
    method: 'POST',
    url: '/api/providers',
    payload: { name: provider },
  });
  if (created.statusCode === 201) {
    providerId = created.json().id;
  } else {
    const list = await t.request({
      method: 'GET',
      url: `/api/providers?q=${encodeURIComponent(provider.trim())}`,
    });
    providerId = list.json().items[0].id;
  }
  const system = await t.request({
    method: 'POST',
    url: '/api/systems',
    payload: {
      providerId,
      name: `${product} ${criticality}`,
      product,
      category: 'remote-support',
      criticality,
    },
  });
  expect(system.statusCode).toBe(201);
  return system.json().id;
}

async function findings(t: TestApp, systemId: string, query = ''): Promise<Finding[]> {
  const response = await t.request({
    method: 'GET',
    url: `/api/systems/${systemId}/findings?limit=200${query}`,
  });
  expect(response.statusCode).toBe(200);
  return response.json().items;
}

function upload(t: TestApp, body: string) {
  return t.request({
    method: 'POST',
    url: '/api/kev/imports/upload',
    headers: { 'content-type': 'application/octet-stream' },
    payload: body,
  });
}

describe('vulnerability findings', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
    t.clock.set('2026-03-02T10:00:00Z');
  });

  afterAll(async () => {
    await t.close();
  });

  it('matches by normalised names, including trailing blanks and case', async () => {
    const screenConnect = await createSystem(t, 'ConnectWise', 'ScreenConnect');
    const simpleHelp = await createSystem(t, 'simplehelp', 'SIMPLEHELP', 'medium');
    const nCentral = await createSystem(t, 'N-Able', 'n central', 'high');
    expect(await findings(t, screenConnect)).toHaveLength(0);

    expect((await upload(t, BUNDLED)).statusCode).toBe(201);

    const sc = await findings(t, screenConnect);
    expect(sc.map((f) => f.vulnerabilityId).sort()).toEqual(['CVE-2024-1709', 'CVE-2025-3935']);
    const cve1709 = sc.find((f) => f.vulnerabilityId === 'CVE-2024-1709')!;
    expect(cve1709).toMatchObject({
      kevDueDate: '2024-02-29',
      knownRansomwareUse: true,
      matchedBy: 'name',
      matchState: 'pending',
      status: 'open',
      slaDueAt: '2026-03-09T10:00:00.000Z',
      dueAt: '2026-03-09T10:00:00.000Z',
    });

    // KEV lists the vendor as "SimpleHelp " with a trailing blank.
    expect((await findings(t, simpleHelp)).map((f) => f.vulnerabilityId)).toEqual([
      'CVE-2024-57727',
    ]);
    expect((await findings(t, nCentral)).map((f) => f.vulnerabilityId).sort()).toEqual([
      'CVE-2025-8875',
      'CVE-2025-8876',
    ]);
  });

  it('matches a newly registered system at once and through an alias', async () => {
    const teamCity = await createSystem(t, 'JetBrains', 'TeamCity', 'high');
    expect((await findings(t, teamCity)).length).toBe(2);

    const viewer = await createSystem(t, 'TeamViewer', 'TeamViewer Remote', 'low');
    expect(await findings(t, viewer)).toHaveLength(0);
    const alias = await t.request({
      method: 'POST',
      url: '/api/kev/aliases',
      payload: {
        providerName: 'teamviewer',
        productName: 'TeamViewer Remote',
        kevVendorProject: 'TeamViewer',
        kevProduct: 'Desktop',
        reason: 'Former product name',
      },
    });
    expect(alias.statusCode).toBe(201);
    const matched = await findings(t, viewer);
    expect(matched).toHaveLength(1);
    expect(matched[0]).toMatchObject({ vulnerabilityId: 'CVE-2019-18988', matchedBy: 'alias' });

    const duplicate = await t.request({
      method: 'POST',
      url: '/api/kev/aliases',
      payload: {
        providerName: 'TeamViewer ',
        productName: 'teamviewer remote',
        kevVendorProject: 'TEAMVIEWER',
        kevProduct: 'desktop',
        reason: 'Same alias spelled differently',
      },
    });
    expect(duplicate.statusCode).toBe(409);

    const removed = await t.request({
      method: 'DELETE',
      url: `/api/kev/aliases/${alias.json().id}`,
    });
    expect(removed.statusCode).toBe(204);
    expect(await findings(t, viewer)).toHaveLength(0);
  });

  it('keeps confirmations and dismissals through later imports', async () => {
    const system = await createSystem(t, 'Kaseya', 'Virtual System/Server Administrator (VSA)');
    const [first, second] = await findings(t, system, '&sort=vulnerabilityId');

    const noReason = await t.request({
      method: 'POST',
      url: `/api/findings/${first.id}/dismiss`,
      payload: { version: 1 },
    });
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json().details.fields[0].field).toBe('reason');

    const dismissed = await t.request({
      method: 'POST',
      url: `/api/findings/${first.id}/dismiss`,
      payload: { version: 1, reason: 'Cloud-hosted VSA; the provider patched it' },
    });
    expect(dismissed.statusCode).toBe(200);
    expect(dismissed.json()).toMatchObject({
      status: 'dismissed',
      matchState: 'dismissed',
      version: 2,
    });

    const confirmed = await t.request({
      method: 'POST',
      url: `/api/findings/${second.id}/confirm`,
      payload: { version: 1 },
    });
    expect(confirmed.json()).toMatchObject({ matchState: 'confirmed', status: 'open' });

    const stale = await t.request({
      method: 'POST',
      url: `/api/findings/${second.id}/dismiss`,
      payload: { version: 1, reason: 'Stale decision' },
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().code).toBe('FINDING.STALE_VERSION');

    // Re-import the same catalog, then a changed one: decisions stay.
    await upload(t, BUNDLED);
    const document = JSON.parse(BUNDLED) as {
      vulnerabilities: { cveID: string; dueDate: string }[];
    };
    for (const entry of document.vulnerabilities) {
      if (entry.cveID === first.vulnerabilityId) entry.dueDate = '2030-01-01';
    }
    expect((await upload(t, JSON.stringify(document))).json()).toMatchObject({ updated: 1 });

    const after = await findings(t, system, '&sort=vulnerabilityId');
    expect(after.find((f) => f.id === first.id)).toMatchObject({
      matchState: 'dismissed',
      status: 'dismissed',
    });
    expect(after.find((f) => f.id === second.id)).toMatchObject({ matchState: 'confirmed' });
    expect(after).toHaveLength(3);

    const events = await superuserQuery<{ action: string }>(
      t.databaseUrl,
      `SELECT action FROM audit_events WHERE entity_id = $1 ORDER BY seq`,
      [first.id],
    );
    expect(events.map((e) => e.action)).toEqual(['finding.matched', 'finding.dismissed']);
  });

  it('turns overdue as the clock passes the due date, and fixed when fixed', async () => {
    t.clock.set('2026-04-01T00:00:00Z');
    const system = await createSystem(t, 'Ivanti', 'Sentry', 'high');
    const [finding] = await findings(t, system);
    expect(finding).toMatchObject({
      vulnerabilityId: 'CVE-2023-38035',
      status: 'open',
      dueAt: '2026-04-15T00:00:00.000Z',
    });

    t.clock.set('2026-04-14T23:59:59Z');
    expect((await findings(t, system))[0].status).toBe('open');
    t.clock.set('2026-04-15T00:00:01Z');
    expect((await findings(t, system))[0].status).toBe('overdue');
    const overdue = await t.request({
      method: 'GET',
      url: `/api/findings?status=overdue&systemId=${system}`,
    });
    expect(overdue.json().items).toHaveLength(1);

    const fixed = await t.request({
      method: 'POST',
      url: `/api/findings/${finding.id}/fix`,
      payload: { version: 1, fixedVersion: '9.18.0' },
    });
    expect(fixed.statusCode).toBe(200);
    expect(fixed.json()).toMatchObject({
      status: 'fixed',
      fixedVersion: '9.18.0',
      fixedAt: '2026-04-15T00:00:01.000Z',
    });

    const again = await t.request({
      method: 'POST',
      url: `/api/findings/${finding.id}/fix`,
      payload: { version: 2, fixedVersion: '9.18.1' },
    });
    expect(again.statusCode).toBe(409);
  });

  it('records advisories outside KEV under the same rules', async () => {
    t.clock.set('2026-05-01T08:00:00Z');
    const system = await createSystem(t, 'PDQ', 'PDQ Deploy', 'medium');
    const created = await t.request({
      method: 'POST',
      url: '/api/findings/advisories',
      payload: {
        systemId: system,
        advisoryId: 'PDQ-SA-2026-01',
        title: 'Credential exposure in the console',
        severity: 'high',
        dueDate: '2026-05-10',
      },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      source: 'advisory',
      vulnerabilityId: 'PDQ-SA-2026-01',
      advisoryDueDate: '2026-05-10',
      dueAt: '2026-05-31T08:00:00.000Z',
      status: 'open',
    });

    const duplicate = await t.request({
      method: 'POST',
      url: '/api/findings/advisories',
      payload: { systemId: system, advisoryId: 'PDQ-SA-2026-01', title: 'Again', severity: 'high' },
    });
    expect(duplicate.statusCode).toBe(409);

    const invalid = await t.request({
      method: 'POST',
      url: '/api/findings/advisories',
      payload: {
        systemId: 'x',
        advisoryId: '!',
        title: '',
        severity: 'urgent',
        dueDate: '2026-13-01',
        extra: 1,
      },
    });
    expect(invalid.statusCode).toBe(400);
    const fields = invalid.json().details.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(
      expect.arrayContaining(['systemId', 'advisoryId', 'title', 'severity', 'dueDate', 'extra']),
    );

    const retiredSystem = await createSystem(t, 'PDQ', 'PDQ Inventory', 'low');
    await t.request({
      method: 'POST',
      url: `/api/systems/${retiredSystem}/retire`,
      payload: { version: 1, reason: 'Replaced' },
    });
    const onRetired = await t.request({
      method: 'POST',
      url: '/api/findings/advisories',
      payload: { systemId: retiredSystem, advisoryId: 'PDQ-SA-1', title: 'x', severity: 'low' },
    });
    expect(onRetired.statusCode).toBe(409);
    expect(onRetired.json().code).toBe('SYSTEM.RETIRED');

    const unknown = await t.request({
      method: 'POST',
      url: '/api/findings/advisories',
      payload: {
        systemId: '00000000-0000-4000-8000-000000000009',
        advisoryId: 'X-1',
        title: 'x',
        severity: 'low',
      },
    });
    expect(unknown.statusCode).toBe(404);
  });

  it('rejects bad finding queries and ids by name', async () => {
    const response = await t.request({
      method: 'GET',
      url: '/api/findings?status=late&knownRansomwareUse=maybe',
    });
    expect(response.statusCode).toBe(400);
    const fields = response.json().details.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['status', 'knownRansomwareUse']));

    expect((await t.request({ method: 'GET', url: '/api/findings/not-a-uuid' })).statusCode).toBe(
      400,
    );
    expect(
      (
        await t.request({
          method: 'GET',
          url: '/api/findings/00000000-0000-4000-8000-000000000000',
        })
      ).statusCode,
    ).toBe(404);
    expect((await t.request({ method: 'GET', url: '/api/kev/entries/CVE-1' })).statusCode).toBe(
      400,
    );
  });
});

describe('KEV due date binding', () => {
  it('makes an earlier KEV due date binding when the setting is on', async () => {
    const t = await startTestApp({ env: { KEV_DUE_DATE_BINDING: 'true' } });
    try {
      t.clock.set('2025-08-25T12:00:00Z');
      await upload(t, BUNDLED);
      // CVE-2025-8875 has a KEV due date of 2025-08-20, before a 90-day SLA for a low system.
      const system = await createSystem(t, 'N-able', 'N-Central', 'low');
      const finding = (await findings(t, system)).find(
        (f) => f.vulnerabilityId === 'CVE-2025-8875',
      )!;
      expect(finding.slaDueAt).toBe('2025-11-23T12:00:00.000Z');
      expect(finding.kevDueDate).toBe('2025-08-20');
      expect(finding.dueAt).toBe('2025-08-21T00:00:00.000Z');
      expect(finding.status).toBe('overdue');
    } finally {
      await t.close();
    }
  });
});

describe('demo organisation', () => {
  it('seeds an empty database once, with real findings', async () => {
    const databaseUrl = await createTestDatabase();
    const first = await startTestApp({ databaseUrl, env: { SEED_DEMO: 'true' } });
    try {
      const systems = await first.request({ method: 'GET', url: '/api/systems?q=ScreenConnect' });
      const [screenConnect] = systems.json().items;
      expect(screenConnect.product).toBe('ScreenConnect');
      const list = await findings(first, screenConnect.id, '&vulnerabilityId=CVE-2024-1709');
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({
        kevDueDate: '2024-02-29',
        knownRansomwareUse: true,
        status: 'open',
      });
      expect(list[0].dueAt).toBe(new Date(first.clock.now().getTime() + 7 * DAY).toISOString());

      const approval = await first.request({
        method: 'GET',
        url: `/api/systems/${screenConnect.id}/approval`,
      });
      expect(approval.json()).toMatchObject({ approved: true, status: 'approved' });
      const requests = await first.request({ method: 'GET', url: '/api/tool-requests?limit=50' });
      const statuses = requests.json().items.map((r: { status: string }) => r.status);
      expect(statuses.filter((status: string) => status === 'approved')).toHaveLength(10);
      expect(statuses.filter((status: string) => status === 'submitted')).toHaveLength(1);
      const campaigns = await first.request({ method: 'GET', url: '/api/review-campaigns' });
      expect(campaigns.json().items).toHaveLength(2);
      expect(campaigns.json().items[0].progress).toMatchObject({ total: 3, undecided: 3 });
      const verify = await first.request({ method: 'GET', url: '/api/audit/verify' });
      expect(verify.json().valid).toBe(true);

      const imports = await first.request({ method: 'GET', url: '/api/kev/imports' });
      expect(imports.json().items[0]).toMatchObject({
        entries: 1404,
        added: 1404,
        status: 'succeeded',
      });
    } finally {
      await first.close();
    }

    const [{ count: before }] = await superuserQuery<{ count: string }>(
      databaseUrl,
      `SELECT (SELECT count(*) FROM providers) || '/' || (SELECT count(*) FROM systems) || '/' || (SELECT count(*) FROM kev_imports) || '/' || (SELECT count(*) FROM product_aliases) AS count`,
    );
    const second = await startTestApp({ databaseUrl, env: { SEED_DEMO: 'true' } });
    await second.close();
    const [{ count: after }] = await superuserQuery<{ count: string }>(
      databaseUrl,
      `SELECT (SELECT count(*) FROM providers) || '/' || (SELECT count(*) FROM systems) || '/' || (SELECT count(*) FROM kev_imports) || '/' || (SELECT count(*) FROM product_aliases) AS count`,
    );
    expect(after).toBe(before);
  });

  it('leaves a database with data alone', async () => {
    const databaseUrl = await createTestDatabase();
    const setup = await startTestApp({ databaseUrl });
    await setup.request({ method: 'POST', url: '/api/providers', payload: { name: 'Existing' } });
    await setup.close();

    const seeded = await startTestApp({ databaseUrl, env: { SEED_DEMO: 'true' } });
    try {
      const providers = await seeded.request({ method: 'GET', url: '/api/providers' });
      expect(providers.json().items.map((p: { name: string }) => p.name)).toEqual(['Existing']);
    } finally {
      await seeded.close();
    }
  });
});

describe('KEV refresh schedule', () => {
  it('keeps one schedule across instances and imports from KEV_URL', async () => {
    const fixture = new HttpFixture();
    await fixture.start();
    fixture.serve('/kev.json', BUNDLED);
    const databaseUrl = await createTestDatabase();
    const env = { KEV_URL: fixture.url('/kev.json'), KEV_REFRESH_CRON: '*/1 * * * * *' };
    const first = await startTestApp({ databaseUrl, env });
    const second = await startTestApp({
      databaseUrl,
      env: { ...env, QUEUE_PREFIX: first.queuePrefix },
    });
    const queue = new Queue(KEV_QUEUE, {
      connection: { url: TEST_REDIS_URL },
      prefix: first.queuePrefix,
    });
    try {
      const imported = await eventually(async () => {
        const [row] = await superuserQuery<{ added: number }>(
          databaseUrl,
          `SELECT added FROM kev_imports WHERE status = 'succeeded' ORDER BY started_at LIMIT 1`,
        );
        return row;
      });
      expect(imported.added).toBe(1404);
      expect(fixture.requests).toContain('/kev.json');

      const schedulers = await queue.getJobSchedulers();
      expect(schedulers.map((s) => s.key)).toEqual(['kev-refresh']);
    } finally {
      await queue.close();
      await first.close();
      await second.close();
      await fixture.stop();
    }
  });
});
