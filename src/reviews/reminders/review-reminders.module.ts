import { Module } from '@nestjs/common';

import { AuditModule } from '../../audit/audit.module';
import { NotificationsModule } from '../../notifications/notifications.module';
import { ReviewsModule } from '../reviews.module';
import { ReminderDelivery } from './reminder-delivery';
import { ReminderQueue } from './reminder-queue';
import { ReminderState } from './reminder-state';
import { ReviewReminders } from './review-reminders';
import { ReviewRemindersController } from './review-reminders.controller';
import { ReminderWiring } from './reminder-wiring';

@Module({
  imports: [AuditModule, NotificationsModule, ReviewsModule],
  controllers: [ReviewRemindersController],
  providers: [ReminderState, ReminderQueue, ReminderDelivery, ReviewReminders, ReminderWiring],
  exports: [ReviewReminders],
})
export class ReviewRemindersModule {}
