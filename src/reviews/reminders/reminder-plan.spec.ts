import { localTimeToInstant, nextDigestSlot } from './digest-schedule';
import { escalationLevels, planDigests, reminderSteps } from './reminder-plan';

const BERLIN_MONDAYS = { weekdays: [1], localTime: '09:00', timeZone: 'Europe/Berlin' };
const DAILY_UTC = { weekdays: [1, 2, 3, 4, 5, 6, 7], localTime: '09:00', timeZone: 'UTC' };
const PLAN = { stepsDays: [7, 3, 1], overdueCadenceDays: 2, escalationDays: [3, 7] };

describe('nextDigestSlot', () => {
  it('uses 08:00Z before and 07:00Z after the March change', () => {
    expect(nextDigestSlot(new Date('2025-03-21T12:00:00Z'), BERLIN_MONDAYS).toISOString()).toBe(
      '2025-03-24T08:00:00.000Z',
    );
    expect(nextDigestSlot(new Date('2025-03-28T12:00:00Z'), BERLIN_MONDAYS).toISOString()).toBe(
      '2025-03-31T07:00:00.000Z',
    );
  });

  it('uses 07:00Z before and 08:00Z after the October change', () => {
    expect(nextDigestSlot(new Date('2025-10-22T12:00:00Z'), BERLIN_MONDAYS).toISOString()).toBe(
      '2025-10-27T08:00:00.000Z',
    );
    expect(nextDigestSlot(new Date('2025-10-15T12:00:00Z'), BERLIN_MONDAYS).toISOString()).toBe(
      '2025-10-20T07:00:00.000Z',
    );
  });

  it('returns a slot equal to the start', () => {
    const slot = new Date('2025-03-31T07:00:00Z');
    expect(nextDigestSlot(slot, BERLIN_MONDAYS).toISOString()).toBe(slot.toISOString());
  });

  it('moves a passed slot of today to next week', () => {
    expect(nextDigestSlot(new Date('2025-03-31T07:00:01Z'), BERLIN_MONDAYS).toISOString()).toBe(
      '2025-04-07T07:00:00.000Z',
    );
  });
});

describe('localTimeToInstant', () => {
  it('moves a skipped wall time past the gap', () => {
    const instant = localTimeToInstant({ year: 2025, month: 3, day: 30 }, 2, 30, 'Europe/Berlin');
    expect(instant.toISOString()).toBe('2025-03-30T01:30:00.000Z');
  });

  it('maps a repeated wall time to its second occurrence', () => {
    const instant = localTimeToInstant({ year: 2025, month: 10, day: 26 }, 2, 30, 'Europe/Berlin');
    expect(instant.toISOString()).toBe('2025-10-26T01:30:00.000Z');
  });
});

describe('reminderSteps', () => {
  it('lists steps before due, then overdue until close', () => {
    const steps = reminderSteps(
      PLAN,
      new Date('2025-05-10T00:00:00Z'),
      new Date('2025-05-15T00:00:00Z'),
    );
    expect(steps.map((step) => step.name)).toEqual(['b7', 'b3', 'b1', 'o1', 'o2']);
    expect(steps[3].at.toISOString()).toBe('2025-05-12T00:00:00.000Z');
  });
});

describe('escalationLevels', () => {
  it('drops levels at or after close', () => {
    const levels = escalationLevels(
      PLAN,
      new Date('2025-05-10T00:00:00Z'),
      new Date('2025-05-17T00:00:00Z'),
    );
    expect(levels).toEqual([{ level: 1, at: new Date('2025-05-13T00:00:00Z') }]);
  });
});

describe('planDigests', () => {
  const due = new Date('2025-05-10T12:00:00Z');
  const closes = new Date('2025-05-13T12:00:00Z');
  const steps = reminderSteps(PLAN, due, closes);

  it('plans every future step at its slot', () => {
    const planned = planDigests(
      steps,
      DAILY_UTC,
      new Date('2025-05-01T00:00:00Z'),
      closes,
      new Set(),
    );
    expect(planned.map((digest) => `${digest.step}@${digest.runAt.toISOString()}`)).toEqual([
      'b7@2025-05-04T09:00:00.000Z',
      'b3@2025-05-08T09:00:00.000Z',
      'b1@2025-05-10T09:00:00.000Z',
      'o1@2025-05-13T09:00:00.000Z',
    ]);
  });

  it('sends only the latest missed step, at the next slot', () => {
    const now = new Date('2025-05-09T10:00:00Z');
    const planned = planDigests(steps, DAILY_UTC, now, closes, new Set());
    expect(planned.map((digest) => `${digest.step}@${digest.runAt.toISOString()}`)).toEqual([
      'b1@2025-05-10T09:00:00.000Z',
      'o1@2025-05-13T09:00:00.000Z',
    ]);
  });

  it('skips a missed step once a later one went out', () => {
    const now = new Date('2025-05-11T10:00:00Z');
    const planned = planDigests(steps, DAILY_UTC, now, closes, new Set(['b1']));
    expect(planned.map((digest) => digest.step)).toEqual(['o1']);
  });

  it('merges steps that share a weekly slot', () => {
    const planned = planDigests(
      steps,
      BERLIN_MONDAYS,
      new Date('2025-04-01T00:00:00Z'),
      new Date('2025-06-01T00:00:00Z'),
      new Set(),
    );
    expect(planned.map((digest) => `${digest.step}@${digest.runAt.toISOString()}`)).toEqual([
      'b7@2025-05-05T07:00:00.000Z',
      'b1@2025-05-12T07:00:00.000Z',
      'o1@2025-05-19T07:00:00.000Z',
    ]);
  });
});
