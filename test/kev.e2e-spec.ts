import { readFileSync } from 'node:fs';

import { bundledKevFile } from '../src/common/project-root';
import { parseJsonCatalog, toCsv } from '../src/vulnerabilities/kev-catalog';
import { startTestApp, TestApp } from './support/app';
import { superuserQuery } from './support/database';
import { HttpFixture } from './support/http-fixture';

const BUNDLED = readFileSync(bundledKevFile(), 'utf8');
const BUNDLED_ENTRIES = parseJsonCatalog(BUNDLED).entries;

type RawEntry = Record<string, unknown>;

function bundledDocument(): { vulnerabilities: RawEntry[]; count: number } & RawEntry {
  return JSON.parse(BUNDLED) as { vulnerabilities: RawEntry[]; count: number } & RawEntry;
}

describe('KEV catalog intake', () => {
  let t: TestApp;
  const fixture = new HttpFixture();

  beforeAll(async () => {
    await fixture.start();
    t = await startTestApp({ env: { KEV_MAX_BYTES: String(5 * 1_048_576) } });
  });

  afterAll(async () => {
    await t.close();
    await fixture.stop();
  });

  function upload(body: string, contentType = 'application/octet-stream', query = '') {
    return t.request({
      method: 'POST',
      url: `/api/kev/imports/upload${query}`,
      headers: { 'content-type': contentType },
      payload: body,
    });
  }

  /** Fingerprint of the stored catalog, to prove a failed import changed nothing. */
  async function catalogState(): Promise<string> {
    const [row] = await superuserQuery<{ state: string }>(
      t.databaseUrl,
      `SELECT count(*) || ':' || coalesce(md5(string_agg(cve_id || content_hash || coalesce(withdrawn_at::text, ''), ',' ORDER BY cve_id)), '') AS state
         FROM kev_entries`,
    );
    return row.state;
  }

  it('imports the bundled catalog, then again and as CSV without changes', async () => {
    const first = await upload(BUNDLED);
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({
      format: 'json',
      catalogVersion: '2025.08.25',
      entries: 1404,
      added: 1404,
      updated: 0,
      withdrawn: 0,
    });

    const again = await upload(BUNDLED);
    expect(again.json()).toMatchObject({
      entries: 1404,
      added: 0,
      updated: 0,
      withdrawn: 0,
      unchanged: 1404,
    });

    const csv = await upload(toCsv(BUNDLED_ENTRIES), 'text/csv');
    expect(csv.statusCode).toBe(201);
    expect(csv.json()).toMatchObject({
      format: 'csv',
      entries: 1404,
      added: 0,
      updated: 0,
      withdrawn: 0,
    });

    const entry = await t.request({ method: 'GET', url: '/api/kev/entries/cve-2024-1709' });
    expect(entry.json()).toMatchObject({
      cveId: 'CVE-2024-1709',
      dueDate: '2024-02-29',
      knownRansomwareUse: true,
      cwes: ['CWE-288'],
    });
  });

  it('reads CSV with quoted commas in the cwes field', async () => {
    const entry = BUNDLED_ENTRIES.find((e) => e.cwes.length > 1)!;
    expect(entry).toBeDefined();
    const csv = toCsv(BUNDLED_ENTRIES);
    expect(csv).toContain(`"${entry.cwes.join(', ')}"`);
    const stored = await t.request({ method: 'GET', url: `/api/kev/entries/${entry.cveId}` });
    expect(stored.json().cwes).toEqual(entry.cwes);
  });

  it('adds, updates and withdraws entries from a newer catalog', async () => {
    const document = bundledDocument();
    const [changed, ...rest] = document.vulnerabilities;
    const removed = rest.slice(0, 3).map((entry) => entry.cveID as string);
    const newer = {
      ...document,
      catalogVersion: '2025.08.26',
      vulnerabilities: [
        { ...changed, dueDate: '2025-10-01' },
        ...rest.slice(3),
        { ...changed, cveID: 'CVE-2099-0001', vendorProject: 'Example', product: 'Widget' },
        { ...changed, cveID: 'CVE-2099-0002', vendorProject: 'Example', product: 'Gadget' },
      ],
    };
    newer.count = newer.vulnerabilities.length;

    const response = await upload(JSON.stringify(newer));
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({
      added: 2,
      updated: 1,
      withdrawn: 3,
      catalogVersion: '2025.08.26',
    });

    const withdrawn = await t.request({ method: 'GET', url: `/api/kev/entries/${removed[0]}` });
    expect(withdrawn.json().withdrawnAt).not.toBeNull();
    const listed = await t.request({ method: 'GET', url: `/api/kev/entries?q=${removed[0]}` });
    expect(listed.json().items).toHaveLength(0);

    // The original catalog lists the withdrawn entries again and drops the two new ones.
    const back = await upload(BUNDLED);
    expect(back.json()).toMatchObject({ added: 0, updated: 4, withdrawn: 2 });
  });

  describe('malformed input leaves the catalog unchanged', () => {
    const document = bundledDocument();
    const cases: [string, string, string, number, RegExp][] = [
      ['empty file', '', 'application/octet-stream', 400, /empty/],
      ['broken JSON', '{"vulnerabilities": [', 'application/octet-stream', 400, /not valid JSON/],
      [
        'JSON that is not KEV',
        '{"hello": "world"}',
        'application/octet-stream',
        400,
        /Not a KEV catalog/,
      ],
      [
        'entry with a bad date and CVE id',
        JSON.stringify({
          ...document,
          vulnerabilities: [
            { ...document.vulnerabilities[0], dueDate: '2025-02-30', cveID: 'CVE-25-1' },
          ],
          count: 1,
        }),
        'application/octet-stream',
        400,
        /vulnerabilities\[0\]\.cveID/,
      ],
      [
        'entry without a required field',
        JSON.stringify({
          ...document,
          vulnerabilities: [{ ...document.vulnerabilities[0], product: undefined }],
          count: 1,
        }),
        'application/octet-stream',
        400,
        /vulnerabilities\[0\]\.product: missing/,
      ],
      [
        'count that disagrees with the list',
        JSON.stringify({ ...document, count: 5 }),
        'application/octet-stream',
        400,
        /count is 5/,
      ],
      [
        'duplicate CVE id',
        JSON.stringify({
          ...document,
          vulnerabilities: [document.vulnerabilities[0], document.vulnerabilities[0]],
          count: 2,
        }),
        'application/octet-stream',
        400,
        /listed twice/,
      ],
      [
        'CSV without KEV columns',
        'name,age\nx,1\n',
        'text/csv',
        400,
        /Not a KEV catalog: the CSV header lacks/,
      ],
      [
        'CSV with an unclosed quote',
        `${toCsv(BUNDLED_ENTRIES.slice(0, 3))}"CVE-2024-0001,"unterminated\n`,
        'text/csv',
        400,
        /not valid CSV/,
      ],
      [
        'CSV with a bad value on line 3',
        toCsv([BUNDLED_ENTRIES[0], { ...BUNDLED_ENTRIES[1], dateAdded: 'yesterday' }]),
        'text/csv',
        400,
        /line 3, dateAdded/,
      ],
    ];

    it.each(cases)('rejects %s', async (_name, body, contentType, status, message) => {
      const before = await catalogState();
      const response = await upload(body, contentType);
      expect(response.statusCode).toBe(status);
      expect(response.json().message).toMatch(message);
      expect(response.json().message).toContain('the stored catalog is unchanged');
      expect(await catalogState()).toBe(before);
    });

    it('records the failure with its reason in the import history', async () => {
      const history = await t.request({ method: 'GET', url: '/api/kev/imports?limit=50' });
      const errors = history
        .json()
        .items.filter((entry: { status: string }) => entry.status === 'failed')
        .map((entry: { error: string }) => entry.error);
      expect(errors).toEqual(expect.arrayContaining([expect.stringMatching(/line 3, dateAdded/)]));
    });

    it('rejects a failed download and keeps the catalog', async () => {
      fixture.serve('/broken.json', 'upstream error', 500);
      const before = await catalogState();
      const response = await t.request({
        method: 'POST',
        url: '/api/kev/imports',
        payload: { url: fixture.url('/broken.json') },
      });
      expect(response.statusCode).toBe(502);
      expect(response.json().code).toBe('KEV.DOWNLOAD_FAILED');
      expect(response.json().message).toContain('HTTP 500');
      expect(await catalogState()).toBe(before);
    });

    it('rejects a catalog that would withdraw most entries unless allowed', async () => {
      const before = await catalogState();
      const truncated = JSON.stringify({
        ...document,
        vulnerabilities: document.vulnerabilities.slice(0, 10),
        count: 10,
      });
      const response = await upload(truncated);
      expect(response.statusCode).toBe(409);
      expect(response.json().code).toBe('KEV.MASS_WITHDRAWAL');
      expect(await catalogState()).toBe(before);
    });

    it('rejects a non-file body, a file over the limit and a bad URL', async () => {
      const json = await t.request({
        method: 'POST',
        url: '/api/kev/imports/upload',
        payload: { a: 1 },
      });
      expect(json.statusCode).toBe(415);

      const big = await upload('x'.repeat(5 * 1_048_576 + 10));
      expect(big.statusCode).toBe(413);

      const notUrl = await t.request({
        method: 'POST',
        url: '/api/kev/imports',
        payload: { url: 'file:///etc/passwd' },
      });
      expect(notUrl.statusCode).toBe(400);
      expect(notUrl.json().details.fields[0].field).toBe('url');
    });
  });

  it('imports from a URL', async () => {
    fixture.serve('/kev.json', BUNDLED);
    const response = await t.request({
      method: 'POST',
      url: '/api/kev/imports',
      payload: { url: fixture.url('/kev.json') },
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({ entries: 1404, added: 0, updated: 0, withdrawn: 0 });
    expect(response.json().source).toBe(fixture.url('/kev.json'));
  });
});
