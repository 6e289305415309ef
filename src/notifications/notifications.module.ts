import { Module } from '@nestjs/common';

import { AuditModule } from '../audit/audit.module';
import { VulnerabilitiesModule } from '../vulnerabilities/vulnerabilities.module';
import { DeliveryQueue } from './delivery-queue';
import { DeliveryService } from './delivery.service';
import { KevDueDigest } from './kev-due-digest';
import { NotificationsController } from './notifications.controller';
import { NotificationsService } from './notifications.service';
import { WebhooksService } from './webhooks.service';

@Module({
  imports: [AuditModule, VulnerabilitiesModule],
  controllers: [NotificationsController],
  providers: [DeliveryQueue, NotificationsService, DeliveryService, WebhooksService, KevDueDigest],
  exports: [NotificationsService, DeliveryService, KevDueDigest],
})
export class NotificationsModule {}
