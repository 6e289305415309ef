import { Body, Controller, Get, HttpCode, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';

import { RequirePermission } from '../common/access';
import { DomainError } from '../common/errors';
import { Page } from '../common/pagination';
import { requireSignedInUser } from '../common/request-context';
import { uuidPipe } from '../common/uuid';
import { DeliveryService } from './delivery.service';
import {
  CreateWebhookDto,
  DeliveryListQuery,
  EVENT_TYPES,
  NotificationListQuery,
  PreferencesDto,
  RouteDto,
  UpdateWebhookDto,
} from './notifications.dto';
import { NotificationsService, Preferences } from './notifications.service';
import { WebhooksService, WebhookView } from './webhooks.service';

@ApiTags('notifications')
@Controller('notifications')
export class NotificationsController {
  constructor(
    private readonly notifications: NotificationsService,
    private readonly deliveries: DeliveryService,
    private readonly webhooks: WebhooksService,
  ) {}

  @Get()
  @RequirePermission('self')
  @ApiOperation({ summary: 'Your in-app notifications, newest first' })
  list(@Query() query: NotificationListQuery): Promise<Page<unknown>> {
    return this.notifications.listMine(requireSignedInUser().id, query);
  }

  @Get('unread-count')
  @RequirePermission('self')
  unreadCount(): Promise<{ unread: number }> {
    return this.notifications.unreadCount(requireSignedInUser().id);
  }

  @Post(':id/read')
  @HttpCode(204)
  @RequirePermission('self')
  markRead(@Param('id', uuidPipe) id: string): Promise<void> {
    return this.notifications.markRead(requireSignedInUser().id, id);
  }

  @Post('read-all')
  @HttpCode(200)
  @RequirePermission('self')
  markAllRead(): Promise<{ marked: number }> {
    return this.notifications.markAllRead(requireSignedInUser().id);
  }

  @Get('preferences')
  @RequirePermission('self')
  preferences(): Promise<Preferences> {
    return this.notifications.preferences(requireSignedInUser().id);
  }

  @Put('preferences')
  @RequirePermission('self')
  @ApiOperation({ summary: 'Set your channels and quiet hours (in your time zone)' })
  setPreferences(@Body() body: PreferencesDto): Promise<Preferences> {
    return this.notifications.setPreferences(requireSignedInUser().id, body);
  }

  @Get('routes')
  @RequirePermission('notifications.admin')
  routes(): Promise<{ eventType: string; channels: string[] }[]> {
    return this.notifications.routes();
  }

  @Put('routes/:eventType')
  @RequirePermission('notifications.admin')
  @ApiOperation({
    summary: 'Choose the channels an event type goes to, for the whole organisation',
  })
  setRoute(
    @Param('eventType') eventType: string,
    @Body() body: RouteDto,
  ): Promise<{ eventType: string; channels: string[] }> {
    if (!(EVENT_TYPES as readonly string[]).includes(eventType)) {
      throw new DomainError(
        400,
        'REQUEST.INVALID',
        `Unknown event type ${eventType.slice(0, 60)}`,
        {
          fields: [
            {
              field: 'eventType',
              problems: [`eventType must be one of ${EVENT_TYPES.join(', ')}`],
            },
          ],
        },
      );
    }
    return this.notifications.setRoute(eventType, body);
  }

  @Get('deliveries')
  @RequirePermission('notifications.admin')
  @ApiOperation({
    summary: 'E-mail and webhook deliveries with attempts; status=dead is the dead letter list',
  })
  listDeliveries(@Query() query: DeliveryListQuery): Promise<Page<unknown>> {
    return this.deliveries.list(query);
  }

  @Post('deliveries/:id/retry')
  @HttpCode(202)
  @RequirePermission('notifications.admin')
  retry(@Param('id', uuidPipe) id: string): Promise<void> {
    return this.deliveries.retry(id);
  }

  @Get('webhooks')
  @RequirePermission('notifications.admin')
  listWebhooks(): Promise<WebhookView[]> {
    return this.webhooks.list();
  }

  @Post('webhooks')
  @RequirePermission('notifications.admin')
  @ApiOperation({ summary: 'Register a webhook; the response shows its signing secret once' })
  createWebhook(@Body() body: CreateWebhookDto): Promise<WebhookView & { secret: string }> {
    return this.webhooks.create(body);
  }

  @Patch('webhooks/:id')
  @RequirePermission('notifications.admin')
  updateWebhook(
    @Param('id', uuidPipe) id: string,
    @Body() body: UpdateWebhookDto,
  ): Promise<WebhookView> {
    return this.webhooks.update(id, body);
  }
}
