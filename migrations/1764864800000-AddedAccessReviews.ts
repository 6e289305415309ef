import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Access reviews: a review policy per system, campaigns opened once per system, scope and period,
 * and one item per account reviewed, with its reviewer, decision and outcome at close.
 */
export class AddedAccessReviews1764864800000 implements MigrationInterface {
  name = 'AddedAccessReviews1764864800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE review_policies (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        system_id uuid NOT NULL UNIQUE REFERENCES systems (id),
        admin_cadence_days integer NOT NULL CHECK (admin_cadence_days BETWEEN 1 AND 3650),
        standard_cadence_days integer NOT NULL CHECK (standard_cadence_days BETWEEN 1 AND 3650),
        reviewer_rule varchar(20) NOT NULL CHECK (reviewer_rule IN ('holder-manager', 'system-owner')),
        fallback_reviewer_id uuid NOT NULL REFERENCES users (id),
        duration_days integer NOT NULL CHECK (duration_days BETWEEN 1 AND 365),
        grace_days integer NOT NULL CHECK (grace_days BETWEEN 0 AND 365),
        undecided_action varchar(20) NOT NULL
          CHECK (undecided_action IN ('revoke', 'keep-and-flag', 'escalate-only')),
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL DEFAULT 1
      )`);

    await queryRunner.query(`
      CREATE TABLE review_campaigns (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        system_id uuid NOT NULL REFERENCES systems (id),
        policy_id uuid NOT NULL REFERENCES review_policies (id),
        scope varchar(20) NOT NULL CHECK (scope IN ('admin', 'standard', 'all')),
        period_start date NOT NULL,
        trigger varchar(20) NOT NULL CHECK (trigger IN ('scheduled', 'on-demand')),
        opened_at timestamptz NOT NULL,
        due_at timestamptz NOT NULL,
        closes_at timestamptz NOT NULL,
        undecided_action varchar(20) NOT NULL,
        status varchar(20) NOT NULL CHECK (status IN ('open', 'closed')),
        closed_at timestamptz,
        evidence jsonb,
        evidence_sha256 char(64),
        version integer NOT NULL DEFAULT 1,
        CHECK (closes_at >= due_at),
        CHECK ((status = 'closed') = (closed_at IS NOT NULL))
      )`);
    // The guarantee that a campaign opens once per system, scope and period, whatever the jobs do.
    await queryRunner.query(`
      CREATE UNIQUE INDEX review_campaigns_period_key
        ON review_campaigns (system_id, scope, period_start)`);
    await queryRunner.query(
      `CREATE INDEX review_campaigns_open_idx ON review_campaigns (closes_at) WHERE status = 'open'`,
    );

    await queryRunner.query(`
      CREATE TABLE review_items (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        campaign_id uuid NOT NULL REFERENCES review_campaigns (id),
        account_id uuid NOT NULL REFERENCES accounts (id),
        holder_user_id uuid REFERENCES users (id),
        reviewer_id uuid REFERENCES users (id),
        assigned_reason varchar(60),
        snapshot jsonb NOT NULL,
        decision varchar(20) CHECK (decision IN ('certify', 'revoke')),
        justification text,
        decided_by uuid REFERENCES users (id),
        decided_at timestamptz,
        outcome varchar(20) CHECK (outcome IN ('certified', 'revoked', 'kept-flagged', 'escalated')),
        updated_at timestamptz NOT NULL,
        version integer NOT NULL DEFAULT 1,
        UNIQUE (campaign_id, account_id),
        CHECK (reviewer_id IS DISTINCT FROM holder_user_id OR reviewer_id IS NULL),
        CHECK (decided_by IS DISTINCT FROM holder_user_id OR decided_by IS NULL)
      )`);
    await queryRunner.query(
      `CREATE INDEX review_items_reviewer_idx ON review_items (reviewer_id, campaign_id)`,
    );

    // A closed campaign's evidence is frozen: once written it may not change.
    await queryRunner.query(`
      CREATE FUNCTION review_evidence_frozen() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.evidence IS NOT NULL AND (NEW.evidence IS DISTINCT FROM OLD.evidence
            OR NEW.evidence_sha256 IS DISTINCT FROM OLD.evidence_sha256) THEN
          RAISE EXCEPTION 'the evidence of closed review campaign % is frozen', OLD.id
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
      END
      $$`);
    await queryRunner.query(`
      CREATE TRIGGER review_campaigns_evidence_frozen BEFORE UPDATE ON review_campaigns
      FOR EACH ROW EXECUTE FUNCTION review_evidence_frozen()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE review_items`);
    await queryRunner.query(`DROP TABLE review_campaigns`);
    await queryRunner.query(`DROP FUNCTION review_evidence_frozen()`);
    await queryRunner.query(`DROP TABLE review_policies`);
  }
}
