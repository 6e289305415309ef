/** BullMQ queue of review digests, escalations and their reconciliation. */
export const REVIEW_REMINDERS_QUEUE = 'review-reminders';
export const DIGEST_JOB = 'review.reminder-digest';
export const ESCALATION_JOB = 'review.escalation';
export const RECONCILE_JOB = 'review.reminders-reconcile';
export const RECONCILE_SCHEDULER_ID = 'review-reminders-reconcile';

export const REMINDER_EVENT = 'review.reminder';
export const ESCALATION_EVENT = 'review.escalation';

export interface DigestJobData {
  kind: 'digest';
  campaignId: string;
  reviewerId: string;
  step: string;
  /** ISO instant of the schedule slot; the processor compares it with the injected clock. */
  runAt: string;
}

export interface EscalationJobData {
  kind: 'escalation';
  campaignId: string;
  itemId: string;
  level: number;
  runAt: string;
}

export type ReminderJobData = DigestJobData | EscalationJobData;

/** A job that PostgreSQL says should be queued. */
export interface DesiredJob {
  id: string;
  name: string;
  data: ReminderJobData;
}

/** Job id of one digest; UUIDs and step names contain no ':', which BullMQ rejects in ids. */
export function digestJobId(campaignId: string, reviewerId: string, step: string): string {
  return `rr-${campaignId}-${reviewerId}-${step}`;
}

export function escalationJobId(itemId: string, level: number): string {
  return `re-${itemId}-${level}`;
}

export function isReminderJobId(id: string): boolean {
  return id.startsWith('rr-') || id.startsWith('re-');
}

export function digestJob(
  campaignId: string,
  reviewerId: string,
  step: string,
  runAt: Date,
): DesiredJob {
  return {
    id: digestJobId(campaignId, reviewerId, step),
    name: DIGEST_JOB,
    data: { kind: 'digest', campaignId, reviewerId, step, runAt: runAt.toISOString() },
  };
}

export function escalationJob(
  campaignId: string,
  itemId: string,
  level: number,
  runAt: Date,
): DesiredJob {
  return {
    id: escalationJobId(itemId, level),
    name: ESCALATION_JOB,
    data: { kind: 'escalation', campaignId, itemId, level, runAt: runAt.toISOString() },
  };
}
