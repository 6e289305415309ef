import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { InvalidInputError, NotFoundError } from '../common/errors';
import { Page, toPage } from '../common/pagination';
import { Transactions } from '../common/transactions';
import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import { DeliveryQueue } from './delivery-queue';
import {
  NotificationListQuery,
  PreferencesDto,
  ROUTE_CHANNELS,
  RouteDto,
} from './notifications.dto';

/** An event to tell people about; `dedupeKey` makes a repeat of the same event a no-op. */
export interface NotificationEvent {
  type: string;
  dedupeKey: string;
  title: string;
  body: string;
  payload: object;
  /** User ids to notify in-app and by e-mail (subject to routes and preferences). */
  recipients: string[];
}

export interface PublishedEvent {
  eventId: string;
  deliveries: { id: string; attempts: number; nextAttemptAt: Date }[];
}

export interface Preferences {
  channels: string[];
  quietStart: string | null;
  quietEnd: string | null;
}

const DEFAULT_USER_CHANNELS = ['in-app', 'email'];

/**
 * Publishes notification events: one in-app notification per recipient, and one delivery record
 * per (event, recipient, channel) for e-mail and webhooks, all in one transaction. Deliveries are
 * then queued; a periodic sweep queues any whose job was lost.
 */
@Injectable()
export class NotificationsService {
  private readonly logger = new Logger('Notifications');

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly queue: DeliveryQueue,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  /** Returns the new event id, or null when an event with the same dedupe key exists already. */
  async publish(event: NotificationEvent): Promise<string | null> {
    const result = await this.transactions.run((manager) => this.publishWithin(manager, event));
    if (result === null) return null;
    for (const delivery of result.deliveries) {
      await this.queue.enqueue(delivery);
    }
    return result.eventId;
  }

  /**
   * Publishes inside the caller's transaction, so the event commits or rolls back with the change
   * it reports. Pass the result to {@link queueDeliveries} once the transaction has committed; a
   * missed call only delays delivery until the next sweep.
   */
  publishIn(manager: EntityManager, event: NotificationEvent): Promise<PublishedEvent | null> {
    return this.publishWithin(manager, event);
  }

  async queueDeliveries(published: (PublishedEvent | null)[]): Promise<void> {
    for (const event of published) {
      for (const delivery of event?.deliveries ?? []) await this.queue.enqueue(delivery);
    }
  }

  private async publishWithin(
    manager: EntityManager,
    event: NotificationEvent,
  ): Promise<PublishedEvent | null> {
    const now = this.clock.now();
    const [created] = await manager.query<{ id: string }[]>(
      `INSERT INTO notification_events (type, dedupe_key, title, body, payload, created_at)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
      [event.type, event.dedupeKey, event.title, event.body, JSON.stringify(event.payload), now],
    );
    if (!created) {
      this.logger.log(
        { dedupeKey: event.dedupeKey },
        'Notification event already published; skipped',
      );
      return null;
    }

    const routeChannels = await this.routeChannels(manager, event.type);
    const deliveries: { id: string; attempts: number; nextAttemptAt: Date }[] = [];
    const addDelivery = async (channel: 'email' | 'webhook', recipient: string): Promise<void> => {
      const [row] = await manager.query<{ id: string }[]>(
        `INSERT INTO deliveries (event_id, channel, recipient, status, max_attempts, next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, 'pending', $4, $5, $5, $5)
         ON CONFLICT (event_id, recipient, channel) DO NOTHING RETURNING id`,
        [created.id, channel, recipient, this.settings.notifyMaxAttempts, now],
      );
      if (row) deliveries.push({ id: row.id, attempts: 0, nextAttemptAt: now });
    };

    const users = await manager.query<{ id: string; channels: string[] | null }[]>(
      `SELECT u.id, p.channels FROM users u LEFT JOIN notification_preferences p ON p.user_id = u.id
        WHERE u.id = ANY($1::uuid[]) AND u.active`,
      [event.recipients],
    );
    for (const user of users) {
      const channels = user.channels ?? DEFAULT_USER_CHANNELS;
      if (routeChannels.includes('in-app') && channels.includes('in-app')) {
        await manager.query(
          `INSERT INTO notifications (user_id, event_id, title, body, created_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (event_id, user_id) DO NOTHING`,
          [user.id, created.id, event.title, event.body, now],
        );
      }
      if (routeChannels.includes('email') && channels.includes('email') && this.settings.smtpUrl) {
        await addDelivery('email', user.id);
      }
    }
    if (routeChannels.includes('webhook')) {
      const hooks = await manager.query<{ id: string }[]>(
        `SELECT id FROM webhooks WHERE active AND $1 = ANY(event_types)`,
        [event.type],
      );
      for (const hook of hooks) await addDelivery('webhook', hook.id);
    }

    await this.audit.record(manager, {
      action: 'notification.published',
      entityType: 'notification_event',
      entityId: created.id,
      before: null,
      after: { ...event, deliveries: deliveries.map((delivery) => delivery.id) },
    });
    return { eventId: created.id, deliveries };
  }

  private async routeChannels(manager: EntityManager, eventType: string): Promise<string[]> {
    const [route] = await manager.query<{ channels: string[] }[]>(
      `SELECT channels FROM notification_routes WHERE event_type = $1`,
      [eventType],
    );
    return route?.channels ?? [...ROUTE_CHANNELS];
  }

  async listMine(userId: string, query: NotificationListQuery): Promise<Page<unknown>> {
    const rows = await this.dataSource.query<unknown[]>(
      `SELECT n.id, e.type, n.title, n.body, e.payload, n.created_at AS "createdAt", n.read_at AS "readAt"
         FROM notifications n JOIN notification_events e ON e.id = n.event_id
        WHERE n.user_id = $1 AND ($2::boolean IS NULL OR ($2 = (n.read_at IS NULL)))
        ORDER BY n.created_at ${query.order === 'asc' ? 'ASC' : 'DESC'}, n.id
        LIMIT $3 OFFSET $4`,
      [userId, query.unread ?? null, query.limit + 1, query.offset],
    );
    return toPage(rows, query);
  }

  async unreadCount(userId: string): Promise<{ unread: number }> {
    const [row] = await this.dataSource.query<{ unread: number }[]>(
      `SELECT count(*)::int AS unread FROM notifications WHERE user_id = $1 AND read_at IS NULL`,
      [userId],
    );
    return row;
  }

  /** Marks one of the caller's notifications read; another user's id is not found. */
  async markRead(userId: string, id: string): Promise<void> {
    await this.transactions.run(async (manager) => {
      const [, affected] = await manager.query<[unknown, number]>(
        `UPDATE notifications SET read_at = COALESCE(read_at, $3) WHERE id = $1 AND user_id = $2`,
        [id, userId, this.clock.now()],
      );
      if (affected !== 1) throw new NotFoundError('Notification', id);
      await this.audit.record(manager, {
        action: 'notification.read',
        entityType: 'notification',
        entityId: id,
        before: null,
        after: { readBy: userId },
      });
    });
  }

  async markAllRead(userId: string): Promise<{ marked: number }> {
    return this.transactions.run(async (manager) => {
      const [, affected] = await manager.query<[unknown, number]>(
        `UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL`,
        [userId, this.clock.now()],
      );
      await this.audit.record(manager, {
        action: 'notification.read_all',
        entityType: 'user',
        entityId: userId,
        before: null,
        after: { marked: affected },
      });
      return { marked: affected };
    });
  }

  async preferences(userId: string): Promise<Preferences> {
    const [row] = await this.dataSource.query<Preferences[]>(
      `SELECT channels, to_char(quiet_start, 'HH24:MI') AS "quietStart", to_char(quiet_end, 'HH24:MI') AS "quietEnd"
         FROM notification_preferences WHERE user_id = $1`,
      [userId],
    );
    return row ?? { channels: DEFAULT_USER_CHANNELS, quietStart: null, quietEnd: null };
  }

  async setPreferences(userId: string, input: PreferencesDto): Promise<Preferences> {
    if ((input.quietStart === undefined) !== (input.quietEnd === undefined)) {
      throw new InvalidInputError('Give both quietStart and quietEnd, or neither', [
        {
          field: input.quietStart === undefined ? 'quietStart' : 'quietEnd',
          problems: ['required with the other'],
        },
      ]);
    }
    return this.transactions.run(async (manager) => {
      const before = await this.preferences(userId);
      await manager.query(
        `INSERT INTO notification_preferences (user_id, channels, quiet_start, quiet_end, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id) DO UPDATE SET channels = $2, quiet_start = $3, quiet_end = $4, updated_at = $5`,
        [
          userId,
          input.channels,
          input.quietStart ?? null,
          input.quietEnd ?? null,
          this.clock.now(),
        ],
      );
      const after = {
        channels: input.channels,
        quietStart: input.quietStart ?? null,
        quietEnd: input.quietEnd ?? null,
      };
      await this.audit.record(manager, {
        action: 'notification.preferences_set',
        entityType: 'user',
        entityId: userId,
        before,
        after,
      });
      return after;
    });
  }

  async setRoute(
    eventType: string,
    input: RouteDto,
  ): Promise<{ eventType: string; channels: string[] }> {
    return this.transactions.run(async (manager) => {
      const before = await this.routeChannels(manager, eventType);
      await manager.query(
        `INSERT INTO notification_routes (event_type, channels, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (event_type) DO UPDATE SET channels = $2, updated_at = $3`,
        [eventType, input.channels, this.clock.now()],
      );
      await this.audit.record(manager, {
        action: 'notification.route_set',
        entityType: 'notification_route',
        entityId: eventType,
        before: { channels: before },
        after: { channels: input.channels },
      });
      return { eventType, channels: input.channels };
    });
  }

  async routes(): Promise<{ eventType: string; channels: string[] }[]> {
    return this.dataSource.query(
      `SELECT event_type AS "eventType", channels FROM notification_routes ORDER BY event_type`,
    );
  }
}
