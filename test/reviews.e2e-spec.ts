import { randomBytes, randomUUID } from 'node:crypto';

import { CampaignsService } from '../src/reviews/campaigns.service';
import { ReminderQueue } from '../src/reviews/reminders/reminder-queue';
import { startTestApp, TestApp, TestUser } from './support/app';
import { superuserQuery } from './support/database';

const DAY = 86_400_000;

interface Item {
  id: string;
  accountId: string;
  holderUserId: string | null;
  reviewerId: string | null;
  assignedReason: string | null;
  decision: string | null;
  outcome: string | null;
  effectiveOutcome: string | null;
  version: number;
}

describe('access reviews', () => {
  let t: TestApp;
  let providerId: string;

  beforeAll(async () => {
    t = await startTestApp();
    const provider = await t.request({
      method: 'POST',
      url: '/api/providers',
      payload: { name: 'N-able' },
    });
    providerId = provider.json().id;
  });

  afterAll(async () => {
    await t.close();
  });

  async function createSystem(ownerId: string): Promise<string> {
    const response = await t.request({
      method: 'POST',
      url: '/api/systems',
      payload: {
        providerId,
        name: `N-central ${randomBytes(3).toString('hex')}`,
        product: 'N-central',
        category: 'remote-management',
        criticality: 'high',
        ownerId,
      },
    });
    expect(response.statusCode).toBe(201);
    return response.json().id;
  }

  async function addAccount(
    systemId: string,
    holder: { userId?: string; providerId?: string; sponsorId?: string },
    privilege = 'standard',
  ): Promise<string> {
    const [row] = await superuserQuery<{ id: string }>(
      t.databaseUrl,
      `INSERT INTO accounts (system_id, external_id, name, holder_type, holder_user_id, provider_id,
          sponsor_user_id, privilege, purpose, mfa_state, status, origin, created_at, updated_at)
       VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, 'enabled', 'active', 'granted', now(), now())
       RETURNING id`,
      [
        systemId,
        `acct-${randomBytes(4).toString('hex')}`,
        holder.providerId ? 'provider' : 'user',
        holder.userId ?? null,
        holder.providerId ?? null,
        holder.sponsorId ?? null,
        privilege,
        privilege === 'admin' ? 'admin' : 'everyday',
      ],
    );
    return row.id;
  }

  async function setPolicy(
    systemId: string,
    fallbackReviewerId: string,
    overrides: Record<string, unknown> = {},
  ): Promise<void> {
    const response = await t.request({
      method: 'PUT',
      url: `/api/systems/${systemId}/review-policy`,
      payload: {
        adminCadenceDays: 90,
        standardCadenceDays: 180,
        reviewerRule: 'holder-manager',
        fallbackReviewerId,
        durationDays: 14,
        graceDays: 3,
        undecidedAction: 'revoke',
        ...overrides,
      },
    });
    expect(response.statusCode).toBe(200);
  }

  async function openCampaign(systemId: string): Promise<{ id: string; dueAt: string }> {
    const response = await t.request({
      method: 'POST',
      url: '/api/review-campaigns',
      payload: { systemId },
    });
    expect(response.statusCode).toBe(201);
    return response.json();
  }

  async function items(campaignId: string): Promise<Item[]> {
    const response = await t.request({
      method: 'GET',
      url: `/api/review-campaigns/${campaignId}/items?limit=200`,
    });
    expect(response.statusCode).toBe(200);
    return response.json().items;
  }

  const decide = (user: TestUser, itemId: string, payload: object) =>
    t.requestAs(user, { method: 'POST', url: `/api/review-items/${itemId}/decision`, payload });

  it('C2: no self-review', async () => {
    const ownersManager = await t.createUser(['manager']);
    const owner = await t.createUser(['system-owner'], { managerId: ownersManager.id });
    const fallback = await t.createUser(['security-approver']);
    const u2 = await t.createUser(['requester']);
    const systemId = await createSystem(owner.id);
    const ownAccount = await addAccount(systemId, { userId: owner.id }, 'admin');
    const u2Account = await addAccount(systemId, { userId: u2.id });
    await setPolicy(systemId, fallback.id, { reviewerRule: 'system-owner' });

    const campaign = await openCampaign(systemId);
    const all = await items(campaign.id);
    const own = all.find((i) => i.accountId === ownAccount) as Item;
    const u2Item = all.find((i) => i.accountId === u2Account) as Item;
    expect(own.reviewerId).toBe(ownersManager.id);
    expect(own.assignedReason).toBe('holder is the reviewer');
    expect(u2Item.reviewerId).toBe(owner.id);

    const selfDecision = await decide(owner, own.id, {
      decision: 'certify',
      justification: 'I still need it',
      version: own.version,
    });
    expect(selfDecision.statusCode).toBe(403);
    expect(selfDecision.json().code).toBe('REVIEW.SELF_REVIEW');

    const toHolder = await t.requestAs(owner, {
      method: 'POST',
      url: `/api/review-items/${u2Item.id}/reassign`,
      payload: { reviewerId: u2.id, reason: 'They know best', version: u2Item.version },
    });
    expect(toHolder.statusCode).toBe(400);
    expect(toHolder.json().details.fields[0].field).toBe('reviewerId');

    const ownReassign = await t.requestAs(owner, {
      method: 'POST',
      url: `/api/review-items/${own.id}/reassign`,
      payload: { reviewerId: fallback.id, reason: 'Someone I trust', version: own.version },
    });
    expect(ownReassign.statusCode).toBe(403);
    expect(ownReassign.json().code).toBe('REVIEW.SELF_REVIEW');
    const auditor = await t.createUser(['auditor']);
    const toAuditor = await t.requestAs(owner, {
      method: 'POST',
      url: `/api/review-items/${u2Item.id}/reassign`,
      payload: { reviewerId: auditor.id, reason: 'Auditors see all', version: u2Item.version },
    });
    expect(toAuditor.statusCode).toBe(400);
    expect(toAuditor.json().details.fields[0].field).toBe('reviewerId');

    const other = await t.createUser(['manager']);
    const moved = await t.requestAs(owner, {
      method: 'POST',
      url: `/api/review-items/${u2Item.id}/reassign`,
      payload: { reviewerId: other.id, reason: 'Team lead reviews', version: u2Item.version },
    });
    expect(moved.statusCode).toBe(200);
    expect(moved.json().reviewerId).toBe(other.id);
    const after = await t.request({ method: 'GET', url: `/api/review-campaigns/${campaign.id}` });
    expect(after.json().dueAt).toBe(campaign.dueAt);
  });

  it('C3: inactive reviewer items move', async () => {
    const m1 = await t.createUser(['manager']);
    const fallback = await t.createUser(['security-approver']);
    const owner = await t.createUser(['system-owner']);
    const systemId = await createSystem(owner.id);
    const holders = await Promise.all(
      [0, 1, 2, 3].map(() => t.createUser(['requester'], { managerId: m1.id })),
    );
    for (const holder of holders) await addAccount(systemId, { userId: holder.id });
    await setPolicy(systemId, fallback.id);
    const campaign = await openCampaign(systemId);
    expect((await items(campaign.id)).every((i) => i.reviewerId === m1.id)).toBe(true);
    const digestsOf = async (reviewerId: string): Promise<string[]> =>
      (await t.app.get(ReminderQueue).queuedIds()).filter((id) =>
        id.startsWith(`rr-${campaign.id}-${reviewerId}-`),
      );
    expect(await digestsOf(m1.id)).not.toHaveLength(0);

    t.clock.set(new Date(t.clock.now().getTime() + 2 * DAY));
    const m1Read = await t.request({ method: 'GET', url: `/api/users/${m1.id}` });
    const deactivated = await t.request({
      method: 'POST',
      url: `/api/users/${m1.id}/deactivate`,
      payload: { reason: 'left the company', version: m1Read.json().version },
    });
    expect(deactivated.statusCode).toBe(200);

    const moved = await items(campaign.id);
    expect(moved.map((i) => i.reviewerId)).toEqual([
      fallback.id,
      fallback.id,
      fallback.id,
      fallback.id,
    ]);
    expect(moved.every((i) => i.assignedReason === 'reviewer inactive')).toBe(true);
    // Reminders follow the new reviewer as soon as the deactivation commits.
    expect(await digestsOf(m1.id)).toHaveLength(0);
    expect(await digestsOf(fallback.id)).not.toHaveLength(0);
    const audits = await superuserQuery<{ n: number }>(
      t.databaseUrl,
      `SELECT count(*)::int AS n FROM audit_events
        WHERE action = 'review_item.reassigned' AND after->>'assignedReason' = 'reviewer inactive'
          AND entity_id = ANY($1)`,
      [moved.map((i) => i.id)],
    );
    expect(audits[0].n).toBe(4);

    // The fallback reviewer can complete the campaign.
    for (const item of moved) {
      expect(
        (await decide(fallback, item.id, { decision: 'certify', version: item.version }))
          .statusCode,
      ).toBe(200);
    }
    const done = await t.request({ method: 'GET', url: `/api/review-campaigns/${campaign.id}` });
    expect(done.json().progress).toMatchObject({ total: 4, decided: 4, undecided: 0 });

    // A campaign opened while M1 is inactive never assigns anything to M1.
    const second = await createSystem(owner.id);
    for (const holder of holders) await addAccount(second, { userId: holder.id });
    await setPolicy(second, fallback.id);
    const next = await openCampaign(second);
    const nextItems = await items(next.id);
    expect(nextItems.some((i) => i.reviewerId === m1.id)).toBe(false);
    expect(nextItems.every((i) => i.reviewerId === fallback.id)).toBe(true);
  });

  it('C8: stale decision gets 409', async () => {
    const m = await t.createUser(['manager']);
    const owner = await t.createUser(['system-owner']);
    const holder = await t.createUser(['requester'], { managerId: m.id });
    const systemId = await createSystem(owner.id);
    await addAccount(systemId, { userId: holder.id });
    await setPolicy(systemId, owner.id);
    const campaign = await openCampaign(systemId);
    const [i2] = await items(campaign.id);
    expect(i2.version).toBe(1);

    const certified = await decide(m, i2.id, { decision: 'certify', version: 1 });
    expect(certified.statusCode).toBe(200);
    const revoked = await t.request({
      method: 'POST',
      url: `/api/review-items/${i2.id}/decision`,
      payload: { decision: 'revoke', justification: 'No longer needed', version: 1 },
    });
    expect(revoked.statusCode).toBe(409);
    expect(revoked.json().details).toMatchObject({ currentDecision: 'certify', currentVersion: 2 });

    const [row] = await superuserQuery<{ decision: string }>(
      t.databaseUrl,
      `SELECT decision FROM review_items WHERE id = $1`,
      [i2.id],
    );
    expect(row.decision).toBe('certify');
    const tasks = await superuserQuery<{ n: number }>(
      t.databaseUrl,
      `SELECT count(*)::int AS n FROM deprovisioning_tasks WHERE trigger_ref_id = $1`,
      [i2.id],
    );
    expect(tasks[0].n).toBe(0);
  });

  it('C13: hostile decision batch rejected', async () => {
    const owner = await t.createUser(['system-owner']);
    const holder = await t.createUser(['requester']);
    const systemId = await createSystem(owner.id);
    await addAccount(systemId, { userId: holder.id });
    await setPolicy(systemId, owner.id);
    const campaign = await openCampaign(systemId);
    const [item] = await items(campaign.id);

    const bad = await t.requestAs(owner, {
      method: 'POST',
      url: `/api/review-campaigns/${campaign.id}/decisions`,
      payload: {
        items: [
          { itemId: 'not-a-uuid', decision: 'certify', version: 1 },
          { itemId: item.id, decision: 'approve-all', version: 1, isAdmin: true },
        ],
      },
    });
    expect(bad.statusCode).toBe(400);
    const fields = bad.json().details.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(
      expect.arrayContaining(['items.0.itemId', 'items.1.decision', 'items.1.isAdmin']),
    );

    for (const key of ['constructor', '__proto__']) {
      const hostile = await t.requestAs(owner, {
        method: 'POST',
        url: `/api/review-campaigns/${campaign.id}/decisions`,
        headers: { 'content-type': 'application/json' },
        payload: `{"items":[{"itemId":"${item.id}","decision":"certify","version":1}],"${key}":{"prototype":{"isAdmin":true}}}`,
      });
      expect(hostile.statusCode).toBe(400);
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    }
    const [row] = await superuserQuery<{ decision: string | null; version: number }>(
      t.databaseUrl,
      `SELECT decision, version FROM review_items WHERE id = $1`,
      [item.id],
    );
    expect(row).toEqual({ decision: null, version: 1 });
  });

  it('one campaign per period', async () => {
    const owner = await t.createUser(['system-owner']);
    const holder = await t.createUser(['requester']);
    const systemId = await createSystem(owner.id);
    await addAccount(systemId, { userId: holder.id }, 'admin');
    await addAccount(systemId, { userId: holder.id });
    await setPolicy(systemId, owner.id);

    const service = t.app.get(CampaignsService);
    await Promise.all([service.openDue(), service.openDue(), service.openDue()]);
    await service.openDue();
    const rows = await superuserQuery<{ scope: string; n: number }>(
      t.databaseUrl,
      `SELECT scope, count(*)::int AS n FROM review_campaigns WHERE system_id = $1 GROUP BY scope ORDER BY scope`,
      [systemId],
    );
    expect(rows).toEqual([
      { scope: 'admin', n: 1 },
      { scope: 'standard', n: 1 },
    ]);

    const first = await t.request({
      method: 'POST',
      url: '/api/review-campaigns',
      payload: { systemId },
    });
    const again = await t.request({
      method: 'POST',
      url: '/api/review-campaigns',
      payload: { systemId },
    });
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(first.json().id);
  });

  it('filter decides beyond one page', async () => {
    const m = await t.createUser(['manager']);
    const owner = await t.createUser(['system-owner']);
    const systemId = await createSystem(owner.id);
    const holders = await Promise.all(
      Array.from({ length: 60 }, () => t.createUser(['requester'], { managerId: m.id })),
    );
    for (const holder of holders) await addAccount(systemId, { userId: holder.id });
    // The manager's own account, reviewed by the fallback; a filter on reviewer leaves it out.
    await addAccount(systemId, { userId: m.id }, 'admin');
    await setPolicy(systemId, owner.id);
    const campaign = await openCampaign(systemId);

    const response = await t.requestAs(m, {
      method: 'POST',
      url: `/api/review-campaigns/${campaign.id}/decisions`,
      payload: { filter: { privilege: 'standard' }, decision: 'certify' },
    });
    expect(response.statusCode).toBe(200);
    const results = response.json().results as { result: string }[];
    expect(results).toHaveLength(60);
    expect(results.every((r) => r.result === 'decided')).toBe(true);

    const all = await t.requestAs(m, {
      method: 'POST',
      url: `/api/review-campaigns/${campaign.id}/decisions`,
      payload: { filter: {}, decision: 'certify', justification: 'Still needed' },
    });
    expect(all.json().results).toEqual([
      expect.objectContaining({ result: 'skipped', code: 'REVIEW.SELF_REVIEW' }),
    ]);
    const progress = await t.request({
      method: 'GET',
      url: `/api/review-campaigns/${campaign.id}/progress`,
    });
    expect(progress.json()).toEqual(
      expect.arrayContaining([
        { reviewerId: m.id, total: 60, decided: 60, undecided: 0 },
        { reviewerId: owner.id, total: 1, decided: 0, undecided: 1 },
      ]),
    );
  });

  it('close applies policy and freezes', async () => {
    const m = await t.createUser(['manager']);
    const owner = await t.createUser(['system-owner']);
    const [h1, h2, h3] = await Promise.all(
      [0, 1, 2].map(() => t.createUser(['requester'], { managerId: m.id })),
    );
    const systemId = await createSystem(owner.id);
    const a1 = await addAccount(systemId, { userId: h1.id });
    const a2 = await addAccount(systemId, { userId: h2.id });
    const a3 = await addAccount(systemId, { userId: h3.id });
    await setPolicy(systemId, owner.id, { undecidedAction: 'revoke' });
    const campaign = await openCampaign(systemId);
    const list = await items(campaign.id);
    const byAccount = (id: string) => list.find((i) => i.accountId === id) as Item;
    await decide(m, byAccount(a1).id, { decision: 'certify', version: 1 });
    await decide(m, byAccount(a2).id, {
      decision: 'revoke',
      justification: 'Moved teams',
      version: 1,
    });

    // Past due date and grace, before any job: closed at read time, decisions refused.
    t.clock.set(new Date(Date.parse(campaign.dueAt) + 3 * DAY + 1000));
    const read = await t.request({ method: 'GET', url: `/api/review-campaigns/${campaign.id}` });
    expect(read.json()).toMatchObject({ status: 'open', effectiveStatus: 'closed' });
    expect((await items(campaign.id)).find((i) => i.accountId === a3)?.effectiveOutcome).toBe(
      'revoked',
    );
    const late = await decide(m, byAccount(a3).id, { decision: 'certify', version: 1 });
    expect(late.statusCode).toBe(409);
    expect(late.json().code).toBe('REVIEW.CAMPAIGN_CLOSED');

    const service = t.app.get(CampaignsService);
    expect(await service.close(campaign.id)).toBe(true);
    expect(await service.close(campaign.id)).toBe(false);
    const closed = await items(campaign.id);
    expect(closed.find((i) => i.accountId === a1)?.outcome).toBe('certified');
    expect(closed.find((i) => i.accountId === a2)?.outcome).toBe('revoked');
    expect(closed.find((i) => i.accountId === a3)?.outcome).toBe('revoked');
    const tasks = await superuserQuery<{
      account_id: string;
      trigger: string;
      assignee_id: string;
    }>(
      t.databaseUrl,
      `SELECT account_id, trigger, assignee_id FROM deprovisioning_tasks
        WHERE trigger_ref_id = ANY($1) ORDER BY account_id`,
      [closed.map((i) => i.id)],
    );
    expect(tasks.map((task) => task.account_id).sort()).toEqual([a2, a3].sort());
    expect(
      tasks.every((task) => task.trigger === 'review-revoke' && task.assignee_id === owner.id),
    ).toBe(true);

    const [stored] = await superuserQuery<{ evidence_sha256: string; computed: string }>(
      t.databaseUrl,
      `SELECT evidence_sha256, encode(sha256(convert_to(evidence::text, 'UTF8')), 'hex') AS computed
         FROM review_campaigns WHERE id = $1`,
      [campaign.id],
    );
    expect(stored.evidence_sha256).toBe(stored.computed);
    await expect(
      superuserQuery(
        t.databaseUrl,
        `UPDATE review_campaigns SET evidence = '{}'::jsonb WHERE id = $1`,
        [campaign.id],
      ),
    ).rejects.toThrow(/frozen/);
  });

  it('campaign changes reach reminder jobs', async () => {
    const [m1, m2] = await Promise.all([t.createUser(['manager']), t.createUser(['manager'])]);
    const owner = await t.createUser(['system-owner']);
    const h1 = await t.createUser(['requester'], { managerId: m1.id });
    const h2 = await t.createUser(['requester'], { managerId: m2.id });
    const systemId = await createSystem(owner.id);
    const a1 = await addAccount(systemId, { userId: h1.id });
    await addAccount(systemId, { userId: h2.id });
    await setPolicy(systemId, owner.id);
    const queue = t.app.get(ReminderQueue);
    const campaignJobs = async (reviewerId: string): Promise<string[]> =>
      (await queue.queuedIds()).filter((id) => id.startsWith(`rr-${campaign.id}-${reviewerId}-`));

    const campaign = await openCampaign(systemId);
    expect(await campaignJobs(m1.id)).not.toHaveLength(0);
    expect(await campaignJobs(m2.id)).not.toHaveLength(0);

    // M1's only item is decided, so M1's digests are withdrawn; M2's stay.
    const item = (await items(campaign.id)).find((i) => i.accountId === a1) as Item;
    expect((await decide(m1, item.id, { decision: 'certify', version: 1 })).statusCode).toBe(200);
    expect(await campaignJobs(m1.id)).toHaveLength(0);
    expect(await campaignJobs(m2.id)).not.toHaveLength(0);

    t.clock.set(new Date(Date.parse(campaign.dueAt) + 4 * DAY));
    expect(await t.app.get(CampaignsService).close(campaign.id)).toBe(true);
    const itemIds = (await items(campaign.id)).map((i) => i.id);
    const left = (await queue.queuedIds()).filter(
      (id) =>
        id.startsWith(`rr-${campaign.id}-`) ||
        itemIds.some((itemId) => id.startsWith(`re-${itemId}-`)),
    );
    expect(left).toEqual([]);
  });

  it('admin certification needs justification', async () => {
    const owner = await t.createUser(['system-owner']);
    const sponsor = await t.createUser(['requester']);
    const systemId = await createSystem(owner.id);
    await addAccount(systemId, { providerId, sponsorId: sponsor.id }, 'admin');
    await setPolicy(systemId, owner.id);
    const campaign = await openCampaign(systemId);
    const [item] = await items(campaign.id);
    expect(item.reviewerId).toBe(owner.id);
    const bare = await decide(owner, item.id, { decision: 'certify', version: 1 });
    expect(bare.statusCode).toBe(400);
    expect(bare.json().details.fields[0].field).toBe('justification');
    const unknownItem = await decide(owner, randomUUID(), { decision: 'certify', version: 1 });
    expect(unknownItem.statusCode).toBe(404);
  });
});
