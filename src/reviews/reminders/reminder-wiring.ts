import { Injectable, OnModuleInit } from '@nestjs/common';

import { ReviewEvents } from '../review-events';
import { ReviewReminders } from './review-reminders';

/** Subscribes the reminders to committed campaign changes: openings, decisions, reassignments, closes. */
@Injectable()
export class ReminderWiring implements OnModuleInit {
  constructor(
    private readonly events: ReviewEvents,
    private readonly reminders: ReviewReminders,
  ) {}

  onModuleInit(): void {
    this.events.register(this.reminders);
  }
}
