import { Inject, Injectable, OnModuleInit } from '@nestjs/common';

import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import { SchedulerService } from '../scheduling/scheduler.service';
import { CampaignsService } from './campaigns.service';

export const REVIEWS_QUEUE = 'reviews';
export const OPEN_DUE_JOB = 'reviews.open-due';
export const CLOSE_DUE_JOB = 'reviews.close-due';

/**
 * Job schedulers that open campaigns on each policy's cadence and close them after due date and
 * grace. Both re-read PostgreSQL: the unique period key makes a repeated opening a no-op, and a
 * closed campaign is skipped, so lost, late or repeated runs change nothing.
 */
@Injectable()
export class ReviewJobs implements OnModuleInit {
  constructor(
    private readonly scheduler: SchedulerService,
    private readonly campaigns: CampaignsService,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  onModuleInit(): void {
    this.scheduler.handle(REVIEWS_QUEUE, OPEN_DUE_JOB, () => this.campaigns.openDue());
    this.scheduler.handle(REVIEWS_QUEUE, CLOSE_DUE_JOB, () => this.campaigns.closeDue());
    this.scheduler.scheduleRecurring({
      queue: REVIEWS_QUEUE,
      schedulerId: 'reviews-open-due',
      cron: this.settings.reviewOpenCron,
      jobName: OPEN_DUE_JOB,
      data: {},
    });
    this.scheduler.scheduleRecurring({
      queue: REVIEWS_QUEUE,
      schedulerId: 'reviews-close-due',
      cron: this.settings.reviewCloseCron,
      jobName: CLOSE_DUE_JOB,
      data: {},
    });
  }
}
