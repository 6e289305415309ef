import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DelayedError } from 'bullmq';
import { createTransport, Transporter } from 'nodemailer';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { ConflictError, NotFoundError } from '../common/errors';
import { Page, toPage } from '../common/pagination';
import { openSecret } from '../common/secret-box';
import { returnedRows, Transactions } from '../common/transactions';
import type { Keys } from '../config/keys';
import { KEYS, SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import { SchedulerService } from '../scheduling/scheduler.service';
import {
  DELIVERY_JOB,
  DeliveryAttempt,
  DeliveryQueue,
  NOTIFICATIONS_QUEUE,
} from './delivery-queue';
import { DeliveryListQuery } from './notifications.dto';
import { quietHoursEnd } from './quiet-hours';
import { signWebhook, WEBHOOK_HEADERS } from './webhook-signature';

export const SWEEP_JOB = 'notifications.sweep';
/** How long a claimed attempt may run before the sweep treats its worker as gone, in milliseconds. */
const LEASE_MS = 120_000;
const WEBHOOK_TIMEOUT_MS = 10_000;

interface DeliveryRow {
  id: string;
  event_id: string;
  channel: 'email' | 'webhook';
  recipient: string;
  status: string;
  attempts: number;
  max_attempts: number;
  next_attempt_at: Date;
}

interface EventRow {
  id: string;
  type: string;
  title: string;
  body: string;
  payload: unknown;
  created_at: Date;
}

/**
 * Sends e-mail and webhook deliveries, one attempt per job. Each attempt re-reads PostgreSQL, claims
 * the delivery with a lease in a conditional update, sends, and records the outcome. A failure
 * schedules the next attempt with a doubling delay, until the attempts run out (dead letter).
 */
@Injectable()
export class DeliveryService implements OnModuleInit {
  private readonly logger = new Logger('Delivery');
  private mailer: Transporter | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly queue: DeliveryQueue,
    private readonly scheduler: SchedulerService,
    @Inject(SETTINGS) private readonly settings: Settings,
    @Inject(KEYS) private readonly keys: Keys,
  ) {}

  onModuleInit(): void {
    this.scheduler.handle(NOTIFICATIONS_QUEUE, DELIVERY_JOB, (job, token) =>
      this.attempt(job.data as DeliveryAttempt, async (waitMs) => {
        // Hand the same job back to BullMQ for later instead of dropping it: it stays one job id.
        await job.moveToDelayed(Date.now() + waitMs, token);
        throw new DelayedError();
      }),
    );
    this.scheduler.handle(NOTIFICATIONS_QUEUE, SWEEP_JOB, () => this.sweep());
    this.scheduler.scheduleRecurring({
      queue: NOTIFICATIONS_QUEUE,
      schedulerId: 'notifications-sweep',
      cron: '*/1 * * * *',
      jobName: SWEEP_JOB,
      data: {},
    });
    if (this.settings.smtpUrl) {
      this.mailer = createTransport(this.settings.smtpUrl);
    }
  }

  /** Runs one attempt; returns what happened, for the job log. */
  async attempt(
    { deliveryId, attempt }: DeliveryAttempt,
    postpone?: (waitMs: number) => Promise<never>,
  ): Promise<string> {
    const [delivery] = await this.dataSource.query<DeliveryRow[]>(
      `SELECT * FROM deliveries WHERE id = $1`,
      [deliveryId],
    );
    if (!delivery) return this.skip(deliveryId, 'the delivery does not exist');
    if (['delivered', 'dead', 'cancelled'].includes(delivery.status)) {
      return this.skip(deliveryId, `the delivery is ${delivery.status}`);
    }
    if (delivery.attempts !== attempt - 1) {
      return this.skip(deliveryId, `attempt ${attempt} is stale (${delivery.attempts} made)`);
    }
    const now = this.clock.now();
    if (delivery.next_attempt_at > now) {
      // The job ran early, by this instance's clock; wait out the rest rather than lose the attempt.
      const waitMs = delivery.next_attempt_at.getTime() - now.getTime();
      if (postpone) return postpone(Math.min(waitMs, 60_000));
      return this.skip(deliveryId, 'the attempt is not due yet');
    }

    let email: string | undefined;
    if (delivery.channel === 'email') {
      const [user] = await this.dataSource.query<
        {
          email: string;
          active: boolean;
          time_zone: string;
          quiet_start: string | null;
          quiet_end: string | null;
        }[]
      >(
        `SELECT u.email, u.active, u.time_zone, to_char(p.quiet_start, 'HH24:MI') AS quiet_start,
                to_char(p.quiet_end, 'HH24:MI') AS quiet_end
           FROM users u LEFT JOIN notification_preferences p ON p.user_id = u.id WHERE u.id = $1`,
        [delivery.recipient],
      );
      if (!user || !user.active) return this.cancel(delivery, 'the recipient is deactivated');
      if (user.quiet_start && user.quiet_end) {
        const resumeAt = quietHoursEnd(now, user.time_zone, user.quiet_start, user.quiet_end);
        if (resumeAt) return this.defer(delivery, resumeAt);
      }
      email = user.email;
    }

    if (!(await this.claim(delivery, now)))
      return this.skip(deliveryId, 'another worker claimed it');
    const [event] = await this.dataSource.query<EventRow[]>(
      `SELECT * FROM notification_events WHERE id = $1`,
      [delivery.event_id],
    );

    try {
      if (delivery.channel === 'email') {
        await this.sendEmail(delivery, event, email!);
      } else {
        await this.sendWebhook(delivery, event);
      }
    } catch (error) {
      return this.recordFailure(delivery, attempt, error);
    }
    await this.finish(delivery, 'delivered', { delivered_at: this.clock.now(), last_error: null });
    return 'delivered';
  }

  /**
   * Queues every delivery that is due and has no live attempt: pending or failed ones whose time
   * has come, and claimed ones whose lease ran out because their worker stopped.
   */
  async sweep(): Promise<{ queued: number }> {
    const now = this.clock.now();
    const expired = returnedRows<{ id: string }>(
      await this.dataSource.query(
        `UPDATE deliveries SET status = 'failed', last_error = 'the worker stopped during the attempt',
                lease_until = NULL, updated_at = $1
          WHERE status = 'sending' AND lease_until < $1 RETURNING id`,
        [now],
      ),
    );
    for (const row of expired) {
      this.logger.warn({ deliveryId: row.id }, 'Delivery attempt lease expired; retrying');
    }
    const due = await this.dataSource.query<
      { id: string; attempts: number; next_attempt_at: Date }[]
    >(
      `SELECT id, attempts, next_attempt_at FROM deliveries
        WHERE status IN ('pending', 'failed') AND next_attempt_at <= $1
        ORDER BY next_attempt_at LIMIT 1000`,
      [now],
    );
    for (const row of due) {
      await this.queue.enqueue({
        id: row.id,
        attempts: row.attempts,
        nextAttemptAt: row.next_attempt_at,
      });
    }
    return { queued: due.length };
  }

  async list(query: DeliveryListQuery): Promise<Page<unknown>> {
    const rows = await this.dataSource.query<unknown[]>(
      `SELECT d.id, d.event_id AS "eventId", e.type AS "eventType", d.channel, d.recipient, d.status, d.attempts,
              d.max_attempts AS "maxAttempts", d.next_attempt_at AS "nextAttemptAt", d.last_error AS "lastError",
              d.delivered_at AS "deliveredAt", d.created_at AS "createdAt", d.updated_at AS "updatedAt"
         FROM deliveries d JOIN notification_events e ON e.id = d.event_id
        WHERE ($1::varchar IS NULL OR d.status = $1)
        ORDER BY d.updated_at ${query.order === 'asc' ? 'ASC' : 'DESC'}, d.id LIMIT $2 OFFSET $3`,
      [query.status ?? null, query.limit + 1, query.offset],
    );
    return toPage(rows, query);
  }

  /** Gives a dead delivery a fresh set of attempts, starting now. */
  async retry(id: string): Promise<void> {
    const delivery = await this.transactions.run(async (manager) => {
      const [row] = await manager.query<DeliveryRow[]>(
        `SELECT * FROM deliveries WHERE id = $1 FOR UPDATE`,
        [id],
      );
      if (!row) throw new NotFoundError('Delivery', id);
      if (row.status !== 'dead') {
        throw new ConflictError(
          'DELIVERY.NOT_DEAD',
          `Delivery ${id} is ${row.status}; only dead deliveries are retried`,
        );
      }
      const now = this.clock.now();
      await manager.query(
        `UPDATE deliveries SET status = 'pending', max_attempts = attempts + $2, next_attempt_at = $3,
                updated_at = $3 WHERE id = $1`,
        [id, this.settings.notifyMaxAttempts, now],
      );
      await this.recordChange(manager, row, 'delivery.retried', { status: 'pending' });
      return { id, attempts: row.attempts, nextAttemptAt: now };
    });
    await this.queue.enqueue(delivery);
  }

  private async claim(delivery: DeliveryRow, now: Date): Promise<boolean> {
    return this.transactions.run(async (manager) => {
      const [, affected] = await manager.query<[unknown, number]>(
        `UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = $3, updated_at = $2
          WHERE id = $1 AND attempts = $4 AND status IN ('pending', 'failed')`,
        [delivery.id, now, new Date(now.getTime() + LEASE_MS), delivery.attempts],
      );
      if (affected !== 1) return false;
      await this.recordChange(manager, delivery, 'delivery.attempt_started', {
        status: 'sending',
        attempts: delivery.attempts + 1,
      });
      return true;
    });
  }

  private async recordFailure(
    delivery: DeliveryRow,
    attempt: number,
    error: unknown,
  ): Promise<string> {
    const reason = error instanceof Error ? error.message : String(error);
    const dead = attempt >= delivery.max_attempts;
    const nextAttemptAt = new Date(
      this.clock.now().getTime() + this.settings.notifyRetryBaseMs * 2 ** (attempt - 1),
    );
    this.logger.warn(
      { deliveryId: delivery.id, channel: delivery.channel, attempt, err: error },
      dead
        ? 'Delivery gave up; it is in the dead letter list'
        : 'Delivery attempt failed; retrying',
    );
    await this.finish(delivery, dead ? 'dead' : 'failed', {
      last_error: reason.slice(0, 1000),
      next_attempt_at: nextAttemptAt,
    });
    if (!dead) await this.queue.enqueue({ id: delivery.id, attempts: attempt, nextAttemptAt });
    return dead ? 'dead' : 'failed';
  }

  private async finish(
    delivery: DeliveryRow,
    status: string,
    fields: Record<string, unknown>,
  ): Promise<void> {
    await this.transactions.run(async (manager) => {
      const columns = Object.keys(fields);
      const assignments = columns.map((column, index) => `${column} = $${index + 4}`).join(', ');
      await manager.query(
        `UPDATE deliveries SET status = $2, lease_until = NULL, updated_at = $3${assignments ? `, ${assignments}` : ''}
          WHERE id = $1`,
        [delivery.id, status, this.clock.now(), ...Object.values(fields)],
      );
      await this.recordChange(manager, delivery, `delivery.${status}`, { status, ...fields });
    });
  }

  private async cancel(delivery: DeliveryRow, reason: string): Promise<string> {
    await this.finish(delivery, 'cancelled', { last_error: reason });
    this.logger.log({ deliveryId: delivery.id, reason }, 'Delivery cancelled');
    return 'cancelled';
  }

  /** Postpones an e-mail to the end of the recipient's quiet hours; the sweep queues it then. */
  private async defer(delivery: DeliveryRow, resumeAt: Date): Promise<string> {
    await this.transactions.run(async (manager) => {
      await manager.query(
        `UPDATE deliveries SET next_attempt_at = $2, updated_at = $3 WHERE id = $1`,
        [delivery.id, resumeAt, this.clock.now()],
      );
      await this.recordChange(manager, delivery, 'delivery.deferred', {
        nextAttemptAt: resumeAt,
        reason: 'quiet hours',
      });
    });
    return `deferred until ${resumeAt.toISOString()}`;
  }

  private skip(deliveryId: string, reason: string): string {
    this.logger.log({ deliveryId, reason }, 'Delivery attempt skipped');
    return `skipped: ${reason}`;
  }

  private async recordChange(
    manager: EntityManager,
    delivery: DeliveryRow,
    action: string,
    change: Record<string, unknown>,
  ): Promise<void> {
    await this.audit.record(manager, {
      action,
      entityType: 'delivery',
      entityId: delivery.id,
      before: { status: delivery.status, attempts: delivery.attempts },
      after: {
        eventId: delivery.event_id,
        channel: delivery.channel,
        recipient: delivery.recipient,
        ...change,
      },
    });
  }

  private async sendEmail(delivery: DeliveryRow, event: EventRow, to: string): Promise<void> {
    if (!this.mailer) throw new Error('SMTP_URL is unset; e-mail cannot be sent');
    await this.mailer.sendMail({
      from: this.settings.mailFrom,
      to,
      subject: event.title,
      text: event.body,
      html: renderHtml(event),
      // The same id on every attempt lets mail servers drop a copy of a message already accepted.
      messageId: `<delivery-${delivery.id}@governance.invalid>`,
    });
  }

  private async sendWebhook(delivery: DeliveryRow, event: EventRow): Promise<void> {
    const [hook] = await this.dataSource.query<
      { url: string; secret_ciphertext: Buffer; active: boolean }[]
    >(`SELECT url, secret_ciphertext, active FROM webhooks WHERE id = $1`, [delivery.recipient]);
    if (!hook || !hook.active) throw new Error('the webhook was deleted or deactivated');
    const body = Buffer.from(
      JSON.stringify({
        id: event.id,
        type: event.type,
        createdAt: event.created_at,
        title: event.title,
        data: event.payload,
      }),
      'utf8',
    );
    // A fresh timestamp per attempt, signed together with the exact bytes sent.
    const timestamp = Math.floor(this.clock.now().getTime() / 1000);
    const response = await fetch(hook.url, {
      method: 'POST',
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      headers: {
        'content-type': 'application/json; charset=utf-8',
        [WEBHOOK_HEADERS.eventId]: event.id,
        [WEBHOOK_HEADERS.timestamp]: String(timestamp),
        [WEBHOOK_HEADERS.signature]: signWebhook(
          openSecret(this.keys.secretsKey, hook.secret_ciphertext),
          timestamp,
          body,
        ),
      },
    });
    await response.body?.cancel();
    if (!response.ok) throw new Error(`the endpoint responded with HTTP ${response.status}`);
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function renderHtml(event: EventRow): string {
  const lines = event.body
    .split('\n')
    .map((line) => `<li>${escapeHtml(line)}</li>`)
    .join('');
  return `<!doctype html><html><body><h1>${escapeHtml(event.title)}</h1><ul>${lines}</ul></body></html>`;
}
