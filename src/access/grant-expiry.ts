import { Injectable, Logger } from '@nestjs/common';

import { Clock } from '../common/clock';
import { SchedulerService } from '../scheduling/scheduler.service';

export const ACCESS_QUEUE = 'access';
export const GRANT_EXPIRY_JOB = 'access.grant-expiry';
export const EXPIRY_SWEEP_JOB = 'access.expiry-sweep';
/** Fixed scheduler id, so every instance upserts the same sweep. */
export const EXPIRY_SWEEP_SCHEDULER = 'access-expiry-sweep';
/** The sweep catches grants whose own job was lost with Redis; every 10 minutes, in UTC. */
export const EXPIRY_SWEEP_CRON = '*/10 * * * *';

/** Deterministic job id of one grant's expiry; BullMQ rejects ':' in ids. */
export function grantExpiryJobId(grantId: string): string {
  return `grant-expiry-${grantId}`;
}

/** Queues one grant's expiry job at its end date. GrantsService registers the handlers. */
@Injectable()
export class GrantExpiryQueue {
  private readonly logger = new Logger('GrantExpiry');

  constructor(
    private readonly scheduler: SchedulerService,
    private readonly clock: Clock,
  ) {}

  /** Queues the job; a failure is logged and not raised, because the periodic sweep covers it. */
  async schedule(grantId: string, endsAt: Date): Promise<void> {
    try {
      await this.scheduler.add(
        ACCESS_QUEUE,
        GRANT_EXPIRY_JOB,
        { grantId },
        {
          jobId: grantExpiryJobId(grantId),
          delay: Math.max(0, endsAt.getTime() - this.clock.now().getTime()),
          removeOnComplete: true,
          removeOnFail: 1000,
        },
      );
    } catch (error) {
      this.logger.warn(
        { err: error, grantId },
        'Could not queue the grant expiry job; the periodic sweep expires the grant instead',
      );
    }
  }
}
