import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Notification events, in-app notifications, per-attempt e-mail and webhook deliveries,
 * preferences, organisation routes and webhook endpoints (secrets stored encrypted).
 */
export class AddedNotifications1764864300000 implements MigrationInterface {
  name = 'AddedNotifications1764864300000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE notification_events (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        type varchar(60) NOT NULL,
        dedupe_key varchar(300) NOT NULL UNIQUE,
        title text NOT NULL,
        body text NOT NULL,
        payload jsonb NOT NULL,
        created_at timestamptz NOT NULL
      )`);

    await queryRunner.query(`
      CREATE TABLE notifications (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id),
        event_id uuid NOT NULL REFERENCES notification_events (id),
        title text NOT NULL,
        body text NOT NULL,
        created_at timestamptz NOT NULL,
        read_at timestamptz,
        UNIQUE (event_id, user_id)
      )`);
    await queryRunner.query(
      `CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC)`,
    );

    await queryRunner.query(`
      CREATE TABLE webhooks (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name varchar(200) NOT NULL,
        url varchar(2000) NOT NULL,
        secret_ciphertext bytea NOT NULL,
        event_types text[] NOT NULL,
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL DEFAULT 1
      )`);

    await queryRunner.query(`
      CREATE TABLE deliveries (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        event_id uuid NOT NULL REFERENCES notification_events (id),
        channel varchar(20) NOT NULL CHECK (channel IN ('email', 'webhook')),
        recipient varchar(200) NOT NULL,
        status varchar(20) NOT NULL
          CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'dead', 'cancelled')),
        attempts integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL,
        next_attempt_at timestamptz NOT NULL,
        lease_until timestamptz,
        last_error text,
        delivered_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        UNIQUE (event_id, recipient, channel)
      )`);
    await queryRunner.query(
      `CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status IN ('pending', 'failed', 'sending')`,
    );

    await queryRunner.query(`
      CREATE TABLE notification_preferences (
        user_id uuid PRIMARY KEY REFERENCES users (id),
        channels text[] NOT NULL,
        quiet_start time,
        quiet_end time,
        updated_at timestamptz NOT NULL,
        CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
      )`);

    await queryRunner.query(`
      CREATE TABLE notification_routes (
        event_type varchar(60) PRIMARY KEY,
        channels text[] NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE notification_routes`);
    await queryRunner.query(`DROP TABLE notification_preferences`);
    await queryRunner.query(`DROP TABLE deliveries`);
    await queryRunner.query(`DROP TABLE webhooks`);
    await queryRunner.query(`DROP TABLE notifications`);
    await queryRunner.query(`DROP TABLE notification_events`);
  }
}
