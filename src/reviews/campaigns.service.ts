import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import {
  DomainError,
  NotFoundError,
  RuleViolationError,
  StaleVersionError,
} from '../common/errors';
import { assertMayActOnSystem } from '../common/ownership';
import { Page, toPage } from '../common/pagination';
import { Transactions } from '../common/transactions';
import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import { requireUser } from '../identity/users.service';
import { NotificationsService, PublishedEvent } from '../notifications/notifications.service';
import { ReviewEvents } from './review-events';
import {
  ACCOUNT_SNAPSHOT,
  ASSIGNED_REASON,
  itemConditions,
  ITEM_COLUMNS,
  outcomeOf,
  REVIEWER_PICK,
  scopeCondition,
} from './review-sql';
import type { CampaignListQuery, ItemListQuery, ReviewPolicyDto, Scope } from './reviews.dto';

const DAY_MS = 86_400_000;

export interface ReviewPolicyView {
  id: string;
  systemId: string;
  adminCadenceDays: number;
  standardCadenceDays: number;
  reviewerRule: string;
  fallbackReviewerId: string;
  durationDays: number;
  graceDays: number;
  undecidedAction: string;
  active: boolean;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

export interface Progress {
  total: number;
  decided: number;
  certified: number;
  revoked: number;
  undecided: number;
}

export interface CampaignView {
  id: string;
  systemId: string;
  systemName: string;
  policyId: string;
  scope: Scope;
  periodStart: string;
  trigger: string;
  openedAt: Date;
  dueAt: Date;
  closesAt: Date;
  undecidedAction: string;
  status: 'open' | 'closed';
  /** Closed once the due date and grace have passed, whether or not the closing job ran. */
  effectiveStatus: 'open' | 'closed';
  closedAt: Date | null;
  evidenceSha256: string | null;
  progress: Progress;
  version: number;
}

export interface ItemView {
  id: string;
  campaignId: string;
  accountId: string;
  holderUserId: string | null;
  reviewerId: string | null;
  assignedReason: string | null;
  snapshot: Record<string, unknown>;
  decision: string | null;
  justification: string | null;
  decidedBy: string | null;
  decidedAt: Date | null;
  outcome: string | null;
  /** The outcome as of now: the stored one, or the one closing will give. */
  effectiveOutcome: string | null;
  updatedAt: Date;
  version: number;
}

const POLICY_COLUMNS = `id, system_id AS "systemId", admin_cadence_days AS "adminCadenceDays",
  standard_cadence_days AS "standardCadenceDays", reviewer_rule AS "reviewerRule",
  fallback_reviewer_id AS "fallbackReviewerId", duration_days AS "durationDays",
  grace_days AS "graceDays", undecided_action AS "undecidedAction", active,
  created_at AS "createdAt", updated_at AS "updatedAt", version`;

const CAMPAIGN_SELECT = `
  SELECT c.id, c.system_id AS "systemId", s.name AS "systemName", c.policy_id AS "policyId",
         c.scope, to_char(c.period_start, 'YYYY-MM-DD') AS "periodStart", c.trigger,
         c.opened_at AS "openedAt", c.due_at AS "dueAt", c.closes_at AS "closesAt",
         c.undecided_action AS "undecidedAction", c.status, c.closed_at AS "closedAt",
         c.evidence_sha256 AS "evidenceSha256", c.version,
         count(i.id)::int AS total, count(i.decision)::int AS decided,
         count(*) FILTER (WHERE i.decision = 'certify')::int AS certified,
         count(*) FILTER (WHERE i.decision = 'revoke')::int AS revoked
    FROM review_campaigns c
    JOIN systems s ON s.id = c.system_id
    LEFT JOIN review_items i ON i.campaign_id = c.id`;

type CampaignRow = Omit<CampaignView, 'progress' | 'effectiveStatus'> & {
  total: number;
  decided: number;
  certified: number;
  revoked: number;
};

/**
 * Review policies and campaigns: opening (on a policy's cadence or on demand, once per system,
 * scope and period), reading with progress, and closing with the policy's action for items left
 * undecided. Decisions on items are in {@link ReviewItemsService}.
 */
@Injectable()
export class CampaignsService {
  private readonly logger = new Logger('ReviewCampaigns');

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly events: ReviewEvents,
    @Inject(NotificationsService) private readonly notifications: NotificationsService,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  async getPolicy(systemId: string): Promise<ReviewPolicyView> {
    const [policy] = await this.dataSource.query<ReviewPolicyView[]>(
      `SELECT ${POLICY_COLUMNS} FROM review_policies WHERE system_id = $1`,
      [systemId],
    );
    if (!policy) {
      throw new DomainError(
        404,
        'REVIEW_POLICY.NOT_FOUND',
        `System ${systemId} has no review policy; set one with PUT /api/systems/${systemId}/review-policy`,
        { systemId },
      );
    }
    return policy;
  }

  async putPolicy(systemId: string, input: ReviewPolicyDto): Promise<ReviewPolicyView> {
    return this.transactions.run(async (manager) => {
      const [system] = await manager.query<{ owner_id: string | null }[]>(
        `SELECT owner_id FROM systems WHERE id = $1 FOR SHARE`,
        [systemId],
      );
      if (!system) throw new NotFoundError('System', systemId);
      assertMayActOnSystem(systemId, system.owner_id, ['platform-admin']);
      await requireUser(manager, input.fallbackReviewerId, 'fallbackReviewerId');

      const [before] = await manager.query<ReviewPolicyView[]>(
        `SELECT ${POLICY_COLUMNS} FROM review_policies WHERE system_id = $1 FOR UPDATE`,
        [systemId],
      );
      if (before && input.version !== undefined && input.version !== before.version) {
        throw new StaleVersionError('review_policy', before.id, input.version, before.version);
      }
      const now = this.clock.now();
      const values = [
        systemId,
        input.adminCadenceDays,
        input.standardCadenceDays,
        input.reviewerRule,
        input.fallbackReviewerId,
        input.durationDays,
        input.graceDays,
        input.undecidedAction,
        input.active ?? true,
        now,
      ];
      const [after] = await manager.query<ReviewPolicyView[]>(
        `INSERT INTO review_policies (system_id, admin_cadence_days, standard_cadence_days,
            reviewer_rule, fallback_reviewer_id, duration_days, grace_days, undecided_action,
            active, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         ON CONFLICT (system_id) DO UPDATE SET admin_cadence_days = EXCLUDED.admin_cadence_days,
            standard_cadence_days = EXCLUDED.standard_cadence_days,
            reviewer_rule = EXCLUDED.reviewer_rule,
            fallback_reviewer_id = EXCLUDED.fallback_reviewer_id,
            duration_days = EXCLUDED.duration_days, grace_days = EXCLUDED.grace_days,
            undecided_action = EXCLUDED.undecided_action, active = EXCLUDED.active,
            updated_at = EXCLUDED.updated_at, version = review_policies.version + 1
         RETURNING ${POLICY_COLUMNS}`,
        values,
      );
      await this.audit.record(manager, {
        action: before ? 'review_policy.updated' : 'review_policy.created',
        entityType: 'review_policy',
        entityId: after.id,
        before: before ?? null,
        after,
      });
      return after;
    });
  }

  /** Opens a campaign on demand; a second request for the same day returns the first. */
  async openOnDemand(
    systemId: string,
    scope: Scope,
  ): Promise<{ campaign: CampaignView; created: boolean }> {
    const [system] = await this.dataSource.query<{ owner_id: string | null }[]>(
      `SELECT owner_id FROM systems WHERE id = $1`,
      [systemId],
    );
    if (!system) throw new NotFoundError('System', systemId);
    assertMayActOnSystem(systemId, system.owner_id, ['platform-admin', 'security-approver']);
    const now = this.clock.now();
    const result = await this.open(systemId, scope, 'on-demand', now.toISOString().slice(0, 10));
    if (result === null) {
      throw new RuleViolationError(
        'REVIEW.NOTHING_TO_REVIEW',
        `System ${systemId} has no accounts in scope ${scope}; there is nothing to review`,
        { systemId, scope },
      );
    }
    return result;
  }

  /**
   * Opens every scheduled campaign whose period has begun. Periods are counted in whole cadences
   * from 1970-01-01, so every instance and every run computes the same period start.
   */
  async openDue(): Promise<{ opened: number }> {
    const now = this.clock.now();
    const policies = await this.dataSource.query<ReviewPolicyView[]>(
      `SELECT ${POLICY_COLUMNS} FROM review_policies p
        WHERE active AND EXISTS (SELECT 1 FROM systems s WHERE s.id = p.system_id
                                  AND s.lifecycle_status <> 'retired')`,
    );
    let opened = 0;
    for (const policy of policies) {
      for (const [scope, cadence] of [
        ['admin', policy.adminCadenceDays],
        ['standard', policy.standardCadenceDays],
      ] as const) {
        const periodStart = periodStartOf(now, cadence);
        const result = await this.open(policy.systemId, scope, 'scheduled', periodStart);
        if (result?.created) opened += 1;
      }
    }
    if (opened > 0) this.logger.log({ opened }, 'Scheduled review campaigns opened');
    return { opened };
  }

  /**
   * Opens one campaign and snapshots its items in a single INSERT … SELECT. The unique key on
   * (system, scope, period) makes a second opening return the first campaign. Returns null when
   * no account is in scope, and opens nothing then.
   */
  async open(
    systemId: string,
    scope: Scope,
    trigger: 'scheduled' | 'on-demand',
    periodStart: string,
  ): Promise<{ campaign: CampaignView; created: boolean } | null> {
    const now = this.clock.now();
    const outcome = await this.transactions.run(async (manager) => {
      const [policy] = await manager.query<ReviewPolicyView[]>(
        `SELECT ${POLICY_COLUMNS} FROM review_policies WHERE system_id = $1`,
        [systemId],
      );
      if (!policy) {
        throw new RuleViolationError(
          'REVIEW.NO_POLICY',
          `System ${systemId} has no review policy; set one with PUT /api/systems/${systemId}/review-policy`,
          { systemId },
        );
      }
      const dueAt = new Date(now.getTime() + policy.durationDays * DAY_MS);
      const closesAt = new Date(dueAt.getTime() + policy.graceDays * DAY_MS);
      const [created] = await manager.query<{ id: string }[]>(
        `INSERT INTO review_campaigns (system_id, policy_id, scope, period_start, trigger,
            opened_at, due_at, closes_at, undecided_action, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open')
         ON CONFLICT (system_id, scope, period_start) DO NOTHING RETURNING id`,
        [
          systemId,
          policy.id,
          scope,
          periodStart,
          trigger,
          now,
          dueAt,
          closesAt,
          policy.undecidedAction,
        ],
      );
      if (!created) {
        const [existing] = await manager.query<{ id: string }[]>(
          `SELECT id FROM review_campaigns WHERE system_id = $1 AND scope = $2 AND period_start = $3`,
          [systemId, scope, periodStart],
        );
        return { id: existing.id, created: false };
      }

      const inserted = await insertItems(manager, created.id, systemId, scope, policy, now);
      if (inserted === 0) return null;
      const campaign = await this.campaignWithin(manager, created.id);
      await this.audit.record(manager, {
        action: 'review_campaign.opened',
        entityType: 'review_campaign',
        entityId: created.id,
        before: null,
        after: campaign,
      });
      return { id: created.id, created: true };
    });

    if (outcome === null) return null;
    if (outcome.created) await this.events.campaignOpened(outcome.id);
    return { campaign: await this.get(outcome.id), created: outcome.created };
  }

  async list(query: CampaignListQuery): Promise<Page<CampaignView>> {
    const conditions: string[] = [];
    const parameters: unknown[] = [];
    if (query.systemId) {
      parameters.push(query.systemId);
      conditions.push(`c.system_id = $${parameters.length}`);
    }
    if (query.status) {
      parameters.push(this.clock.now());
      const now = `$${parameters.length}`;
      conditions.push(
        query.status === 'open'
          ? `c.status = 'open' AND c.closes_at > ${now}`
          : `(c.status = 'closed' OR c.closes_at <= ${now})`,
      );
    }
    parameters.push(query.limit + 1, query.offset);
    const rows = await this.dataSource.query<CampaignRow[]>(
      `${CAMPAIGN_SELECT} ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''}
        GROUP BY c.id, s.name
        ORDER BY c.opened_at ${query.order === 'desc' ? 'DESC' : 'ASC'}, c.id
        LIMIT $${parameters.length - 1} OFFSET $${parameters.length}`,
      parameters,
    );
    return toPage(
      rows.map((row) => this.toView(row)),
      query,
    );
  }

  get(id: string): Promise<CampaignView> {
    return this.campaignWithin(this.dataSource.manager, id);
  }

  async progressByReviewer(
    id: string,
  ): Promise<{ reviewerId: string | null; total: number; decided: number; undecided: number }[]> {
    await this.get(id);
    return this.dataSource.query(
      `SELECT reviewer_id AS "reviewerId", count(*)::int AS total,
              count(decision)::int AS decided, (count(*) - count(decision))::int AS undecided
         FROM review_items WHERE campaign_id = $1
        GROUP BY reviewer_id ORDER BY undecided DESC, reviewer_id`,
      [id],
    );
  }

  async items(campaignId: string, query: ItemListQuery): Promise<Page<ItemView>> {
    const campaign = await this.get(campaignId);
    const { conditions, parameters } = itemConditions(campaignId, query);
    parameters.push(query.limit + 1, query.offset);
    const rows = await this.dataSource.query<Omit<ItemView, 'effectiveOutcome'>[]>(
      `SELECT ${ITEM_COLUMNS} FROM review_items i WHERE ${conditions.join(' AND ')}
        ORDER BY i.snapshot->>'externalId' ${query.order === 'desc' ? 'DESC' : 'ASC'}, i.id
        LIMIT $${parameters.length - 1} OFFSET $${parameters.length}`,
      parameters,
    );
    return toPage(
      rows.map((row) => withEffectiveOutcome(row, campaign)),
      query,
    );
  }

  /** Closes every campaign whose due date and grace have passed. */
  async closeDue(): Promise<{ closed: number }> {
    const due = await this.dataSource.query<{ id: string }[]>(
      `SELECT id FROM review_campaigns WHERE status = 'open' AND closes_at <= $1 ORDER BY closes_at`,
      [this.clock.now()],
    );
    let closed = 0;
    for (const { id } of due) {
      if (await this.close(id)) closed += 1;
    }
    return { closed };
  }

  /**
   * Closes a campaign past its grace: gives undecided items the policy's action, opens a
   * de-provisioning task for each revoke, and freezes the evidence with its SHA-256. Returns
   * false when the campaign was closed already or is not yet due, so a late or repeated job
   * changes nothing.
   */
  async close(id: string): Promise<boolean> {
    const now = this.clock.now();
    const published: (PublishedEvent | null)[] = [];
    const closed = await this.transactions.run(async (manager) => {
      const [campaign] = await manager.query<
        { status: string; closes_at: Date; undecided_action: string; system_id: string }[]
      >(
        `SELECT status, closes_at, undecided_action, system_id FROM review_campaigns
          WHERE id = $1 FOR UPDATE`,
        [id],
      );
      if (!campaign) throw new NotFoundError('Review campaign', id);
      if (campaign.status === 'closed' || campaign.closes_at > now) return false;
      const before = await this.campaignWithin(manager, id);

      await manager.query(
        `UPDATE review_items SET updated_at = $2, version = version + 1,
            outcome = CASE WHEN decision = 'certify' THEN 'certified'
                           WHEN decision = 'revoke' THEN 'revoked'
                           WHEN $3 = 'revoke' THEN 'revoked'
                           WHEN $3 = 'keep-and-flag' THEN 'kept-flagged'
                           ELSE 'escalated' END
          WHERE campaign_id = $1`,
        [id, now, campaign.undecided_action],
      );
      const tasks = await manager.query<{ id: string }[]>(
        `INSERT INTO deprovisioning_tasks (account_id, system_id, trigger, trigger_ref_id,
            opened_at, assignee_id, status, due_at, updated_at)
         SELECT i.account_id, c.system_id, 'review-revoke', i.id, $2, s.owner_id, 'open', $3, $2
           FROM review_items i
           JOIN review_campaigns c ON c.id = i.campaign_id
           JOIN systems s ON s.id = c.system_id
          WHERE i.campaign_id = $1 AND i.outcome = 'revoked'
         ON CONFLICT (account_id, trigger) WHERE status = 'open' DO NOTHING
         RETURNING id`,
        [id, now, new Date(now.getTime() + this.settings.deprovisionSlaDays * DAY_MS)],
      );
      const flagged = await manager.query<{ id: string }[]>(
        `INSERT INTO access_findings (type, system_id, account_id, details, first_seen_at,
            last_seen_at, status)
         SELECT 'review-undecided', $2, i.account_id, jsonb_build_object('campaignId', $1::text),
                $3, $3, 'open'
           FROM review_items i WHERE i.campaign_id = $1::uuid AND i.outcome = 'kept-flagged'
         ON CONFLICT (type, system_id, account_id)
           DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at, details = EXCLUDED.details,
                         status = 'open', resolved_at = NULL
         RETURNING id`,
        [id, campaign.system_id, now],
      );
      await manager.query(
        `WITH doc AS (
           SELECT jsonb_build_object(
                    'campaignId', c.id, 'systemId', c.system_id, 'scope', c.scope,
                    'periodStart', c.period_start, 'openedAt', c.opened_at, 'dueAt', c.due_at,
                    'closedAt', $2::timestamptz, 'undecidedAction', c.undecided_action,
                    'items', coalesce((
                      SELECT jsonb_agg(jsonb_build_object(
                               'itemId', i.id, 'accountId', i.account_id, 'snapshot', i.snapshot,
                               'reviewerId', i.reviewer_id, 'assignedReason', i.assigned_reason,
                               'decision', i.decision, 'justification', i.justification,
                               'decidedBy', i.decided_by, 'decidedAt', i.decided_at,
                               'outcome', i.outcome) ORDER BY i.id)
                        FROM review_items i WHERE i.campaign_id = c.id), '[]'::jsonb)) AS body
             FROM review_campaigns c WHERE c.id = $1)
         UPDATE review_campaigns c SET status = 'closed', closed_at = $2, version = c.version + 1,
                evidence = doc.body,
                evidence_sha256 = encode(sha256(convert_to(doc.body::text, 'UTF8')), 'hex')
           FROM doc WHERE c.id = $1`,
        [id, now],
      );

      const after = await this.campaignWithin(manager, id);
      await this.audit.record(manager, {
        action: 'review_campaign.closed',
        entityType: 'review_campaign',
        entityId: id,
        before,
        after: { ...after, deprovisioningTasks: tasks.map((t) => t.id), findings: flagged.length },
      });
      if (campaign.undecided_action === 'escalate-only' && after.progress.undecided > 0) {
        published.push(await this.publishEscalation(manager, after));
      }
      return true;
    });

    await this.notifications.queueDeliveries(published);
    if (closed) {
      this.logger.log({ campaignId: id }, 'Review campaign closed');
      await this.events.campaignClosed(id);
    }
    return closed;
  }

  private async publishEscalation(
    manager: EntityManager,
    campaign: CampaignView,
  ): Promise<PublishedEvent | null> {
    const recipients = await manager.query<{ id: string }[]>(
      `SELECT DISTINCT u.id FROM users u JOIN user_roles r ON r.user_id = u.id
        WHERE u.active AND r.role = 'security-approver'`,
    );
    return this.notifications.publishIn(manager, {
      type: 'review.campaign-undecided',
      dedupeKey: `review.campaign-undecided.${campaign.id}`,
      title: `Access review of ${campaign.systemName} closed with undecided items`,
      body: `${campaign.progress.undecided} of ${campaign.progress.total} items had no decision when the campaign closed.`,
      payload: { campaignId: campaign.id, systemId: campaign.systemId },
      recipients: recipients.map((row) => row.id),
    });
  }

  private async campaignWithin(manager: EntityManager, id: string): Promise<CampaignView> {
    const [row] = await manager.query<CampaignRow[]>(
      `${CAMPAIGN_SELECT} WHERE c.id = $1 GROUP BY c.id, s.name`,
      [id],
    );
    if (!row) throw new NotFoundError('Review campaign', id);
    return this.toView(row);
  }

  private toView(row: CampaignRow): CampaignView {
    const { total, decided, certified, revoked, ...fields } = row;
    return {
      ...fields,
      effectiveStatus:
        row.status === 'closed' || row.closesAt <= this.clock.now() ? 'closed' : 'open',
      progress: { total, decided, certified, revoked, undecided: total - decided },
    };
  }
}

/** Returns the first day of the cadence-long period containing `now`, counted from 1970-01-01 (UTC). */
export function periodStartOf(now: Date, cadenceDays: number): string {
  const day = Math.floor(now.getTime() / DAY_MS);
  const start = day - (day % cadenceDays);
  return new Date(start * DAY_MS).toISOString().slice(0, 10);
}

export function withEffectiveOutcome(
  row: Omit<ItemView, 'effectiveOutcome'>,
  campaign: Pick<CampaignView, 'effectiveStatus' | 'undecidedAction'>,
): ItemView {
  const effectiveOutcome =
    row.outcome ??
    (campaign.effectiveStatus === 'closed'
      ? outcomeOf(row.decision, campaign.undecidedAction)
      : null);
  return { ...row, effectiveOutcome };
}

async function insertItems(
  manager: EntityManager,
  campaignId: string,
  systemId: string,
  scope: Scope,
  policy: ReviewPolicyView,
  now: Date,
): Promise<number> {
  const rows = await manager.query<{ n: number }[]>(
    `WITH inserted AS (
       INSERT INTO review_items (campaign_id, account_id, holder_user_id, reviewer_id,
           assigned_reason, snapshot, updated_at)
       SELECT $3, a.id, a.holder_user_id, pick.id, ${ASSIGNED_REASON}, ${ACCOUNT_SNAPSHOT}, $5
         FROM accounts a
         JOIN systems s ON s.id = a.system_id
         LEFT JOIN users h ON h.id = a.holder_user_id
         ${REVIEWER_PICK}
        WHERE a.system_id = $4 AND a.status <> 'removed' AND ${scopeCondition(scope)}
       RETURNING 1)
     SELECT count(*)::int AS n FROM inserted`,
    [policy.reviewerRule, policy.fallbackReviewerId, campaignId, systemId, now],
  );
  return rows[0].n;
}
