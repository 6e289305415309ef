import { randomBytes } from 'node:crypto';

import { Logger } from '@nestjs/common';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { DataSource } from 'typeorm';

import { ManualClock } from '../src/common/clock';
import { ReminderDelivery } from '../src/reviews/reminders/reminder-delivery';
import { ReminderQueue } from '../src/reviews/reminders/reminder-queue';
import { REVIEW_REMINDERS_QUEUE, digestJob } from '../src/reviews/reminders/reminder-jobs';
import { ReviewReminders } from '../src/reviews/reminders/review-reminders';
import { startTestApp, TestApp } from './support/app';
import { createTestDatabase } from './support/database';
import { OwnRedis } from './support/redis-server';
import { createCampaign, createReviewFixture } from './support/reviews';
import { freePort } from './support/service-process';

const HOUR = 3_600_000;
const WEEKLY_PLAN = { stepsDays: [28, 21, 14, 7, 1], overdueCadenceDays: 7, escalationDays: [60] };

/*
 * Delayed jobs follow BullMQ's wall clock, so these tests fire them with ReviewReminders.runDue().
 * It promotes the delayed jobs whose runAt has come by the manual clock and waits for the app's
 * own worker to finish them, the same path a job takes in production.
 */
describe('review reminders', () => {
  let ownRedis: OwnRedis;

  beforeAll(async () => {
    ownRedis = new OwnRedis(await freePort(), ['--maxmemory-policy', 'allkeys-lru']);
    await ownRedis.start();
  });

  afterAll(async () => {
    await ownRedis.stop();
  });

  async function start(
    options: { databaseUrl?: string; prefix?: string; clock?: ManualClock } = {},
  ): Promise<{ t: TestApp; reminders: ReviewReminders; prefix: string }> {
    const prefix = options.prefix ?? `rr${randomBytes(4).toString('hex')}`;
    const t = await startTestApp({
      databaseUrl: options.databaseUrl,
      clock: options.clock,
      env: {
        REDIS_URL: ownRedis.url,
        QUEUE_PREFIX: prefix,
        // Yearly, so the recurring reconciliation never fires in the middle of a test.
        REVIEW_REMINDERS_RECONCILE_CRON: '0 0 1 1 *',
      },
    });
    const reminders = t.app.get(ReviewReminders);
    await reminders.startupReconciliation();
    return { t, reminders, prefix };
  }

  function queueOf(prefix: string): Queue {
    return new Queue(REVIEW_REMINDERS_QUEUE, { connection: { url: ownRedis.url }, prefix });
  }

  async function queuedIds(t: TestApp): Promise<string[]> {
    return (await t.app.get(ReminderQueue).queuedIds()).sort();
  }

  async function deliveries(
    t: TestApp,
    campaignId: string,
  ): Promise<{ reviewerId: string; step: string; sentAt: Date; scheduledFor: Date }[]> {
    return t.app.get(DataSource).query(
      `SELECT reviewer_id AS "reviewerId", step, sent_at AS "sentAt", scheduled_for AS "scheduledFor"
           FROM review_reminder_deliveries WHERE campaign_id = $1 ORDER BY sent_at`,
      [campaignId],
    );
  }

  /** Moves the clock hour by hour to `until`, firing due jobs at each step. */
  async function stepHourly(t: TestApp, reminders: ReviewReminders, until: string): Promise<void> {
    const end = new Date(until).getTime();
    while (t.clock.now().getTime() < end) {
      t.clock.advance(HOUR);
      await reminders.runDue();
    }
  }

  function berlinParts(time: Date): { weekday: string; clock: string } {
    const format = (options: Intl.DateTimeFormatOptions): string =>
      new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', ...options }).format(time);
    return {
      weekday: format({ weekday: 'long' }),
      clock: format({ hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }),
    };
  }

  it('sends one Monday digest per week across both daylight-saving changes', async () => {
    const { t, reminders } = await start({ clock: new ManualClock('2025-03-03T00:00:00Z') });
    try {
      const db = t.app.get(DataSource);
      const fixture = await createReviewFixture(t, WEEKLY_PLAN);
      const reviewer = await t.createUser(['manager']);
      await db.query(`UPDATE users SET time_zone = 'Europe/Berlin' WHERE id = $1`, [reviewer.id]);
      await db.query(
        `INSERT INTO review_digest_schedules (user_id, weekdays, local_time, updated_at)
         VALUES ($1, '{1}', '09:00', $2)`,
        [reviewer.id, t.clock.now()],
      );

      const spring = await createCampaign(t, fixture, {
        dueAt: '2025-04-07T06:00:00Z',
        closesAt: '2025-04-28T06:00:00Z',
        reviewers: [reviewer.id, reviewer.id],
      });
      await reminders.campaignOpened(spring.campaignId);
      await stepHourly(t, reminders, '2025-04-29T00:00:00Z');

      t.clock.set('2025-09-22T00:00:00Z');
      const autumn = await createCampaign(t, fixture, {
        dueAt: '2025-10-27T06:00:00Z',
        closesAt: '2025-11-17T06:00:00Z',
        reviewers: [reviewer.id],
      });
      await reminders.campaignOpened(autumn.campaignId);
      await stepHourly(t, reminders, '2025-11-18T00:00:00Z');

      const springSent = (await deliveries(t, spring.campaignId)).map((row) =>
        row.sentAt.toISOString(),
      );
      expect(springSent).toEqual([
        '2025-03-10T08:00:00.000Z',
        '2025-03-17T08:00:00.000Z',
        '2025-03-24T08:00:00.000Z',
        '2025-03-31T07:00:00.000Z',
        '2025-04-07T07:00:00.000Z',
        '2025-04-14T07:00:00.000Z',
        '2025-04-21T07:00:00.000Z',
      ]);
      const autumnSent = (await deliveries(t, autumn.campaignId)).map((row) =>
        row.sentAt.toISOString(),
      );
      expect(autumnSent).toEqual([
        '2025-09-29T07:00:00.000Z',
        '2025-10-06T07:00:00.000Z',
        '2025-10-13T07:00:00.000Z',
        '2025-10-20T07:00:00.000Z',
        '2025-10-27T08:00:00.000Z',
        '2025-11-03T08:00:00.000Z',
        '2025-11-10T08:00:00.000Z',
      ]);
      for (const sent of [...springSent, ...autumnSent]) {
        expect(berlinParts(new Date(sent))).toEqual({ weekday: 'Monday', clock: '09:00' });
      }

      const [notifications] = await db.query<{ count: number }[]>(
        `SELECT count(*)::int AS count FROM notifications WHERE user_id = $1`,
        [reviewer.id],
      );
      expect(notifications.count).toBe(14);

      const first = await deliveries(t, spring.campaignId);
      const again = await t.app.get(ReminderDelivery).sendDigest({
        kind: 'digest',
        campaignId: spring.campaignId,
        reviewerId: reviewer.id,
        step: first[0].step,
        runAt: first[0].scheduledFor.toISOString(),
      });
      expect(again.status).toBe('skipped');
      t.clock.set('2025-04-01T00:00:00Z');
      const rerun = await t.app.get(ReminderDelivery).sendDigest({
        kind: 'digest',
        campaignId: spring.campaignId,
        reviewerId: reviewer.id,
        step: first[3].step,
        runAt: first[3].scheduledFor.toISOString(),
      });
      expect(rerun).toEqual({ status: 'skipped', reason: 'digest for this step was already sent' });
      expect(await deliveries(t, spring.campaignId)).toHaveLength(7);
    } finally {
      await t.close();
    }
  });

  it('sends nothing for decided, reassigned-away or closed work', async () => {
    const { t, reminders } = await start({ clock: new ManualClock('2025-06-01T00:00:00Z') });
    try {
      const db = t.app.get(DataSource);
      const fixture = await createReviewFixture(t, {
        stepsDays: [7, 3, 1],
        overdueCadenceDays: 2,
        escalationDays: [1],
      });
      const decider = await t.createUser(['manager']);
      const leaver = await t.createUser(['manager']);
      const successor = await t.createUser(['manager']);
      const bystander = await t.createUser(['manager']);
      const { campaignId, itemIds } = await createCampaign(t, fixture, {
        dueAt: '2025-06-20T12:00:00Z',
        closesAt: '2025-06-27T12:00:00Z',
        reviewers: [decider.id, decider.id, leaver.id, bystander.id],
      });
      const closing = await createCampaign(t, fixture, {
        dueAt: '2025-06-21T12:00:00Z',
        closesAt: '2025-06-28T12:00:00Z',
        reviewers: [bystander.id],
      });
      await reminders.campaignOpened(campaignId);
      await reminders.campaignOpened(closing.campaignId);
      const before = await queuedIds(t);
      expect(before.filter((id) => id.includes(decider.id)).length).toBeGreaterThan(0);
      expect(before.filter((id) => id.includes(closing.campaignId)).length).toBeGreaterThan(0);

      await db.query(
        `UPDATE review_items SET decision = 'certify', decided_by = reviewer_id, decided_at = $2
          WHERE id = ANY($1::uuid[])`,
        [[itemIds[0], itemIds[1]], t.clock.now()],
      );
      await reminders.itemsChanged(campaignId, [decider.id]);
      await db.query(`UPDATE review_items SET reviewer_id = $2 WHERE id = $1`, [
        itemIds[2],
        successor.id,
      ]);
      await reminders.itemsChanged(campaignId, [leaver.id, successor.id]);
      await db.query(
        `UPDATE review_campaigns SET status = 'closed', closed_at = $2 WHERE id = $1`,
        [closing.campaignId, t.clock.now()],
      );
      await reminders.campaignClosed(closing.campaignId);

      const after = await queuedIds(t);
      expect(after.filter((id) => id.includes(decider.id))).toEqual([]);
      expect(after.filter((id) => id.includes(leaver.id))).toEqual([]);
      expect(after.filter((id) => id.includes(closing.campaignId))).toEqual([]);
      expect(after.filter((id) => id.includes(successor.id)).length).toBeGreaterThan(0);
      for (const itemId of [itemIds[0], itemIds[1]]) {
        expect(after.filter((id) => id.startsWith(`re-${itemId}`))).toEqual([]);
      }
      expect(after).toContain(`re-${itemIds[2]}-1`);

      // A job the campaign service forgot to withdraw still sends nothing: its processor re-reads.
      await db.query(
        `UPDATE review_items SET decision = 'revoke', decided_by = reviewer_id, decided_at = $2
          WHERE id = $1`,
        [itemIds[3], t.clock.now()],
      );
      await stepHourly(t, reminders, '2025-06-29T00:00:00Z');

      const sent = await deliveries(t, campaignId);
      const recipients = new Set(sent.map((row) => row.reviewerId));
      expect([...recipients]).toEqual([successor.id]);
      expect(await deliveries(t, closing.campaignId)).toEqual([]);
      const escalations = await db.query<{ itemId: string }[]>(
        `SELECT item_id AS "itemId" FROM review_escalations`,
      );
      expect(escalations).toEqual([{ itemId: itemIds[2] }]);
    } finally {
      await t.close();
    }
  });

  it('keeps one job per reminder across three restarts', async () => {
    const databaseUrl = await createTestDatabase();
    const prefix = `rr${randomBytes(4).toString('hex')}`;
    const clock = new ManualClock('2025-06-01T00:00:00Z');
    let snapshot: string[];
    const first = await start({ databaseUrl, prefix, clock });
    try {
      const fixture = await createReviewFixture(first.t);
      const reviewers = [
        await first.t.createUser(['manager']),
        await first.t.createUser(['manager']),
      ];
      const { campaignId } = await createCampaign(first.t, fixture, {
        dueAt: '2025-06-20T12:00:00Z',
        closesAt: '2025-06-28T12:00:00Z',
        reviewers: [reviewers[0].id, reviewers[1].id, reviewers[1].id],
      });
      await first.reminders.campaignOpened(campaignId);
      snapshot = await queuedIds(first.t);
    } finally {
      await first.t.close();
    }
    // Defaults: steps 7, 3, 1 daily at 09:00 and overdue every 2 days, so b7, b3, b1, o1, o2, o3
    // per reviewer, and escalation levels after 3 and 7 days per item.
    expect(snapshot.filter((id) => id.startsWith('rr-'))).toHaveLength(2 * 6);
    expect(snapshot.filter((id) => id.startsWith('re-'))).toHaveLength(3 * 2);

    for (let restart = 1; restart <= 3; restart++) {
      const again = await start({ databaseUrl, prefix, clock });
      try {
        const result = await again.reminders.startupReconciliation();
        expect(result).toEqual({ created: 0, removed: 0, escalated: 0 });
        expect(await queuedIds(again.t)).toEqual(snapshot);
      } finally {
        await again.t.close();
      }
    }
    const queue = queueOf(prefix);
    try {
      const schedulers = await queue.getJobSchedulers();
      expect(schedulers.map((scheduler) => scheduler.key)).toEqual(['review-reminders-reconcile']);
    } finally {
      await queue.close();
    }
  });

  it('delivers step 2 after step 1 completed and was kept', async () => {
    const { t, reminders, prefix } = await start({
      clock: new ManualClock('2025-06-01T00:00:00Z'),
    });
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const queue = queueOf(prefix);
    try {
      const fixture = await createReviewFixture(t, {
        stepsDays: [7, 3],
        overdueCadenceDays: 30,
        escalationDays: [30],
      });
      const reviewer = await t.createUser(['manager']);
      const { campaignId } = await createCampaign(t, fixture, {
        dueAt: '2025-06-20T12:00:00Z',
        closesAt: '2025-06-22T12:00:00Z',
        reviewers: [reviewer.id],
      });
      await reminders.campaignOpened(campaignId);
      const step1 = `rr-${campaignId}-${reviewer.id}-b7`;
      const step2 = `rr-${campaignId}-${reviewer.id}-b3`;

      t.clock.set('2025-06-14T09:00:00Z');
      expect(await reminders.runDue()).toEqual([step1]);
      expect(await queue.getJobState(step1)).toBe('completed');

      // Queuing step 1 again meets the kept job: it is logged, not dropped silently.
      await t.app
        .get(ReminderQueue)
        .ensure([digestJob(campaignId, reviewer.id, 'b7', new Date('2025-06-14T09:00:00Z'))]);
      expect(
        warn.mock.calls.some(
          (call) =>
            JSON.stringify(call).includes(step1) && JSON.stringify(call).includes('completed'),
        ),
      ).toBe(true);
      await eventuallyFinished(queue, step1);

      t.clock.set('2025-06-18T09:00:00Z');
      expect(await reminders.runDue()).toEqual([step2]);
      const sent = await deliveries(t, campaignId);
      expect(sent.map((row) => row.step)).toEqual(['b7', 'b3']);
    } finally {
      warn.mockRestore();
      await queue.close();
      await t.close();
    }
  });

  it('rebuilds jobs after Redis loses them and sweeps missed escalations', async () => {
    const databaseUrl = await createTestDatabase();
    const prefix = `rr${randomBytes(4).toString('hex')}`;
    const clock = new ManualClock('2025-06-01T00:00:00Z');
    const warn = jest.spyOn(Logger.prototype, 'warn');
    let snapshot: string[];
    let campaignId: string;
    let security: string;
    const first = await start({ databaseUrl, prefix, clock });
    try {
      expect(await first.reminders.maxmemoryPolicy()).toBe('allkeys-lru');
      expect(warn.mock.calls.some((call) => JSON.stringify(call).includes('allkeys-lru'))).toBe(
        true,
      );
      security = first.t.users['security-approver'].id;
      const fixture = await createReviewFixture(first.t, {
        stepsDays: [7, 3, 1],
        overdueCadenceDays: 2,
        escalationDays: [3],
      });
      const reviewers = [
        await first.t.createUser(['manager']),
        await first.t.createUser(['manager']),
      ];
      const created = await createCampaign(first.t, fixture, {
        dueAt: '2025-06-20T12:00:00Z',
        closesAt: '2025-06-30T12:00:00Z',
        reviewers: Array.from({ length: 10 }, (_, index) => reviewers[index % 2].id),
      });
      campaignId = created.campaignId;
      await first.reminders.campaignOpened(campaignId);
      snapshot = await queuedIds(first.t);
    } finally {
      await first.t.close();
    }
    expect(snapshot.filter((id) => id.startsWith('re-'))).toHaveLength(10);

    const flush = new IORedis(ownRedis.url);
    await flush.flushall();

    const second = await start({ databaseUrl, prefix, clock });
    try {
      const result = await second.reminders.startupReconciliation();
      expect(result.created).toBe(snapshot.length);
      expect(await queuedIds(second.t)).toEqual(snapshot);

      // The escalation jobs vanish again and their time passes; only the sweep can escalate.
      await flush.flushall();
      clock.set('2025-06-24T00:00:00Z');
      const swept = await second.reminders.reconcile();
      expect(swept.escalated).toBe(10);
      expect((await second.reminders.reconcile()).escalated).toBe(0);
      const db = second.t.app.get(DataSource);
      const [rows] = await db.query<{ count: number }[]>(
        `SELECT count(*)::int AS count FROM review_escalations WHERE campaign_id = $1 AND level = 1`,
        [campaignId],
      );
      expect(rows.count).toBe(10);
      const [notified] = await db.query<{ count: number }[]>(
        `SELECT count(*)::int AS count FROM notifications n JOIN notification_events e ON e.id = n.event_id
          WHERE e.type = 'review.escalation' AND n.user_id = $1`,
        [security],
      );
      expect(notified.count).toBe(10);

      const auditor = await second.t.request(
        { method: 'GET', url: `/api/review-campaigns/${campaignId}/reminders` },
        'auditor',
      );
      expect(auditor.statusCode).toBe(200);
      expect(auditor.json().escalations).toHaveLength(10);
      const requester = await second.t.request(
        { method: 'GET', url: `/api/review-campaigns/${campaignId}/reminders` },
        'requester',
      );
      expect(requester.statusCode).toBe(403);
      const otherOwner = await second.t.request(
        { method: 'GET', url: `/api/review-campaigns/${campaignId}/reminders` },
        'system-owner',
      );
      expect(otherOwner.statusCode).toBe(403);
      const unknown = await second.t.request({
        method: 'GET',
        url: `/api/review-campaigns/00000000-0000-4000-8000-000000000000/reminders`,
      });
      expect(unknown.statusCode).toBe(404);
    } finally {
      flush.disconnect();
      warn.mockRestore();
      await second.t.close();
    }
  });
});

async function eventuallyFinished(queue: Queue, id: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const state = await queue.getJobState(id);
    if (state === 'completed' || state === 'failed') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`Job ${id} did not finish within 10 s`);
}
