import { randomBytes } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { NotFoundError, StaleVersionError } from '../common/errors';
import { sealSecret } from '../common/secret-box';
import { Transactions } from '../common/transactions';
import type { Keys } from '../config/keys';
import { KEYS } from '../config/runtime';
import { CreateWebhookDto, UpdateWebhookDto } from './notifications.dto';

export interface WebhookView {
  id: string;
  name: string;
  url: string;
  eventTypes: string[];
  active: boolean;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

const WEBHOOK_VIEW = `
  SELECT id, name, url, event_types AS "eventTypes", active, created_at AS "createdAt",
         updated_at AS "updatedAt", version FROM webhooks`;

/** Webhook endpoints. The signing secret is generated here, shown once and stored encrypted. */
@Injectable()
export class WebhooksService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(KEYS) private readonly keys: Keys,
  ) {}

  list(): Promise<WebhookView[]> {
    return this.dataSource.query<WebhookView[]>(`${WEBHOOK_VIEW} ORDER BY created_at, id`);
  }

  async create(input: CreateWebhookDto): Promise<WebhookView & { secret: string }> {
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    return this.transactions.run(async (manager) => {
      const now = this.clock.now();
      const [{ id }] = await manager.query<{ id: string }[]>(
        `INSERT INTO webhooks (name, url, secret_ciphertext, event_types, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`,
        [input.name, input.url, sealSecret(this.keys.secretsKey, secret), input.eventTypes, now],
      );
      const [view] = await manager.query<WebhookView[]>(`${WEBHOOK_VIEW} WHERE id = $1`, [id]);
      await this.audit.record(manager, {
        action: 'webhook.created',
        entityType: 'webhook',
        entityId: id,
        before: null,
        after: view,
      });
      return { ...view, secret };
    });
  }

  async update(id: string, input: UpdateWebhookDto): Promise<WebhookView> {
    return this.transactions.run(async (manager) => {
      const [before] = await manager.query<WebhookView[]>(
        `${WEBHOOK_VIEW} WHERE id = $1 FOR UPDATE`,
        [id],
      );
      if (!before) throw new NotFoundError('Webhook', id);
      if (before.version !== input.version)
        throw new StaleVersionError('Webhook', id, input.version, before.version);
      await manager.query(
        `UPDATE webhooks SET active = COALESCE($2, active), event_types = COALESCE($3, event_types),
                updated_at = $4, version = version + 1 WHERE id = $1`,
        [id, input.active ?? null, input.eventTypes ?? null, this.clock.now()],
      );
      const [after] = await manager.query<WebhookView[]>(`${WEBHOOK_VIEW} WHERE id = $1`, [id]);
      await this.audit.record(manager, {
        action: 'webhook.updated',
        entityType: 'webhook',
        entityId: id,
        before,
        after,
      });
      return after;
    });
  }
}
