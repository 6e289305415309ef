import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { Clock } from '../../common/clock';
import { SETTINGS } from '../../config/runtime';
import type { Settings } from '../../config/settings';
import { DigestSchedule, isKnownTimeZone } from './digest-schedule';
import {
  DesiredJob,
  digestJob,
  digestJobId,
  escalationJob,
  escalationJobId,
} from './reminder-jobs';
import { escalationLevels, planDigests, ReminderPlan, reminderSteps } from './reminder-plan';

/** Limits a computation to one campaign, and optionally to the items of some reviewers. */
export interface JobScope {
  campaignId?: string;
  reviewerIds?: string[];
}

interface CampaignRow {
  id: string;
  dueAt: Date;
  closesAt: Date;
  stepsDays: number[] | null;
  overdueCadenceDays: number | null;
  escalationDays: number[] | null;
}

interface ReviewerRow {
  campaignId: string;
  reviewerId: string;
  timeZone: string;
  weekdays: number[] | null;
  localTime: string | null;
}

interface ItemRow {
  id: string;
  campaignId: string;
  reviewerId: string;
  pending: boolean;
}

/**
 * Reads from PostgreSQL which reminder and escalation jobs should exist. PostgreSQL is the source
 * of truth: anything in Redis that this does not list is stale, and anything it lists but Redis
 * lacks was lost.
 */
@Injectable()
export class ReminderState {
  private readonly logger = new Logger('ReviewReminders');

  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  /** The plan of a policy's reminder row, or the REVIEW_* settings when it has none. */
  planOf(
    row: Pick<CampaignRow, 'stepsDays' | 'overdueCadenceDays' | 'escalationDays'>,
  ): ReminderPlan {
    const defaults = this.settings.reviewReminders;
    return {
      stepsDays: row.stepsDays ?? defaults.stepsDays,
      overdueCadenceDays: row.overdueCadenceDays ?? defaults.overdueCadenceDays,
      escalationDays: row.escalationDays ?? defaults.escalationDays,
    };
  }

  /** The reviewer's digest schedule row, or the default; an unknown zone falls back to UTC. */
  scheduleOf(row: Omit<ReviewerRow, 'campaignId'>): DigestSchedule {
    const defaults = this.settings.reviewReminders;
    let timeZone = row.timeZone;
    if (!isKnownTimeZone(timeZone)) {
      this.logger.warn(
        { reviewerId: row.reviewerId, timeZone },
        'Unknown time zone on reviewer; digests use UTC until it is corrected',
      );
      timeZone = 'UTC';
    }
    return {
      weekdays: row.weekdays ?? defaults.digestWeekdays,
      localTime: row.localTime ?? defaults.digestTime,
      timeZone,
    };
  }

  /**
   * Lists the jobs that should be queued: one digest per reviewer, campaign and remaining step,
   * and one escalation per pending item and level whose time is still ahead (the sweep handles
   * levels already due). Steps already delivered and levels already recorded are left out.
   */
  async desiredJobs(scope: JobScope = {}): Promise<DesiredJob[]> {
    const now = this.clock.now();
    const campaigns = await this.openCampaigns(scope, now);
    if (campaigns.length === 0) return [];
    const campaignIds = campaigns.map((campaign) => campaign.id);

    const reviewers = await this.pendingReviewers(campaignIds, scope.reviewerIds);
    const delivered = await this.dataSource.query<{ key: string }[]>(
      `SELECT campaign_id || '/' || reviewer_id || '/' || step AS key
         FROM review_reminder_deliveries WHERE campaign_id = ANY($1::uuid[])`,
      [campaignIds],
    );
    const deliveredKeys = new Set(delivered.map((row) => row.key));
    const byId = new Map(campaigns.map((campaign) => [campaign.id, campaign]));

    const jobs: DesiredJob[] = [];
    for (const reviewer of reviewers) {
      const campaign = byId.get(reviewer.campaignId)!;
      const steps = reminderSteps(this.planOf(campaign), campaign.dueAt, campaign.closesAt);
      const prefix = `${campaign.id}/${reviewer.reviewerId}/`;
      const deliveredSteps = new Set(
        steps.map((step) => step.name).filter((name) => deliveredKeys.has(prefix + name)),
      );
      const planned = planDigests(
        steps,
        this.scheduleOf(reviewer),
        now,
        campaign.closesAt,
        deliveredSteps,
      );
      for (const digest of planned) {
        jobs.push(digestJob(campaign.id, reviewer.reviewerId, digest.step, digest.runAt));
      }
    }

    const items = await this.items(campaignIds, scope.reviewerIds, true);
    const recorded = await this.dataSource.query<{ key: string }[]>(
      `SELECT item_id || '/' || level AS key FROM review_escalations WHERE campaign_id = ANY($1::uuid[])`,
      [campaignIds],
    );
    const recordedKeys = new Set(recorded.map((row) => row.key));
    for (const campaign of campaigns) {
      const levels = escalationLevels(this.planOf(campaign), campaign.dueAt, campaign.closesAt);
      const ahead = levels.filter((level) => level.at.getTime() > now.getTime());
      for (const item of items.get(campaign.id) ?? []) {
        for (const level of ahead) {
          if (recordedKeys.has(`${item.id}/${level.level}`)) continue;
          jobs.push(escalationJob(campaign.id, item.id, level.level, level.at));
        }
      }
    }
    return jobs;
  }

  /**
   * Lists every job id the campaign could have for the given reviewers (or for all its reviewers),
   * pending or not: each step of each reviewer and each level of each item. Callers remove those
   * that are no longer desired.
   */
  async possibleJobIds(campaignId: string, reviewerIds?: string[]): Promise<string[]> {
    const [campaign] = await this.dataSource.query<CampaignRow[]>(
      `${CAMPAIGN_SELECT} WHERE c.id = $1`,
      [campaignId],
    );
    if (!campaign) return [];
    const plan = this.planOf(campaign);
    const stepNames = reminderSteps(plan, campaign.dueAt, campaign.closesAt).map(
      (step) => step.name,
    );
    const levels = [...new Set(plan.escalationDays)].map((_, index) => index + 1);

    const reviewers =
      reviewerIds ??
      (
        await this.dataSource.query<{ id: string }[]>(
          `SELECT reviewer_id AS id FROM review_items WHERE campaign_id = $1 AND reviewer_id IS NOT NULL
           UNION SELECT reviewer_id FROM review_reminder_deliveries WHERE campaign_id = $1`,
          [campaignId],
        )
      ).map((row) => row.id);
    const ids: string[] = [];
    for (const reviewerId of reviewers) {
      for (const step of stepNames) ids.push(digestJobId(campaignId, reviewerId, step));
    }
    const items = (await this.items([campaignId], reviewerIds, false)).get(campaignId) ?? [];
    for (const item of items) {
      for (const level of levels) ids.push(escalationJobId(item.id, level));
    }
    return ids;
  }

  private openCampaigns(scope: JobScope, now: Date): Promise<CampaignRow[]> {
    return this.dataSource.query<CampaignRow[]>(
      `${CAMPAIGN_SELECT}
        WHERE c.status = 'open' AND c.closes_at > $1 AND ($2::uuid IS NULL OR c.id = $2)`,
      [now, scope.campaignId ?? null],
    );
  }

  private pendingReviewers(campaignIds: string[], reviewerIds?: string[]): Promise<ReviewerRow[]> {
    return this.dataSource.query<ReviewerRow[]>(
      `SELECT DISTINCT i.campaign_id AS "campaignId", i.reviewer_id AS "reviewerId",
              u.time_zone AS "timeZone", s.weekdays, to_char(s.local_time, 'HH24:MI') AS "localTime"
         FROM review_items i
         JOIN users u ON u.id = i.reviewer_id
         LEFT JOIN review_digest_schedules s ON s.user_id = i.reviewer_id
        WHERE i.campaign_id = ANY($1::uuid[]) AND i.decision IS NULL AND u.active
          AND ($2::uuid[] IS NULL OR i.reviewer_id = ANY($2::uuid[]))`,
      [campaignIds, reviewerIds ?? null],
    );
  }

  /** Items by campaign: pending ones only, or every item with a reviewer. */
  private async items(
    campaignIds: string[],
    reviewerIds: string[] | undefined,
    pendingOnly: boolean,
  ): Promise<Map<string, ItemRow[]>> {
    const rows = await this.dataSource.query<ItemRow[]>(
      `SELECT id, campaign_id AS "campaignId", reviewer_id AS "reviewerId",
              decision IS NULL AS pending
         FROM review_items
        WHERE campaign_id = ANY($1::uuid[]) AND reviewer_id IS NOT NULL
          AND ($2::uuid[] IS NULL OR reviewer_id = ANY($2::uuid[]))
          AND (NOT $3 OR decision IS NULL)`,
      [campaignIds, reviewerIds ?? null, pendingOnly],
    );
    const byCampaign = new Map<string, ItemRow[]>();
    for (const row of rows) {
      const list = byCampaign.get(row.campaignId) ?? [];
      list.push(row);
      byCampaign.set(row.campaignId, list);
    }
    return byCampaign;
  }
}

const CAMPAIGN_SELECT = `
  SELECT c.id, c.due_at AS "dueAt", c.closes_at AS "closesAt", p.steps_days AS "stepsDays",
         p.overdue_cadence_days AS "overdueCadenceDays", p.escalation_days AS "escalationDays"
    FROM review_campaigns c
    LEFT JOIN review_reminder_plans p ON p.policy_id = c.policy_id`;
