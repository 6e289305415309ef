import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';

import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import { SchedulerService } from '../scheduling/scheduler.service';
import { KevImportService } from './kev-import.service';

export const KEV_QUEUE = 'kev';
export const KEV_REFRESH_JOB = 'kev.refresh';
/** Fixed scheduler id: every instance upserts the same one, so there is one schedule in Redis. */
export const KEV_REFRESH_SCHEDULER = 'kev-refresh';

/** Refreshes the catalog from KEV_URL on KEV_REFRESH_CRON; off when KEV_URL is unset. */
@Injectable()
export class KevRefresh implements OnModuleInit {
  private readonly logger = new Logger('KevRefresh');

  constructor(
    private readonly scheduler: SchedulerService,
    private readonly imports: KevImportService,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  onModuleInit(): void {
    this.scheduler.handle(KEV_QUEUE, KEV_REFRESH_JOB, async () => {
      // Re-read the setting when the job runs: a schedule left from an older configuration is a no-op.
      if (this.settings.kevUrl === undefined) {
        this.logger.log('KEV refresh skipped: KEV_URL is unset');
        return { skipped: 'KEV_URL is unset' };
      }
      return this.imports.importUrl(this.settings.kevUrl);
    });
    if (this.settings.kevUrl !== undefined) {
      this.scheduler.scheduleRecurring({
        queue: KEV_QUEUE,
        schedulerId: KEV_REFRESH_SCHEDULER,
        cron: this.settings.kevRefreshCron,
        jobName: KEV_REFRESH_JOB,
        data: {},
      });
    } else {
      this.scheduler.removeRecurring(KEV_QUEUE, KEV_REFRESH_SCHEDULER);
    }
  }
}
