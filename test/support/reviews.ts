import { randomBytes } from 'node:crypto';

import { DataSource } from 'typeorm';

import type { TestApp, TestUser } from './app';

/** A system with an owner and a review policy, on which tests open campaigns by SQL. */
export interface ReviewFixture {
  systemId: string;
  policyId: string;
  owner: TestUser;
}

export interface CampaignSpec {
  dueAt: string;
  closesAt: string;
  /** One entry per item: the reviewer's user id. */
  reviewers: string[];
}

/** Inserts a provider, a system owned by a new user and a review policy, with an optional plan. */
export async function createReviewFixture(
  t: TestApp,
  plan?: { stepsDays: number[]; overdueCadenceDays: number; escalationDays: number[] },
): Promise<ReviewFixture> {
  const db = t.app.get(DataSource);
  const now = t.clock.now();
  const tag = randomBytes(4).toString('hex');
  const owner = await t.createUser(['system-owner']);
  const [provider] = await db.query<{ id: string }[]>(
    `INSERT INTO providers (name, created_at, updated_at) VALUES ($1, $2, $2) RETURNING id`,
    [`Vendor ${tag}`, now],
  );
  const [system] = await db.query<{ id: string }[]>(
    `INSERT INTO systems (provider_id, name, product, category, criticality, owner_id, created_at, updated_at)
     VALUES ($1, $2, 'RMM', 'remote-management', 'high', $3, $4, $4) RETURNING id`,
    [provider.id, `System ${tag}`, owner.id, now],
  );
  const [policy] = await db.query<{ id: string }[]>(
    `INSERT INTO review_policies (system_id, admin_cadence_days, standard_cadence_days, reviewer_rule,
       fallback_reviewer_id, duration_days, grace_days, undecided_action, created_at, updated_at)
     VALUES ($1, 90, 180, 'holder-manager', $2, 14, 7, 'keep-and-flag', $3, $3) RETURNING id`,
    [system.id, owner.id, now],
  );
  if (plan) {
    await db.query(
      `INSERT INTO review_reminder_plans (policy_id, steps_days, overdue_cadence_days, escalation_days, updated_at)
       VALUES ($1, $2, $3, $4, $5)`,
      [policy.id, plan.stepsDays, plan.overdueCadenceDays, plan.escalationDays, now],
    );
  }
  return { systemId: system.id, policyId: policy.id, owner };
}

/** Inserts an open campaign with one account and item per entry of `reviewers`; returns ids. */
export async function createCampaign(
  t: TestApp,
  fixture: ReviewFixture,
  spec: CampaignSpec,
): Promise<{ campaignId: string; itemIds: string[] }> {
  const db = t.app.get(DataSource);
  const now = t.clock.now();
  const [campaign] = await db.query<{ id: string }[]>(
    `INSERT INTO review_campaigns (system_id, policy_id, scope, period_start, trigger, opened_at,
       due_at, closes_at, undecided_action, status)
     VALUES ($1, $2, 'all', $3, 'on-demand', $4, $5, $6, 'keep-and-flag', 'open') RETURNING id`,
    [fixture.systemId, fixture.policyId, spec.dueAt.slice(0, 10), now, spec.dueAt, spec.closesAt],
  );
  const itemIds: string[] = [];
  for (const [index, reviewerId] of spec.reviewers.entries()) {
    const [account] = await db.query<{ id: string }[]>(
      `INSERT INTO accounts (system_id, external_id, name, privilege, purpose, mfa_state, status, origin,
         created_at, updated_at)
       VALUES ($1, $2, $2, 'admin', 'admin', 'enabled', 'active', 'imported', $3, $3) RETURNING id`,
      [fixture.systemId, `acct-${campaign.id.slice(0, 8)}-${index}`, now],
    );
    const [item] = await db.query<{ id: string }[]>(
      `INSERT INTO review_items (campaign_id, account_id, reviewer_id, assigned_reason, snapshot, updated_at)
       VALUES ($1, $2, $3, 'test', '{}', $4) RETURNING id`,
      [campaign.id, account.id, reviewerId, now],
    );
    itemIds.push(item.id);
  }
  return { campaignId: campaign.id, itemIds };
}
