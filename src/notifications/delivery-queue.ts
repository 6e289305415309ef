import { Injectable, Logger } from '@nestjs/common';

import { Clock } from '../common/clock';
import { SchedulerService } from '../scheduling/scheduler.service';

export const NOTIFICATIONS_QUEUE = 'notifications';
export const DELIVERY_JOB = 'delivery.attempt';

export interface DeliveryAttempt {
  deliveryId: string;
  attempt: number;
}

/**
 * Queues delivery attempts. The job id names the delivery, the attempt number and its scheduled
 * time, so a repeat of the same attempt is dropped by BullMQ and every later attempt gets its own id.
 */
@Injectable()
export class DeliveryQueue {
  private readonly logger = new Logger('DeliveryQueue');

  constructor(
    private readonly scheduler: SchedulerService,
    private readonly clock: Clock,
  ) {}

  /** Queues the next attempt; a Redis failure is logged and left to the sweep, which rebuilds jobs from PostgreSQL. */
  async enqueue(delivery: { id: string; attempts: number; nextAttemptAt: Date }): Promise<void> {
    const attempt = delivery.attempts + 1;
    const jobId = `delivery-${delivery.id}-${attempt}-${delivery.nextAttemptAt.getTime()}`;
    const delay = Math.max(0, delivery.nextAttemptAt.getTime() - this.clock.now().getTime());
    try {
      await this.scheduler.add(
        NOTIFICATIONS_QUEUE,
        DELIVERY_JOB,
        { deliveryId: delivery.id, attempt } satisfies DeliveryAttempt,
        { jobId, delay, removeOnComplete: 1000, removeOnFail: 1000 },
      );
    } catch (error) {
      this.logger.warn(
        { err: error, deliveryId: delivery.id, jobId },
        'Could not queue a delivery; the sweep retries it',
      );
    }
  }
}
