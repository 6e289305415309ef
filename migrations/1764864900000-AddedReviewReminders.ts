import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Review reminders and escalation: an optional reminder plan per review policy, an optional digest
 * schedule per user, and one row per digest sent and per escalation. The unique keys on the last
 * two tables make a repeated or late job a no-op.
 */
export class AddedReviewReminders1764864900000 implements MigrationInterface {
  name = 'AddedReviewReminders1764864900000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // A policy without a row here uses the REVIEW_* settings.
    await queryRunner.query(`
      CREATE TABLE review_reminder_plans (
        policy_id uuid PRIMARY KEY REFERENCES review_policies (id),
        steps_days integer[] NOT NULL
          CHECK (cardinality(steps_days) <= 20 AND 0 < ALL (steps_days) AND 365 >= ALL (steps_days)),
        overdue_cadence_days integer NOT NULL CHECK (overdue_cadence_days BETWEEN 1 AND 365),
        escalation_days integer[] NOT NULL
          CHECK (cardinality(escalation_days) <= 10 AND 0 <= ALL (escalation_days)
                 AND 365 >= ALL (escalation_days)),
        updated_at timestamptz NOT NULL
      )`);

    // A user without a row here gets the digest on REVIEW_DIGEST_WEEKDAYS at REVIEW_DIGEST_TIME.
    await queryRunner.query(`
      CREATE TABLE review_digest_schedules (
        user_id uuid PRIMARY KEY REFERENCES users (id),
        weekdays smallint[] NOT NULL
          CHECK (cardinality(weekdays) BETWEEN 1 AND 7 AND 1 <= ALL (weekdays) AND 7 >= ALL (weekdays)),
        local_time time NOT NULL,
        updated_at timestamptz NOT NULL
      )`);

    await queryRunner.query(`
      CREATE TABLE review_reminder_deliveries (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        campaign_id uuid NOT NULL REFERENCES review_campaigns (id),
        reviewer_id uuid NOT NULL REFERENCES users (id),
        step varchar(10) NOT NULL,
        scheduled_for timestamptz NOT NULL,
        sent_at timestamptz NOT NULL,
        item_ids uuid[] NOT NULL,
        notification_event_id uuid REFERENCES notification_events (id),
        UNIQUE (reviewer_id, campaign_id, step)
      )`);
    await queryRunner.query(
      `CREATE INDEX review_reminder_deliveries_campaign_idx ON review_reminder_deliveries (campaign_id)`,
    );

    await queryRunner.query(`
      CREATE TABLE review_escalations (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        item_id uuid NOT NULL REFERENCES review_items (id),
        campaign_id uuid NOT NULL REFERENCES review_campaigns (id),
        level integer NOT NULL CHECK (level BETWEEN 1 AND 10),
        reviewer_id uuid NOT NULL REFERENCES users (id),
        recipients uuid[] NOT NULL,
        escalated_at timestamptz NOT NULL,
        notification_event_id uuid REFERENCES notification_events (id),
        UNIQUE (item_id, level)
      )`);
    await queryRunner.query(
      `CREATE INDEX review_escalations_campaign_idx ON review_escalations (campaign_id)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE review_escalations`);
    await queryRunner.query(`DROP TABLE review_reminder_deliveries`);
    await queryRunner.query(`DROP TABLE review_digest_schedules`);
    await queryRunner.query(`DROP TABLE review_reminder_plans`);
  }
}
