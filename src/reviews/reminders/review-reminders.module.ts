import { Module } from '@nestjs/common';

import { AuditModule } from '../../audit/audit.module';
import { NotificationsModule } from '../../notifications/notifications.module';
import { ReminderDelivery } from './reminder-delivery';
import { ReminderQueue } from './reminder-queue';
import { ReminderState } from './reminder-state';
import { ReviewReminders } from './review-reminders';
import { ReviewRemindersController } from './review-reminders.controller';

@Module({
  imports: [AuditModule, NotificationsModule],
  controllers: [ReviewRemindersController],
  providers: [ReminderState, ReminderQueue, ReminderDelivery, ReviewReminders],
  exports: [ReviewReminders],
})
export class ReviewRemindersModule {}
