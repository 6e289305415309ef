import { Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../../audit/audit.service';
import { Clock } from '../../common/clock';
import { Transactions } from '../../common/transactions';
import { NotificationsService, PublishedEvent } from '../../notifications/notifications.service';
import {
  DigestJobData,
  ESCALATION_EVENT,
  EscalationJobData,
  REMINDER_EVENT,
} from './reminder-jobs';
import { escalationLevels } from './reminder-plan';
import { ReminderState } from './reminder-state';

/** What a processor did: `sent`, or `skipped` with the reason it logged. */
export type ReminderOutcome = { status: 'sent' } | { status: 'skipped'; reason: string };

interface PendingItem {
  id: string;
  accountName: string;
  holderName: string | null;
}

interface CampaignRow {
  id: string;
  status: string;
  dueAt: Date;
  closesAt: Date;
  systemName: string;
}

/**
 * Sends digests and escalations. Each processor re-reads PostgreSQL and skips anything no longer
 * due; the unique delivery and escalation rows make a second run of the same job a no-op. The row,
 * its notification event and the audit event commit in one transaction.
 */
@Injectable()
export class ReminderDelivery {
  private readonly logger = new Logger('ReviewReminders');

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly notifications: NotificationsService,
    private readonly state: ReminderState,
    private readonly clock: Clock,
  ) {}

  /** Sends one reviewer's digest of their pending items in one campaign for one step. */
  async sendDigest(job: DigestJobData): Promise<ReminderOutcome> {
    const now = this.clock.now();
    const campaign = await this.campaign(job.campaignId);
    const closed = this.closedReason(campaign, now);
    if (closed) return this.skip(job, closed);

    const items = await this.dataSource.query<PendingItem[]>(
      `SELECT i.id, a.name AS "accountName", h.name AS "holderName"
         FROM review_items i
         JOIN accounts a ON a.id = i.account_id
         JOIN users r ON r.id = i.reviewer_id
         LEFT JOIN users h ON h.id = i.holder_user_id
        WHERE i.campaign_id = $1 AND i.reviewer_id = $2 AND i.decision IS NULL AND r.active
        ORDER BY a.name, i.id`,
      [job.campaignId, job.reviewerId],
    );
    if (items.length === 0) {
      return this.skip(job, 'reviewer has no pending item in the campaign (decided or reassigned)');
    }

    const published = await this.transactions.run(async (manager) => {
      const [delivery] = await manager.query<{ id: string }[]>(
        `INSERT INTO review_reminder_deliveries
           (campaign_id, reviewer_id, step, scheduled_for, sent_at, item_ids)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (reviewer_id, campaign_id, step) DO NOTHING RETURNING id`,
        [job.campaignId, job.reviewerId, job.step, job.runAt, now, items.map((item) => item.id)],
      );
      if (!delivery) return undefined;
      const event = await this.notifications.publishIn(manager, {
        type: REMINDER_EVENT,
        dedupeKey: `review-reminder-${job.campaignId}-${job.reviewerId}-${job.step}`,
        title: `${items.length} access review item(s) on ${campaign!.systemName} await your decision`,
        body: [
          `Due ${campaign!.dueAt.toISOString().slice(0, 10)}${campaign!.dueAt <= now ? ' (overdue)' : ''}:`,
          ...items.map(
            (item) => `${item.accountName}${item.holderName ? ` (${item.holderName})` : ''}`,
          ),
        ].join('\n'),
        payload: {
          campaignId: job.campaignId,
          reviewerId: job.reviewerId,
          step: job.step,
          dueAt: campaign!.dueAt,
          itemIds: items.map((item) => item.id),
        },
        recipients: [job.reviewerId],
      });
      await this.linkEvent(manager, 'review_reminder_deliveries', delivery.id, event);
      await this.audit.record(manager, {
        action: 'review.reminder_sent',
        entityType: 'review_campaign',
        entityId: job.campaignId,
        before: null,
        after: {
          deliveryId: delivery.id,
          reviewerId: job.reviewerId,
          step: job.step,
          items: items.length,
        },
      });
      return event;
    });
    if (published === undefined) return this.skip(job, 'digest for this step was already sent');
    await this.notifications.queueDeliveries([published]);
    this.logger.log(
      {
        campaignId: job.campaignId,
        reviewerId: job.reviewerId,
        step: job.step,
        items: items.length,
      },
      'Review reminder digest sent',
    );
    return { status: 'sent' };
  }

  /** Escalates one item at one level to the reviewer's manager and the security approvers. */
  async escalate(job: Omit<EscalationJobData, 'kind' | 'runAt'>): Promise<ReminderOutcome> {
    const now = this.clock.now();
    const campaign = await this.campaign(job.campaignId);
    const closed = this.closedReason(campaign, now);
    if (closed) return this.skip(job, closed);

    const [item] = await this.dataSource.query<
      {
        id: string;
        reviewerId: string | null;
        reviewerName: string | null;
        managerId: string | null;
        accountName: string;
        decision: string | null;
      }[]
    >(
      `SELECT i.id, i.reviewer_id AS "reviewerId", r.name AS "reviewerName", m.id AS "managerId",
              a.name AS "accountName", i.decision
         FROM review_items i
         JOIN accounts a ON a.id = i.account_id
         LEFT JOIN users r ON r.id = i.reviewer_id
         LEFT JOIN users m ON m.id = r.manager_id AND m.active
        WHERE i.id = $1 AND i.campaign_id = $2`,
      [job.itemId, job.campaignId],
    );
    if (!item) return this.skip(job, 'item not found in the campaign');
    if (item.decision !== null) return this.skip(job, 'item already decided');
    if (item.reviewerId === null) return this.skip(job, 'item has no reviewer');

    const [policy] = await this.dataSource.query<
      {
        stepsDays: number[] | null;
        overdueCadenceDays: number | null;
        escalationDays: number[] | null;
      }[]
    >(
      `SELECT p.steps_days AS "stepsDays", p.overdue_cadence_days AS "overdueCadenceDays",
              p.escalation_days AS "escalationDays"
         FROM review_campaigns c LEFT JOIN review_reminder_plans p ON p.policy_id = c.policy_id
        WHERE c.id = $1`,
      [job.campaignId],
    );
    const level = escalationLevels(
      this.state.planOf(policy),
      campaign!.dueAt,
      campaign!.closesAt,
    ).find((candidate) => candidate.level === job.level);
    if (!level) return this.skip(job, `level ${job.level} is not in the campaign's plan`);
    if (level.at > now)
      return this.skip(job, `level ${job.level} is not due before ${level.at.toISOString()}`);

    const security = await this.dataSource.query<{ id: string }[]>(
      `SELECT u.id FROM users u JOIN user_roles r ON r.user_id = u.id
        WHERE r.role = 'security-approver' AND u.active ORDER BY u.id`,
    );
    const recipients = [
      ...new Set([...(item.managerId ? [item.managerId] : []), ...security.map((user) => user.id)]),
    ].filter((id) => id !== item.reviewerId);
    if (recipients.length === 0) {
      this.logger.warn(
        { itemId: job.itemId, level: job.level },
        'Escalation has no recipient: the reviewer has no active manager and no active security approver exists',
      );
    }

    const published = await this.transactions.run(async (manager) => {
      const [escalation] = await manager.query<{ id: string }[]>(
        `INSERT INTO review_escalations (item_id, campaign_id, level, reviewer_id, recipients, escalated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (item_id, level) DO NOTHING RETURNING id`,
        [job.itemId, job.campaignId, job.level, item.reviewerId, recipients, now],
      );
      if (!escalation) return undefined;
      const event = await this.notifications.publishIn(manager, {
        type: ESCALATION_EVENT,
        dedupeKey: `review-escalation-${job.itemId}-${job.level}`,
        title: `Overdue access review on ${campaign!.systemName}: ${item.accountName}`,
        body:
          `${item.reviewerName ?? 'The reviewer'} has not decided on ${item.accountName}, due ` +
          `${campaign!.dueAt.toISOString().slice(0, 10)} (escalation level ${job.level}).`,
        payload: { ...job, reviewerId: item.reviewerId, dueAt: campaign!.dueAt },
        recipients,
      });
      await this.linkEvent(manager, 'review_escalations', escalation.id, event);
      await this.audit.record(manager, {
        action: 'review.item_escalated',
        entityType: 'review_item',
        entityId: job.itemId,
        before: null,
        after: {
          escalationId: escalation.id,
          level: job.level,
          reviewerId: item.reviewerId,
          recipients,
        },
      });
      return event;
    });
    if (published === undefined)
      return this.skip(job, 'escalation at this level was already recorded');
    await this.notifications.queueDeliveries([published]);
    this.logger.log({ ...job, recipients: recipients.length }, 'Review item escalated');
    return { status: 'sent' };
  }

  /**
   * Escalates every pending item of an open campaign whose level is due and has no escalation row,
   * whatever happened to its job. Returns how many escalations it recorded.
   */
  async escalateOverdue(): Promise<number> {
    const now = this.clock.now();
    const campaigns = await this.dataSource.query<
      {
        id: string;
        dueAt: Date;
        closesAt: Date;
        stepsDays: number[] | null;
        overdueCadenceDays: number | null;
        escalationDays: number[] | null;
      }[]
    >(
      `SELECT c.id, c.due_at AS "dueAt", c.closes_at AS "closesAt", p.steps_days AS "stepsDays",
              p.overdue_cadence_days AS "overdueCadenceDays", p.escalation_days AS "escalationDays"
         FROM review_campaigns c LEFT JOIN review_reminder_plans p ON p.policy_id = c.policy_id
        WHERE c.status = 'open' AND c.due_at < $1 AND c.closes_at > $1`,
      [now],
    );
    let escalated = 0;
    for (const campaign of campaigns) {
      const due = escalationLevels(
        this.state.planOf(campaign),
        campaign.dueAt,
        campaign.closesAt,
      ).filter((level) => level.at <= now);
      for (const level of due) {
        const items = await this.dataSource.query<{ id: string }[]>(
          `SELECT i.id FROM review_items i
            WHERE i.campaign_id = $1 AND i.decision IS NULL AND i.reviewer_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM review_escalations e WHERE e.item_id = i.id AND e.level = $2)
            ORDER BY i.id`,
          [campaign.id, level.level],
        );
        for (const item of items) {
          const outcome = await this.escalate({
            campaignId: campaign.id,
            itemId: item.id,
            level: level.level,
          });
          if (outcome.status === 'sent') escalated += 1;
        }
      }
    }
    if (escalated > 0) {
      this.logger.log({ escalated }, 'Sweep escalated overdue review items that had no escalation');
    }
    return escalated;
  }

  private campaign(id: string): Promise<CampaignRow | undefined> {
    return this.dataSource
      .query<CampaignRow[]>(
        `SELECT c.id, c.status, c.due_at AS "dueAt", c.closes_at AS "closesAt", s.name AS "systemName"
           FROM review_campaigns c JOIN systems s ON s.id = c.system_id WHERE c.id = $1`,
        [id],
      )
      .then((rows) => rows[0]);
  }

  private closedReason(campaign: CampaignRow | undefined, now: Date): string | undefined {
    if (!campaign) return 'campaign not found';
    if (campaign.status !== 'open') return 'campaign is closed';
    if (campaign.closesAt <= now) return 'campaign is past its closing time';
    return undefined;
  }

  private async linkEvent(
    manager: EntityManager,
    table: 'review_reminder_deliveries' | 'review_escalations',
    id: string,
    event: PublishedEvent | null,
  ): Promise<void> {
    if (!event) return;
    await manager.query(`UPDATE ${table} SET notification_event_id = $2 WHERE id = $1`, [
      id,
      event.eventId,
    ]);
  }

  private skip(job: object, reason: string): ReminderOutcome {
    this.logger.log({ ...job, reason }, 'Review reminder job skipped');
    return { status: 'skipped', reason };
  }
}
