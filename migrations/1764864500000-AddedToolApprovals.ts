import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tool approval: versioned policies per criticality (and optionally category), requests with their
 * security evaluation, approval decisions per review round, and evidence files kept by SHA-256.
 * A system's admin cap lives on the system, with a default taken from the policy in force.
 */
export class AddedToolApprovals1764864500000 implements MigrationInterface {
  name = 'AddedToolApprovals1764864500000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE approval_policies (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        criticality varchar(20) NOT NULL CHECK (criticality IN ('critical', 'high', 'medium', 'low')),
        category varchar(40),
        version integer NOT NULL CHECK (version >= 1),
        required_approvals integer NOT NULL CHECK (required_approvals BETWEEN 1 AND 10),
        required_roles text[] NOT NULL DEFAULT '{}',
        validity_days integer NOT NULL CHECK (validity_days BETWEEN 1 AND 3650),
        reapproval_notice_days integer NOT NULL CHECK (reapproval_notice_days >= 0),
        mandatory_items text[] NOT NULL DEFAULT '{}',
        default_max_admins integer NOT NULL CHECK (default_max_admins >= 1),
        created_at timestamptz NOT NULL,
        created_by uuid REFERENCES users (id),
        superseded_at timestamptz
      )`);
    await queryRunner.query(`
      CREATE UNIQUE INDEX approval_policies_version_key
        ON approval_policies (criticality, coalesce(category, ''), version)`);
    await queryRunner.query(`
      CREATE UNIQUE INDEX approval_policies_in_force_key
        ON approval_policies (criticality, coalesce(category, '')) WHERE superseded_at IS NULL`);

    // Version 1 of the policy for each criticality; platform admins publish later versions.
    await queryRunner.query(
      `
      INSERT INTO approval_policies (criticality, version, required_approvals, required_roles,
          validity_days, reapproval_notice_days, mandatory_items, default_max_admins, created_at)
      VALUES
        ('critical', 1, 2, '{security-approver,system-owner}', 365, 30, $1, 2, now()),
        ('high', 1, 2, '{security-approver}', 365, 30, $1, 3, now()),
        ('medium', 1, 1, '{security-approver}', 365, 30, $2, 5, now()),
        ('low', 1, 1, '{}', 730, 30, $3, 5, now())`,
      [
        [
          'provider-assessment',
          'admin-mfa',
          'admin-sso',
          'role-separation',
          'management-access-monitored',
          'network-isolation',
          'supported-version',
          'signed-deployment',
          'signing-certificates-isolated',
        ],
        [
          'provider-assessment',
          'admin-mfa',
          'supported-version',
          'signed-deployment',
          'signing-certificates-isolated',
        ],
        ['provider-assessment', 'supported-version'],
      ],
    );

    await queryRunner.query(`
      CREATE TABLE evidence_files (
        sha256 char(64) PRIMARY KEY,
        content bytea NOT NULL,
        size_bytes integer NOT NULL,
        media_type varchar(200) NOT NULL,
        file_name varchar(300),
        uploaded_at timestamptz NOT NULL,
        uploaded_by uuid REFERENCES users (id)
      )`);

    await queryRunner.query(`
      CREATE TABLE tool_requests (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        system_id uuid NOT NULL REFERENCES systems (id),
        requester_id uuid NOT NULL REFERENCES users (id),
        status varchar(30) NOT NULL CHECK (status IN ('draft', 'submitted', 'in_review',
          'changes_requested', 'approved', 'reapproval_due', 'rejected', 'withdrawn')),
        justification text NOT NULL,
        signing_host varchar(300),
        signing_host_remote_access text,
        policy_id uuid REFERENCES approval_policies (id),
        round integer NOT NULL DEFAULT 1,
        submitted_at timestamptz,
        decided_at timestamptz,
        approved_until timestamptz,
        reapproval_due_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL DEFAULT 1,
        CHECK (status NOT IN ('approved', 'reapproval_due') OR approved_until IS NOT NULL)
      )`);
    await queryRunner.query(`CREATE INDEX tool_requests_system_idx ON tool_requests (system_id)`);
    // At most one request per system moves through review at a time.
    await queryRunner.query(`
      CREATE UNIQUE INDEX tool_requests_open_key ON tool_requests (system_id)
        WHERE status IN ('draft', 'submitted', 'in_review', 'changes_requested')`);

    await queryRunner.query(`
      CREATE TABLE evaluation_answers (
        request_id uuid NOT NULL REFERENCES tool_requests (id),
        item varchar(60) NOT NULL,
        answer varchar(20) NOT NULL CHECK (answer IN ('yes', 'no', 'not-applicable')),
        evidence_text text,
        evidence_url varchar(2000),
        evidence_sha256 char(64) REFERENCES evidence_files (sha256),
        details jsonb NOT NULL DEFAULT '{}',
        answered_by uuid REFERENCES users (id),
        answered_at timestamptz NOT NULL,
        PRIMARY KEY (request_id, item)
      )`);

    await queryRunner.query(`
      CREATE TABLE approval_decisions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        request_id uuid NOT NULL REFERENCES tool_requests (id),
        round integer NOT NULL,
        approver_id uuid NOT NULL REFERENCES users (id),
        decision varchar(20) NOT NULL CHECK (decision IN ('approve', 'reject', 'request-changes')),
        slot varchar(40),
        on_behalf_of_owner boolean NOT NULL DEFAULT false,
        override_reason text,
        comment text,
        decided_at timestamptz NOT NULL,
        UNIQUE (request_id, round, approver_id)
      )`);

    await queryRunner.query(
      `ALTER TABLE systems ADD COLUMN max_admins integer CHECK (max_admins >= 1)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE systems DROP COLUMN max_admins`);
    await queryRunner.query(`DROP TABLE approval_decisions`);
    await queryRunner.query(`DROP TABLE evaluation_answers`);
    await queryRunner.query(`DROP TABLE tool_requests`);
    await queryRunner.query(`DROP TABLE evidence_files`);
    await queryRunner.query(`DROP TABLE approval_policies`);
  }
}
