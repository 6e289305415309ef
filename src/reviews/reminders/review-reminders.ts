import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DelayedError, Job } from 'bullmq';
import { DataSource } from 'typeorm';

import { Clock } from '../../common/clock';
import { DomainError, NotFoundError } from '../../common/errors';
import { currentContext } from '../../common/request-context';
import { SETTINGS } from '../../config/runtime';
import { runsWorker } from '../../config/settings';
import type { Settings } from '../../config/settings';
import { SchedulerService } from '../../scheduling/scheduler.service';
import { ReminderDelivery, ReminderOutcome } from './reminder-delivery';
import {
  DIGEST_JOB,
  ESCALATION_JOB,
  RECONCILE_JOB,
  RECONCILE_SCHEDULER_ID,
  ReminderJobData,
  REVIEW_REMINDERS_QUEUE,
} from './reminder-jobs';
import { ReminderQueue } from './reminder-queue';
import { ReminderState } from './reminder-state';

export interface ReconcileResult {
  created: number;
  removed: number;
  escalated: number;
}

/** What was sent about a campaign, for the reminders route. */
export interface ReminderHistory {
  campaignId: string;
  digests: {
    reviewerId: string;
    reviewerName: string;
    step: string;
    scheduledFor: Date;
    sentAt: Date;
    itemIds: string[];
  }[];
  escalations: {
    itemId: string;
    level: number;
    reviewerId: string;
    recipients: string[];
    escalatedAt: Date;
  }[];
}

/** Roles that read any campaign's reminders; a system owner reads only those of owned systems. */
const UNRESTRICTED_READERS = ['platform-admin', 'security-approver', 'auditor'];

/**
 * Review reminders and escalation. The campaign service calls campaignOpened, itemsChanged and
 * campaignClosed after its transactions commit; reconcile() rebuilds the jobs from PostgreSQL at
 * start-up (worker role), on every Redis reconnect and on a recurring job, and escalates overdue
 * items whose escalation job was lost.
 */
@Injectable()
export class ReviewReminders implements OnModuleInit {
  private readonly logger = new Logger('ReviewReminders');
  private startupResolve: (result: ReconcileResult) => void = () => undefined;
  private readonly startup = new Promise<ReconcileResult>((resolve) => {
    this.startupResolve = resolve;
  });

  constructor(
    private readonly dataSource: DataSource,
    private readonly scheduler: SchedulerService,
    private readonly state: ReminderState,
    private readonly jobs: ReminderQueue,
    private readonly delivery: ReminderDelivery,
    private readonly clock: Clock,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  onModuleInit(): void {
    this.scheduler.handle(REVIEW_REMINDERS_QUEUE, DIGEST_JOB, (job, token) =>
      this.process(job, token),
    );
    this.scheduler.handle(REVIEW_REMINDERS_QUEUE, ESCALATION_JOB, (job, token) =>
      this.process(job, token),
    );
    this.scheduler.handle(REVIEW_REMINDERS_QUEUE, RECONCILE_JOB, () => this.reconcile());
    this.scheduler.scheduleRecurring({
      queue: REVIEW_REMINDERS_QUEUE,
      schedulerId: RECONCILE_SCHEDULER_ID,
      cron: this.settings.reviewReminders.reconcileCron,
      jobName: RECONCILE_JOB,
      data: {},
    });
    if (runsWorker(this.settings)) {
      this.scheduler.onReady('review reminders reconciliation', async () => {
        await this.warnUnlessNoEviction();
        const result = await this.reconcile();
        this.startupResolve(result);
      });
    }
  }

  /** Resolves with the first start-up reconciliation of this process (worker role only). */
  startupReconciliation(): Promise<ReconcileResult> {
    return this.startup;
  }

  /** Queues the campaign's digests and escalations. */
  async campaignOpened(campaignId: string): Promise<void> {
    const desired = await this.state.desiredJobs({ campaignId });
    const { created, kept } = await this.jobs.ensure(desired);
    this.logger.log({ campaignId, created, kept }, 'Review reminders scheduled for campaign');
  }

  /**
   * Brings the jobs of the given reviewers (pass both the old and the new reviewer of a
   * reassignment) in line with PostgreSQL: jobs for decided items and reviewers left with nothing
   * pending are removed, and missing ones added.
   */
  async itemsChanged(campaignId: string, reviewerIds: string[]): Promise<void> {
    const reviewers = [...new Set(reviewerIds)];
    if (reviewers.length === 0) return;
    const desired = await this.state.desiredJobs({ campaignId, reviewerIds: reviewers });
    const wanted = new Set(desired.map((job) => job.id));
    const possible = await this.state.possibleJobIds(campaignId, reviewers);
    const removed = await this.jobs.remove(possible.filter((id) => !wanted.has(id)));
    const { created } = await this.jobs.ensure(desired);
    this.logger.log(
      { campaignId, reviewers: reviewers.length, created, removed },
      'Review reminders updated after item changes',
    );
  }

  /** Removes every queued job of the campaign; processors also skip closed campaigns. */
  async campaignClosed(campaignId: string): Promise<void> {
    const removed = await this.jobs.remove(await this.state.possibleJobIds(campaignId));
    this.logger.log({ campaignId, removed }, 'Review reminders removed for closed campaign');
  }

  /**
   * Escalates overdue items that have no escalation row, then makes Redis match PostgreSQL:
   * removes queued reminder jobs that are no longer desired and adds the missing ones. Queued ids
   * are listed before PostgreSQL is read, so a job added meanwhile by campaignOpened is never
   * taken for stale.
   */
  async reconcile(): Promise<ReconcileResult> {
    const escalated = await this.delivery.escalateOverdue();
    const queued = await this.jobs.queuedIds();
    const desired = await this.state.desiredJobs();
    const wanted = new Set(desired.map((job) => job.id));
    const removed = await this.jobs.remove(queued.filter((id) => !wanted.has(id)));
    const { created, kept } = await this.jobs.ensure(desired);
    this.logger.log({ created, kept, removed, escalated }, 'Review reminders reconciled');
    return { created, removed, escalated };
  }

  /** Fires the delayed jobs that are due by the injected clock; see ReminderQueue.runDue. */
  runDue(): Promise<string[]> {
    return this.jobs.runDue();
  }

  /** Reads Redis's maxmemory-policy: null when CONFIG is disabled. */
  maxmemoryPolicy(): Promise<string | null> {
    return this.scheduler.maxmemoryPolicy();
  }

  async history(campaignId: string): Promise<ReminderHistory> {
    const [campaign] = await this.dataSource.query<{ systemId: string; ownerId: string | null }[]>(
      `SELECT c.system_id AS "systemId", s.owner_id AS "ownerId"
         FROM review_campaigns c JOIN systems s ON s.id = c.system_id WHERE c.id = $1`,
      [campaignId],
    );
    if (!campaign) throw new NotFoundError('Review campaign', campaignId);
    const user = currentContext()?.user;
    const unrestricted = user?.roles.some((role) => UNRESTRICTED_READERS.includes(role)) ?? true;
    if (!unrestricted && campaign.ownerId !== user?.id) {
      throw new DomainError(
        403,
        'AUTH.NOT_OWNER',
        `Only the owner of system ${campaign.systemId}, auditors, security approvers and platform admins may read its review reminders`,
        { systemId: campaign.systemId },
      );
    }

    const digests = await this.dataSource.query<ReminderHistory['digests']>(
      `SELECT d.reviewer_id AS "reviewerId", u.name AS "reviewerName", d.step,
              d.scheduled_for AS "scheduledFor", d.sent_at AS "sentAt", d.item_ids AS "itemIds"
         FROM review_reminder_deliveries d JOIN users u ON u.id = d.reviewer_id
        WHERE d.campaign_id = $1 ORDER BY d.sent_at, d.reviewer_id, d.step`,
      [campaignId],
    );
    const escalations = await this.dataSource.query<ReminderHistory['escalations']>(
      `SELECT item_id AS "itemId", level, reviewer_id AS "reviewerId", recipients,
              escalated_at AS "escalatedAt"
         FROM review_escalations WHERE campaign_id = $1 ORDER BY escalated_at, item_id, level`,
      [campaignId],
    );
    return { campaignId, digests, escalations };
  }

  /**
   * Runs one digest or escalation job. A job that BullMQ fires before its time by the injected
   * clock goes back to delayed, keeping its id.
   */
  private async process(job: Job, token: string | undefined): Promise<ReminderOutcome> {
    const data = job.data as ReminderJobData;
    const waitMs = Date.parse(data.runAt) - this.clock.now().getTime();
    if (waitMs > 0) {
      await job.moveToDelayed(Date.now() + waitMs, token);
      throw new DelayedError();
    }
    if (data.kind === 'digest') return this.delivery.sendDigest(data);
    return this.delivery.escalate({
      campaignId: data.campaignId,
      itemId: data.itemId,
      level: data.level,
    });
  }

  private async warnUnlessNoEviction(): Promise<void> {
    const policy = await this.scheduler.maxmemoryPolicy();
    if (policy !== null && policy !== 'noeviction') {
      this.logger.warn(
        { policy },
        `Redis maxmemory-policy is "${policy}", so Redis may evict reminder jobs; set it to "noeviction". Reconciliation rebuilds lost jobs from PostgreSQL.`,
      );
    }
  }
}
