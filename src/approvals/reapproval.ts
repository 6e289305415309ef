import { Inject, Injectable, OnModuleInit } from '@nestjs/common';

import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import { SchedulerService } from '../scheduling/scheduler.service';
import { ApprovalDecisionsService } from './approval-decisions.service';

export const APPROVALS_QUEUE = 'approvals';
export const REAPPROVAL_JOB = 'approvals.reapproval';
/** Fixed scheduler id: every instance upserts the same schedule. */
export const REAPPROVAL_SCHEDULER = 'approvals-reapproval';

/** Moves approvals near expiry to "re-approval due" on REAPPROVAL_CRON. */
@Injectable()
export class Reapproval implements OnModuleInit {
  constructor(
    private readonly scheduler: SchedulerService,
    private readonly decisions: ApprovalDecisionsService,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  onModuleInit(): void {
    this.scheduler.handle(APPROVALS_QUEUE, REAPPROVAL_JOB, () =>
      this.decisions.markReapprovalDue(),
    );
    this.scheduler.scheduleRecurring({
      queue: APPROVALS_QUEUE,
      schedulerId: REAPPROVAL_SCHEDULER,
      cron: this.settings.reapprovalCron,
      jobName: REAPPROVAL_JOB,
      data: {},
    });
  }
}
