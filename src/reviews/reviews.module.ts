import { Module } from '@nestjs/common';

import { AuditModule } from '../audit/audit.module';
import { IdentityModule } from '../identity/identity.module';
import { NotificationsModule } from '../notifications/notifications.module';
import { CampaignsService } from './campaigns.service';
import { ReviewEvents } from './review-events';
import { ReviewItemsService } from './review-items.service';
import { ReviewJobs } from './review-jobs';
import {
  CampaignsController,
  ReviewItemsController,
  ReviewPoliciesController,
} from './reviews.controller';

/** Access review policies, campaigns and decisions (REVIEW). */
@Module({
  imports: [AuditModule, IdentityModule, NotificationsModule],
  controllers: [ReviewPoliciesController, CampaignsController, ReviewItemsController],
  providers: [ReviewEvents, CampaignsService, ReviewItemsService, ReviewJobs],
  exports: [ReviewEvents, CampaignsService, ReviewItemsService],
})
export class ReviewsModule {}
