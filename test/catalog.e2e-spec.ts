import { superuserQuery } from './support/database';
import { startTestApp, TestApp } from './support/app';

describe('catalog', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ env: { BODY_LIMIT_BYTES: '4096' } });
  });

  afterAll(async () => {
    await t.close();
  });

  async function createProvider(name: string): Promise<{ id: string; version: number }> {
    const response = await t.request({ method: 'POST', url: '/api/providers', payload: { name } });
    expect(response.statusCode).toBe(201);
    return response.json();
  }

  function systemBody(
    providerId: string,
    overrides: Record<string, unknown> = {},
  ): Record<string, unknown> {
    return {
      providerId,
      name: 'Support desk',
      product: 'ScreenConnect',
      productVersion: '23.9.7',
      category: 'remote-support',
      criticality: 'critical',
      ownerEmail: 'Owner@Example.com',
      hosts: [{ hostname: 'sc01.corp.example.com', address: '10.0.0.5', role: 'application' }],
      networkZone: 'management',
      deploysSoftware: false,
      ...overrides,
    };
  }

  describe('providers', () => {
    it('creates, reads, updates and lists a provider', async () => {
      const created = await createProvider('ConnectWise');

      const read = await t.request({ method: 'GET', url: `/api/providers/${created.id}` });
      expect(read.statusCode).toBe(200);
      expect(read.json().name).toBe('ConnectWise');

      const updated = await t.request({
        method: 'PATCH',
        url: `/api/providers/${created.id}`,
        payload: { website: 'https://www.connectwise.com', version: 1 },
      });
      expect(updated.statusCode).toBe(200);
      expect(updated.json()).toMatchObject({ website: 'https://www.connectwise.com', version: 2 });

      const list = await t.request({ method: 'GET', url: '/api/providers?q=connect' });
      expect(list.statusCode).toBe(200);
      expect(list.json().items.map((p: { id: string }) => p.id)).toContain(created.id);
    });

    it('rejects a duplicate name ignoring case and spaces', async () => {
      await createProvider('Kaseya');
      const duplicate = await t.request({
        method: 'POST',
        url: '/api/providers',
        payload: { name: '  KASEYA ' },
      });
      expect(duplicate.statusCode).toBe(409);
      expect(duplicate.json().code).toBe('PROVIDER.DUPLICATE_NAME');
    });

    it('lists each bad field of a provider body', async () => {
      const response = await t.request({
        method: 'POST',
        url: '/api/providers',
        payload: { name: 42, website: 'not a url', extra: true },
      });
      expect(response.statusCode).toBe(400);
      const fields = response.json().details.fields.map((f: { field: string }) => f.field);
      expect(fields).toEqual(expect.arrayContaining(['name', 'website', 'extra']));
    });

    it('rejects a stale version with the current one', async () => {
      const provider = await createProvider('N-able');
      await t.request({
        method: 'PATCH',
        url: `/api/providers/${provider.id}`,
        payload: { description: 'a', version: 1 },
      });
      const stale = await t.request({
        method: 'PATCH',
        url: `/api/providers/${provider.id}`,
        payload: { description: 'b', version: 1 },
      });
      expect(stale.statusCode).toBe(409);
      expect(stale.json()).toMatchObject({
        code: 'PROVIDER.STALE_VERSION',
        details: { currentVersion: 2 },
      });
    });

    it('returns 404 for an unknown provider and 400 for a malformed id', async () => {
      const unknown = await t.request({
        method: 'GET',
        url: '/api/providers/00000000-0000-4000-8000-000000000000',
      });
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json().code).toBe('PROVIDER.NOT_FOUND');

      const malformed = await t.request({
        method: 'PATCH',
        url: "/api/providers/1'or'1",
        payload: { version: 1 },
      });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json().details.fields[0].field).toBe('id');
    });
  });

  describe('systems', () => {
    let providerId: string;

    beforeAll(async () => {
      providerId = (await createProvider('ConnectWise Control')).id;
    });

    it('creates a system and normalises owner and host names', async () => {
      const response = await t.request({
        method: 'POST',
        url: '/api/systems',
        payload: systemBody(providerId, { hosts: [{ hostname: 'SC02.Corp.Example.com' }] }),
      });
      expect(response.statusCode).toBe(201);
      const system = response.json();
      expect(system).toMatchObject({
        providerId,
        ownerEmail: 'owner@example.com',
        hosts: [{ hostname: 'sc02.corp.example.com' }],
        lifecycleStatus: 'active',
        version: 1,
      });

      const read = await t.request({ method: 'GET', url: `/api/systems/${system.id}` });
      expect(read.statusCode).toBe(200);
      expect(read.json().name).toBe('Support desk');
    });

    it('rejects a duplicate name under the same provider, ignoring case', async () => {
      await t.request({
        method: 'POST',
        url: '/api/systems',
        payload: systemBody(providerId, { name: 'Helpdesk' }),
      });
      const duplicate = await t.request({
        method: 'POST',
        url: '/api/systems',
        payload: systemBody(providerId, { name: 'HELPDESK' }),
      });
      expect(duplicate.statusCode).toBe(409);
      expect(duplicate.json().code).toBe('SYSTEM.DUPLICATE_NAME');

      const otherProvider = await createProvider('BeyondTrust');
      const sameNameElsewhere = await t.request({
        method: 'POST',
        url: '/api/systems',
        payload: systemBody(otherProvider.id, { name: 'Helpdesk' }),
      });
      expect(sameNameElsewhere.statusCode).toBe(201);
    });

    it('reports wrong types per field, nested host fields included', async () => {
      const response = await t.request({
        method: 'POST',
        url: '/api/systems',
        payload: {
          providerId: 'nope',
          name: '',
          product: ['x'],
          category: 'toaster',
          criticality: 5,
          ownerEmail: 'not-an-email',
          hosts: [
            { hostname: 'ok.example.com' },
            { hostname: 'bad host!', address: '999.1.1.1', color: 'red' },
          ],
          deploysSoftware: 'yes',
          unknownField: 1,
        },
      });
      expect(response.statusCode).toBe(400);
      const body = response.json();
      expect(body.code).toBe('REQUEST.INVALID');
      const fields = body.details.fields.map((f: { field: string }) => f.field);
      for (const field of [
        'providerId',
        'name',
        'product',
        'category',
        'criticality',
        'ownerEmail',
        'hosts.1.hostname',
        'hosts.1.address',
        'hosts.1.color',
        'deploysSoftware',
        'unknownField',
      ]) {
        expect(fields).toContain(field);
      }
      expect(fields).not.toContain('hosts.0.hostname');
    });

    it('returns 404 when the provider does not exist', async () => {
      const response = await t.request({
        method: 'POST',
        url: '/api/systems',
        payload: systemBody('00000000-0000-4000-8000-000000000001', { name: 'Orphan' }),
      });
      expect(response.statusCode).toBe(404);
      expect(response.json().code).toBe('PROVIDER.NOT_FOUND');
    });

    it('rejects a body over the limit with 413 and writes nothing', async () => {
      const before = await t.request({ method: 'GET', url: '/api/systems?limit=200' });
      const response = await t.request({
        method: 'POST',
        url: '/api/systems',
        payload: systemBody(providerId, { name: 'Big', networkZone: 'z'.repeat(5000) }),
      });
      expect(response.statusCode).toBe(413);
      expect(response.json().code).toBe('REQUEST.TOO_LARGE');
      const after = await t.request({ method: 'GET', url: '/api/systems?limit=200' });
      expect(after.json().items).toHaveLength(before.json().items.length);
    });

    it('rejects prototype keys and grants nothing', async () => {
      for (const raw of [
        `{"name":"P1","product":"x","__proto__":{"isAdmin":true}}`,
        `{"name":"P2","product":"x","constructor":{"prototype":{"isAdmin":true}}}`,
      ]) {
        const response = await t.request({
          method: 'POST',
          url: '/api/systems',
          headers: { 'content-type': 'application/json' },
          payload: raw,
        });
        expect(response.statusCode).toBe(400);
      }
      expect(({} as { isAdmin?: boolean }).isAdmin).toBeUndefined();
    });

    it('rejects bodies that are not JSON with 415', async () => {
      for (const [contentType, payload] of [
        ['text/csv', 'name\nCSV Vendor\n'],
        ['application/x-www-form-urlencoded', 'name=Form+Vendor'],
        ['application/octet-stream', '{"name":"Raw Vendor"}'],
      ]) {
        const response = await t.request({
          method: 'POST',
          url: '/api/providers',
          headers: { 'content-type': contentType },
          payload,
        });
        expect(response.statusCode).toBe(415);
        expect(response.json().code).toBe('REQUEST.UNSUPPORTED_MEDIA_TYPE');
      }
      const list = await t.request({ method: 'GET', url: '/api/providers?q=Vendor' });
      expect(list.json().items).toHaveLength(0);
    });

    it('rejects NUL characters and deep nesting by field, before any write', async () => {
      const nulBody = await t.request({
        method: 'POST',
        url: '/api/providers',
        payload: { name: 'Null\u0000Vendor' },
      });
      expect(nulBody.statusCode).toBe(400);
      expect(nulBody.json().details.fields[0].field).toBe('name');

      const nulQuery = await t.request({ method: 'GET', url: '/api/systems?q=%00' });
      expect(nulQuery.statusCode).toBe(400);
      expect(nulQuery.json().details.fields[0].field).toBe('q');

      const nested = `{"email":"a@b.c","password":"x","x":${'['.repeat(1500)}${']'.repeat(1500)}}`;
      const deep = await t.request(
        {
          method: 'POST',
          url: '/api/auth/sign-in',
          headers: { 'content-type': 'application/json' },
          payload: nested,
        },
        'anonymous',
      );
      expect(deep.statusCode).toBe(400);
      expect(deep.json().message).toContain('nested deeper');

      const list = await t.request({ method: 'GET', url: '/api/providers?q=Null' });
      expect(list.json().items).toHaveLength(0);
    });

    it('returns 400 for malformed JSON, 404 for unknown ids and unknown routes', async () => {
      const malformed = await t.request({
        method: 'POST',
        url: '/api/systems',
        headers: { 'content-type': 'application/json' },
        payload: '{"name": ',
      });
      expect(malformed.statusCode).toBe(400);

      const unknown = await t.request({
        method: 'GET',
        url: '/api/systems/00000000-0000-4000-8000-000000000002',
      });
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json().code).toBe('SYSTEM.NOT_FOUND');

      const route = await t.request({ method: 'GET', url: '/api/nothing-here' });
      expect(route.statusCode).toBe(404);
      expect(route.json().code).toBe('ROUTE.NOT_FOUND');
    });

    it('updates with the current version and rejects a stale one', async () => {
      const created = (
        await t.request({
          method: 'POST',
          url: '/api/systems',
          payload: systemBody(providerId, { name: 'Versioned' }),
        })
      ).json();
      const updated = await t.request({
        method: 'PATCH',
        url: `/api/systems/${created.id}`,
        payload: { criticality: 'high', hosts: [{ hostname: 'new.example.com' }], version: 1 },
      });
      expect(updated.statusCode).toBe(200);
      expect(updated.json()).toMatchObject({
        criticality: 'high',
        version: 2,
        hosts: [{ hostname: 'new.example.com' }],
      });

      const stale = await t.request({
        method: 'PATCH',
        url: `/api/systems/${created.id}`,
        payload: { criticality: 'low', version: 1 },
      });
      expect(stale.statusCode).toBe(409);
      expect(stale.json().code).toBe('SYSTEM.STALE_VERSION');

      const missingVersion = await t.request({
        method: 'PATCH',
        url: `/api/systems/${created.id}`,
        payload: { criticality: 'low' },
      });
      expect(missingVersion.statusCode).toBe(400);
      expect(missingVersion.json().details.fields[0].field).toBe('version');

      const movedProvider = await t.request({
        method: 'PATCH',
        url: `/api/systems/${created.id}`,
        payload: { providerId, version: 2 },
      });
      expect(movedProvider.statusCode).toBe(400);
    });

    it('retires a system, which then rejects changes', async () => {
      const created = (
        await t.request({
          method: 'POST',
          url: '/api/systems',
          payload: systemBody(providerId, { name: 'Old RMM' }),
        })
      ).json();
      const noReason = await t.request({
        method: 'POST',
        url: `/api/systems/${created.id}/retire`,
        payload: { version: 1 },
      });
      expect(noReason.statusCode).toBe(400);

      const retired = await t.request({
        method: 'POST',
        url: `/api/systems/${created.id}/retire`,
        payload: { version: 1, reason: 'Replaced' },
      });
      expect(retired.statusCode).toBe(200);
      expect(retired.json()).toMatchObject({ lifecycleStatus: 'retired', version: 2 });
      expect(retired.json().retiredAt).toBe(t.clock.now().toISOString());

      const edit = await t.request({
        method: 'PATCH',
        url: `/api/systems/${created.id}`,
        payload: { name: 'Revived', version: 2 },
      });
      expect(edit.statusCode).toBe(409);
      expect(edit.json().code).toBe('SYSTEM.RETIRED');
    });

    it('filters, sorts and pages the list', async () => {
      const filtered = await t.request({
        method: 'GET',
        url: `/api/systems?lifecycleStatus=retired`,
      });
      expect(filtered.statusCode).toBe(200);
      expect(
        filtered
          .json()
          .items.every((s: { lifecycleStatus: string }) => s.lifecycleStatus === 'retired'),
      ).toBe(true);

      const page1 = (
        await t.request({ method: 'GET', url: '/api/systems?limit=2&sort=name' })
      ).json();
      expect(page1.items).toHaveLength(2);
      expect(page1.nextOffset).toBe(2);
      const page2 = (
        await t.request({ method: 'GET', url: '/api/systems?limit=2&offset=2&sort=name' })
      ).json();
      expect(page2.items[0].id).not.toBe(page1.items[1].id);
      expect(page1.items[0].name <= page1.items[1].name).toBe(true);

      const byCriticality = (
        await t.request({ method: 'GET', url: '/api/systems?sort=criticality&limit=200' })
      ).json();
      const ranks = byCriticality.items.map((s: { criticality: string }) =>
        ['critical', 'high', 'medium', 'low'].indexOf(s.criticality),
      );
      expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    });

    it('rejects bad list parameters by name', async () => {
      const response = await t.request({
        method: 'GET',
        url: '/api/systems?limit=0&offset=-1&sort=password&category=toaster&providerId=x&extra=1',
      });
      expect(response.statusCode).toBe(400);
      const fields = response.json().details.fields.map((f: { field: string }) => f.field);
      expect(fields).toEqual(
        expect.arrayContaining(['limit', 'offset', 'sort', 'category', 'providerId', 'extra']),
      );
    });

    it('audits each change with the state before and after', async () => {
      const created = (
        await t.request({
          method: 'POST',
          url: '/api/systems',
          payload: systemBody(providerId, { name: 'Audited' }),
        })
      ).json();
      await t.request({
        method: 'PATCH',
        url: `/api/systems/${created.id}`,
        payload: { productVersion: '24.1', version: 1 },
      });
      const events = await superuserQuery<{
        action: string;
        before: { productVersion: string } | null;
        after: { productVersion: string };
      }>(
        t.databaseUrl,
        `SELECT action, before, after FROM audit_events WHERE entity_id = $1 ORDER BY seq`,
        [created.id],
      );
      expect(events.map((e) => e.action)).toEqual(['system.created', 'system.updated']);
      expect(events[1].before?.productVersion).toBe('23.9.7');
      expect(events[1].after.productVersion).toBe('24.1');
    });
  });
});
