import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { DataSource } from 'typeorm';

import { buildApp } from '../../src/app';
import { ManualClock } from '../../src/common/clock';
import { resolveKeys } from '../../src/config/keys';
import { loadSettings } from '../../src/config/settings';
import { REVIEW_REMINDERS_QUEUE } from '../../src/reviews/reminders/reminder-jobs';
import { ReminderState } from '../../src/reviews/reminders/reminder-state';
import { ReviewReminders } from '../../src/reviews/reminders/review-reminders';
import { Benchmark, BenchmarkResult, checkMaximum, TableRow } from '../benchmark';
import { createBenchDatabase, runSql } from '../support/database';
import { median, round } from '../support/stats';

const ITEMS = 100_000;
const REVIEWERS = 2_000;
const ROUNDS = 5;
/** Jobs per addBulk call in the baseline, the same chunk size the service uses. */
const CHUNK = 1000;
const MAX_RATIO = 2;
const NOW = '2026-01-05T00:00:00Z';

export const reviewReminders: Benchmark = {
  name: 'review-reminders',
  description:
    `campaignOpened() for one campaign of ${ITEMS} items over ${REVIEWERS} reviewers against a raw ` +
    'BullMQ addBulk of the same jobs, each into an empty private Redis',
  run: runReviewReminders,
};

async function runReviewReminders(): Promise<BenchmarkResult> {
  const port = await freePort();
  const redisUrl = `redis://127.0.0.1:${port}`;
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const database = await createBenchDatabase();
  const client = new IORedis(redisUrl, { maxRetriesPerRequest: 3 });
  try {
    await waitForRedis(client);
    await runSql(database.url, seedSql());
    const prefix = `bench_${randomBytes(4).toString('hex')}`;
    const settings = loadSettings({
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: prefix,
      PROCESS_ROLE: 'api',
      LOG_LEVEL: 'silent',
      SEED_DEMO: 'false',
      MFA_REQUIRED_ROLES: '',
      FINGERPRINT_KEY: randomBytes(32).toString('base64'),
      SECRETS_KEY: randomBytes(32).toString('base64'),
      EVIDENCE_SIGNING_KEY: randomBytes(32).toString('base64'),
    });
    const app = await buildApp(
      { settings, keys: resolveKeys(settings), databaseUrl: database.url },
      new ManualClock(NOW),
    );
    await app.init();
    try {
      const [{ id: campaignId }] = await app
        .get(DataSource)
        .query<{ id: string }[]>(`SELECT id FROM review_campaigns`);
      const jobs = await app.get(ReminderState).desiredJobs({ campaignId });
      const rows: TableRow[] = [];
      for (let roundNumber = 1; roundNumber <= ROUNDS; roundNumber++) {
        await client.flushall();
        let started = performance.now();
        await app.get(ReviewReminders).campaignOpened(campaignId);
        const serviceMs = performance.now() - started;
        const serviceJobs = await client.zcard(`${prefix}:${REVIEW_REMINDERS_QUEUE}:delayed`);
        rows.push({
          round: roundNumber,
          mode: 'service',
          jobs: serviceJobs,
          ms: round(serviceMs, 0),
        });

        await client.flushall();
        const rawConnection = new IORedis(redisUrl, { maxRetriesPerRequest: null });
        const queue = new Queue(REVIEW_REMINDERS_QUEUE, {
          connection: rawConnection,
          prefix: `raw_${prefix}`,
        });
        started = performance.now();
        for (let start = 0; start < jobs.length; start += CHUNK) {
          await queue.addBulk(
            jobs.slice(start, start + CHUNK).map((job) => ({
              name: job.name,
              data: job.data,
              opts: { jobId: job.id, delay: Date.parse(job.data.runAt) - Date.parse(NOW) },
            })),
          );
        }
        const rawMs = performance.now() - started;
        const rawJobs = await client.zcard(`raw_${prefix}:${REVIEW_REMINDERS_QUEUE}:delayed`);
        await queue.close();
        // A connection handed to BullMQ stays open after close(), so it is ended here.
        rawConnection.disconnect();
        rows.push({ round: roundNumber, mode: 'raw addBulk', jobs: rawJobs, ms: round(rawMs, 0) });
        console.log(
          `Round ${roundNumber}: service ${round(serviceMs, 0)} ms, raw ${round(rawMs, 0)} ms`,
        );
      }
      const serviceMedian = median(
        rows.filter((row) => row.mode === 'service').map((row) => Number(row.ms)),
      );
      const rawMedian = median(
        rows.filter((row) => row.mode === 'raw addBulk').map((row) => Number(row.ms)),
      );
      const ratio = round(serviceMedian / rawMedian, 2);
      return {
        rows,
        summary: {
          jobs: jobs.length,
          serviceMedianMs: serviceMedian,
          rawMedianMs: rawMedian,
          ratio,
        },
        targets: [checkMaximum('service wall time / raw addBulk wall time', ratio, MAX_RATIO)],
        details: { items: ITEMS, reviewers: REVIEWERS, rounds: ROUNDS, chunk: CHUNK },
      };
    } finally {
      await app.close();
    }
  } finally {
    client.disconnect();
    redis.kill('SIGTERM');
    await database.drop();
  }
}

/** Waits until the freshly spawned redis-server answers PING, for at most 10 seconds. */
async function waitForRedis(client: IORedis): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await client.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Builds SQL that inserts one system, policy and open campaign due in 30 days, ITEMS accounts and items, REVIEWERS users. */
function seedSql(): string {
  return `
    INSERT INTO providers (name, created_at, updated_at) VALUES ('Bench vendor', '${NOW}', '${NOW}');
    INSERT INTO users (email, name, time_zone, created_at, updated_at)
      SELECT 'reviewer' || n || '@bench.example', 'Reviewer ' || n,
             (ARRAY['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo'])[1 + n % 4], '${NOW}', '${NOW}'
        FROM generate_series(1, ${REVIEWERS}) AS n;
    INSERT INTO systems (provider_id, name, product, category, criticality, owner_id, created_at, updated_at)
      SELECT p.id, 'Bench system', 'RMM', 'remote-management', 'high',
             (SELECT id FROM users ORDER BY email LIMIT 1), '${NOW}', '${NOW}' FROM providers p;
    INSERT INTO review_policies (system_id, admin_cadence_days, standard_cadence_days, reviewer_rule,
        fallback_reviewer_id, duration_days, grace_days, undecided_action, created_at, updated_at)
      SELECT s.id, 90, 180, 'holder-manager', s.owner_id, 30, 7, 'keep-and-flag', '${NOW}', '${NOW}'
        FROM systems s;
    INSERT INTO review_campaigns (system_id, policy_id, scope, period_start, trigger, opened_at, due_at,
        closes_at, undecided_action, status)
      SELECT p.system_id, p.id, 'all', '2026-01-05', 'on-demand', '${NOW}',
             timestamptz '${NOW}' + interval '30 days', timestamptz '${NOW}' + interval '37 days',
             'keep-and-flag', 'open'
        FROM review_policies p;
    INSERT INTO accounts (system_id, external_id, name, privilege, purpose, mfa_state, status, origin,
        created_at, updated_at)
      SELECT s.id, 'acct-' || n, 'acct-' || n, 'standard', 'everyday', 'enabled', 'active', 'imported',
             '${NOW}', '${NOW}'
        FROM systems s, generate_series(1, ${ITEMS}) AS n;
    WITH reviewers AS (SELECT id, row_number() OVER (ORDER BY email) - 1 AS k FROM users)
    INSERT INTO review_items (campaign_id, account_id, reviewer_id, assigned_reason, snapshot, updated_at)
      SELECT c.id, a.id, r.id, 'bench', '{}', '${NOW}'
        FROM review_campaigns c
        JOIN accounts a ON true
        JOIN reviewers r ON r.k = (substring(a.external_id from 6)::int % ${REVIEWERS});
    ANALYZE;`;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
