import { DataSource } from 'typeorm';

import { AuditService } from '../../src/audit/audit.service';
import { ManualClock } from '../../src/common/clock';
import { Transactions } from '../../src/common/transactions';
import { loadSettings } from '../../src/config/settings';
import { dataSourceOptions } from '../../src/database/data-source';
import type { NotificationsService } from '../../src/notifications/notifications.service';
import { CampaignsService } from '../../src/reviews/campaigns.service';
import { ReviewEvents } from '../../src/reviews/review-events';
import { ACCOUNT_SNAPSHOT } from '../../src/reviews/review-sql';
import { Benchmark, BenchmarkResult, checkMaximum, TableRow } from '../benchmark';
import { createBenchDatabase, runSql } from '../support/database';
import { median, round } from '../support/stats';

/** Accounts on the benchmark system, one review item each. */
const ACCOUNTS = 100_000;
/** Holders of the accounts, spread over MANAGERS managers who review them. */
const HOLDERS = 20_000;
const MANAGERS = 2_000;
const ROUNDS = 3;
/** Maximum ratio of the opening's median wall time to the raw INSERT … SELECT's. */
const MAX_RATIO = 2;

export const reviewCampaign: Benchmark = {
  name: 'review-campaign',
  description:
    `CampaignsService.open() of a campaign of ${ACCOUNTS} items, against a raw INSERT … SELECT ` +
    'of the same items with the same snapshot and no reviewer routing',
  run: runReviewCampaign,
};

async function runReviewCampaign(): Promise<BenchmarkResult> {
  const database = await createBenchDatabase();
  const dataSource = new DataSource(dataSourceOptions(database.url));
  await dataSource.initialize();
  try {
    const systemId = await seed(database.url, dataSource);
    const clock = new ManualClock(new Date('2026-01-05T00:00:00Z'));
    const settings = loadSettings({ DATABASE_URL: database.url, LOG_LEVEL: 'silent' });
    const campaigns = new CampaignsService(
      dataSource,
      new Transactions(dataSource),
      new AuditService(dataSource, clock),
      clock,
      new ReviewEvents(),
      // Opening publishes nothing; only closing notifies.
      undefined as unknown as NotificationsService,
      settings,
    );

    const rows: TableRow[] = [];
    for (let roundNumber = 1; roundNumber <= ROUNDS; roundNumber++) {
      const period = `2026-0${roundNumber}-01`;
      const rssBefore = process.memoryUsage().rss;
      let started = performance.now();
      const opened = await campaigns.open(systemId, 'all', 'on-demand', period);
      const openMs = performance.now() - started;
      const openItems = opened?.campaign.progress.total ?? 0;

      started = performance.now();
      const rawItems = await rawInsert(dataSource, systemId, `2027-0${roundNumber}-01`);
      const rawMs = performance.now() - started;
      rows.push({
        round: roundNumber,
        openMs: round(openMs, 0),
        rawInsertMs: round(rawMs, 0),
        ratio: round(openMs / rawMs, 2),
        openItems,
        rawItems,
        nodeRssGrowthMiB: round((process.memoryUsage().rss - rssBefore) / 1_048_576, 1),
      });
      console.log(`Round ${roundNumber}: open ${round(openMs, 0)} ms, raw ${round(rawMs, 0)} ms`);
      if (openItems !== ACCOUNTS || rawItems !== ACCOUNTS) {
        throw new Error(
          `expected ${ACCOUNTS} items on both sides, got ${openItems} and ${rawItems}`,
        );
      }
    }

    const openMedian = median(rows.map((row) => Number(row.openMs)));
    const rawMedian = median(rows.map((row) => Number(row.rawInsertMs)));
    const ratio = round(openMedian / rawMedian, 2);
    const peakRssMiB = round(process.resourceUsage().maxRSS / 1024, 1);
    return {
      rows,
      summary: { openMedianMs: openMedian, rawInsertMedianMs: rawMedian, ratio, peakRssMiB },
      targets: [checkMaximum('opening / raw INSERT … SELECT (median wall time)', ratio, MAX_RATIO)],
      details: { accounts: ACCOUNTS, holders: HOLDERS, managers: MANAGERS, rounds: ROUNDS },
    };
  } finally {
    await dataSource.destroy();
    await database.drop();
  }
}

/** Users with managers, one system with a review policy, and its accounts. */
async function seed(url: string, dataSource: DataSource): Promise<string> {
  await runSql(
    url,
    `INSERT INTO users (email, name, created_at, updated_at)
       SELECT 'manager' || g || '@bench.example', 'Manager ' || g, now(), now()
         FROM generate_series(1, ${MANAGERS}) g;
     INSERT INTO users (email, name, manager_id, created_at, updated_at)
       SELECT 'holder' || g || '@bench.example', 'Holder ' || g,
              (SELECT id FROM users WHERE email = 'manager' || (1 + g % ${MANAGERS}) || '@bench.example'),
              now(), now()
         FROM generate_series(1, ${HOLDERS}) g;
     INSERT INTO providers (name, created_at, updated_at) VALUES ('Bench provider', now(), now());
     INSERT INTO systems (provider_id, name, product, category, criticality, owner_id, created_at, updated_at)
       SELECT p.id, 'Bench RMM', 'RMM', 'remote-management', 'high',
              (SELECT id FROM users WHERE email = 'manager1@bench.example'), now(), now()
         FROM providers p;
     INSERT INTO review_policies (system_id, admin_cadence_days, standard_cadence_days, reviewer_rule,
         fallback_reviewer_id, duration_days, grace_days, undecided_action, created_at, updated_at)
       SELECT s.id, 90, 180, 'holder-manager', s.owner_id, 14, 3, 'revoke', now(), now() FROM systems s;
     CREATE TEMP TABLE holder_list AS
       SELECT id, row_number() OVER (ORDER BY id) AS n FROM users WHERE email LIKE 'holder%';
     INSERT INTO accounts (system_id, external_id, name, holder_type, holder_user_id, privilege,
         purpose, mfa_state, status, origin, created_at, updated_at)
       SELECT s.id, 'acct-' || g, 'Account ' || g, 'user', h.id,
              CASE WHEN g % 10 = 0 THEN 'admin' ELSE 'standard' END,
              CASE WHEN g % 10 = 0 THEN 'admin' ELSE 'everyday' END,
              'enabled', 'active', 'imported', now(), now()
         FROM generate_series(1, ${ACCOUNTS}) g
         CROSS JOIN systems s
         JOIN holder_list h ON h.n = 1 + g % ${HOLDERS};
     ANALYZE;`,
  );
  const [system] = await dataSource.query<{ id: string }[]>(`SELECT id FROM systems`);
  return system.id;
}

/** Runs the baseline: a campaign row and one INSERT … SELECT of its items, reviewer = holder's manager. */
async function rawInsert(
  dataSource: DataSource,
  systemId: string,
  period: string,
): Promise<number> {
  return dataSource.transaction(async (manager) => {
    const [campaign] = await manager.query<{ id: string }[]>(
      `INSERT INTO review_campaigns (system_id, policy_id, scope, period_start, trigger, opened_at,
          due_at, closes_at, undecided_action, status)
       SELECT $1, p.id, 'all', $2, 'on-demand', now(), now(), now(), 'revoke', 'open'
         FROM review_policies p WHERE p.system_id = $1 RETURNING id`,
      [systemId, period],
    );
    const [{ n }] = await manager.query<{ n: number }[]>(
      `WITH inserted AS (
         INSERT INTO review_items (campaign_id, account_id, holder_user_id, reviewer_id, snapshot, updated_at)
         SELECT $1, a.id, a.holder_user_id, h.manager_id, ${ACCOUNT_SNAPSHOT}, now()
           FROM accounts a LEFT JOIN users h ON h.id = a.holder_user_id
          WHERE a.system_id = $2
         RETURNING 1)
       SELECT count(*)::int AS n FROM inserted`,
      [campaign.id, systemId],
    );
    return n;
  });
}
