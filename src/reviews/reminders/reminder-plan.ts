import { DigestSchedule, nextDigestSlot } from './digest-schedule';

const DAY_MS = 86_400_000;
/** Upper bound on overdue digests per campaign, in case a plan meets a very long grace period. */
const MAX_OVERDUE_STEPS = 400;

/** Reminder settings of one review policy. */
export interface ReminderPlan {
  /** Days before the due date, one digest step each. */
  stepsDays: number[];
  overdueCadenceDays: number;
  /** Days past the due date of each escalation level, level 1 first. */
  escalationDays: number[];
}

/** A moment at which a reviewer should hear about pending items, before any schedule applies. */
export interface ReminderStep {
  /** `b<days>` before the due date or `o<n>` for the n-th overdue digest; part of the job id. */
  name: string;
  at: Date;
}

export interface EscalationLevel {
  level: number;
  at: Date;
}

/** A digest to queue: its step and the schedule slot at which it should go out. */
export interface PlannedDigest {
  step: string;
  runAt: Date;
}

/** Lists a campaign's digest steps in time order: before the due date, then overdue until close. */
export function reminderSteps(plan: ReminderPlan, dueAt: Date, closesAt: Date): ReminderStep[] {
  const before = [...new Set(plan.stepsDays)]
    .sort((a, b) => b - a)
    .map((days) => ({ name: `b${days}`, at: new Date(dueAt.getTime() - days * DAY_MS) }));
  const overdue: ReminderStep[] = [];
  for (let n = 1; n <= MAX_OVERDUE_STEPS; n++) {
    const at = new Date(dueAt.getTime() + n * plan.overdueCadenceDays * DAY_MS);
    if (at.getTime() >= closesAt.getTime()) break;
    overdue.push({ name: `o${n}`, at });
  }
  return [...before, ...overdue];
}

/** Lists the escalation levels that fall before the campaign closes, level 1 first. */
export function escalationLevels(
  plan: ReminderPlan,
  dueAt: Date,
  closesAt: Date,
): EscalationLevel[] {
  return [...new Set(plan.escalationDays)]
    .sort((a, b) => a - b)
    .map((days, index) => ({ level: index + 1, at: new Date(dueAt.getTime() + days * DAY_MS) }))
    .filter((level) => level.at.getTime() < closesAt.getTime());
}

/**
 * Maps a reviewer's steps to digest slots. Each step goes out at the first schedule slot at or
 * after its moment. Of the steps whose slot has passed, only the latest is sent, at the next slot
 * from `now`, and only when neither it nor a later step was delivered. Steps that land on the same
 * slot become one digest named after the latest of them, and slots at or after `closesAt` are
 * dropped, so a reviewer never gets two digests of one campaign at once.
 */
export function planDigests(
  steps: ReminderStep[],
  schedule: DigestSchedule,
  now: Date,
  closesAt: Date,
  deliveredSteps: ReadonlySet<string>,
): PlannedDigest[] {
  const slots = steps.map((step) => nextDigestSlot(step.at, schedule));
  let latestPast = -1;
  slots.forEach((slot, index) => {
    if (slot.getTime() < now.getTime()) latestPast = index;
  });

  const planned: PlannedDigest[] = [];
  const laterDelivered = steps.slice(Math.max(latestPast, 0)).some((step) => {
    return deliveredSteps.has(step.name);
  });
  if (latestPast >= 0 && !laterDelivered) {
    planned.push({ step: steps[latestPast].name, runAt: nextDigestSlot(now, schedule) });
  }
  for (let index = latestPast + 1; index < steps.length; index++) {
    if (deliveredSteps.has(steps[index].name)) continue;
    planned.push({ step: steps[index].name, runAt: slots[index] });
  }

  const bySlot = new Map<number, PlannedDigest>();
  for (const digest of planned) {
    if (digest.runAt.getTime() >= closesAt.getTime()) continue;
    // Later entries are later steps, so the latest step wins its slot.
    bySlot.set(digest.runAt.getTime(), digest);
  }
  return [...bySlot.values()];
}
