import { Controller, Get, Param } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';

import { RequirePermission } from '../../common/access';
import { uuidPipe } from '../../common/uuid';
import { ReminderHistory, ReviewReminders } from './review-reminders';

@ApiTags('reviews')
@Controller('review-campaigns')
export class ReviewRemindersController {
  constructor(private readonly reminders: ReviewReminders) {}

  @Get(':id/reminders')
  @RequirePermission('reviews.reminders.read')
  @ApiOperation({
    summary: 'Digests and escalations sent for a review campaign: to whom, when, for which items',
  })
  list(@Param('id', uuidPipe) id: string): Promise<ReminderHistory> {
    return this.reminders.history(id);
  }
}
