import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Accounts on third-party systems, the grants that give them access, account imports, access
 * findings and de-provisioning tasks.
 *
 * Credential fingerprints are HMAC-SHA256 values under a server-side key; the secret itself has
 * no column. A provider account's identity (its external id) is unique across all systems, so it
 * can move only through the transfer route.
 */
export class AddedAccountsAndGrants1764864600000 implements MigrationInterface {
  name = 'AddedAccountsAndGrants1764864600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE accounts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        system_id uuid NOT NULL REFERENCES systems (id),
        external_id varchar(300) NOT NULL,
        name varchar(300) NOT NULL,
        holder_type varchar(20) CHECK (holder_type IN ('user', 'provider')),
        holder_user_id uuid REFERENCES users (id),
        provider_id uuid REFERENCES providers (id),
        sponsor_user_id uuid REFERENCES users (id),
        privilege varchar(20) NOT NULL
          CHECK (privilege IN ('admin', 'privileged', 'standard', 'read-only', 'unknown')),
        purpose varchar(20) NOT NULL CHECK (purpose IN ('admin', 'everyday')),
        mfa_state varchar(20) NOT NULL CHECK (mfa_state IN ('enabled', 'disabled', 'unknown')),
        status varchar(20) NOT NULL CHECK (status IN ('active', 'disabled', 'removed')),
        origin varchar(20) NOT NULL CHECK (origin IN ('granted', 'imported')),
        last_used_at timestamptz,
        credential_state varchar(30) NOT NULL DEFAULT 'none'
          CHECK (credential_state IN ('fingerprinted', 'cannot-be-checked', 'none')),
        credential_fingerprint bytea,
        credential_recorded_at timestamptz,
        attributes jsonb NOT NULL DEFAULT '{}',
        last_import_id uuid,
        removed_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL DEFAULT 1,
        CHECK (holder_type IS DISTINCT FROM 'user' OR holder_user_id IS NOT NULL),
        CHECK (holder_type IS DISTINCT FROM 'provider'
               OR (provider_id IS NOT NULL AND sponsor_user_id IS NOT NULL)),
        CHECK ((credential_state = 'fingerprinted') = (credential_fingerprint IS NOT NULL))
      )`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX accounts_system_external_id_key ON accounts (system_id, lower(external_id))`,
    );
    await queryRunner.query(`
      CREATE UNIQUE INDEX accounts_provider_identity_key ON accounts (lower(external_id))
        WHERE holder_type = 'provider'`);
    await queryRunner.query(`CREATE INDEX accounts_holder_idx ON accounts (holder_user_id)`);
    await queryRunner.query(
      `CREATE INDEX accounts_fingerprint_idx ON accounts (credential_fingerprint)
         WHERE credential_fingerprint IS NOT NULL`,
    );

    await queryRunner.query(`
      CREATE TABLE access_grants (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        system_id uuid NOT NULL REFERENCES systems (id),
        account_id uuid REFERENCES accounts (id),
        account_external_id varchar(300) NOT NULL,
        account_name varchar(300) NOT NULL,
        holder_type varchar(20) NOT NULL CHECK (holder_type IN ('user', 'provider')),
        holder_user_id uuid REFERENCES users (id),
        provider_id uuid REFERENCES providers (id),
        sponsor_user_id uuid REFERENCES users (id),
        privilege varchar(20) NOT NULL
          CHECK (privilege IN ('admin', 'privileged', 'standard', 'read-only')),
        purpose varchar(20) NOT NULL CHECK (purpose IN ('admin', 'everyday')),
        declared_mfa_state varchar(20) NOT NULL
          CHECK (declared_mfa_state IN ('enabled', 'disabled', 'unknown')),
        justification text NOT NULL,
        ends_at timestamptz,
        status varchar(20) NOT NULL CHECK (status IN
          ('pending', 'approved', 'active', 'rejected', 'revoked', 'expired')),
        requester_id uuid NOT NULL REFERENCES users (id),
        needs_security_approval boolean NOT NULL,
        owner_approved_by uuid REFERENCES users (id),
        owner_approved_at timestamptz,
        security_approved_by uuid REFERENCES users (id),
        security_approved_at timestamptz,
        approved_at timestamptz,
        decided_by uuid REFERENCES users (id),
        decided_at timestamptz,
        decision_reason text,
        provisioned_by uuid REFERENCES users (id),
        provisioned_at timestamptz,
        provisioning_evidence text,
        ended_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL DEFAULT 1,
        CHECK (owner_approved_by IS DISTINCT FROM requester_id),
        CHECK (security_approved_by IS DISTINCT FROM requester_id),
        CHECK (security_approved_by IS NULL OR security_approved_by <> owner_approved_by),
        CHECK (holder_type <> 'user' OR holder_user_id IS NOT NULL),
        CHECK (holder_type <> 'provider' OR (provider_id IS NOT NULL AND sponsor_user_id IS NOT NULL))
      )`);
    await queryRunner.query(
      `CREATE INDEX access_grants_system_idx ON access_grants (system_id, status)`,
    );
    await queryRunner.query(`CREATE INDEX access_grants_account_idx ON access_grants (account_id)`);

    await queryRunner.query(`
      CREATE TABLE account_imports (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        system_id uuid NOT NULL REFERENCES systems (id),
        preset varchar(40) NOT NULL,
        mode varchar(10) NOT NULL CHECK (mode IN ('full', 'partial')),
        source varchar(300) NOT NULL,
        rows_read integer NOT NULL,
        created integer NOT NULL,
        updated integer NOT NULL,
        unchanged integer NOT NULL,
        rejected integer NOT NULL,
        removed integer NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz NOT NULL
      )`);
    await queryRunner.query(
      `CREATE INDEX account_imports_system_idx ON account_imports (system_id, started_at)`,
    );

    await queryRunner.query(`
      CREATE TABLE access_findings (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        type varchar(40) NOT NULL,
        system_id uuid NOT NULL REFERENCES systems (id),
        account_id uuid REFERENCES accounts (id),
        details jsonb NOT NULL DEFAULT '{}',
        first_seen_at timestamptz NOT NULL,
        last_seen_at timestamptz NOT NULL,
        status varchar(20) NOT NULL CHECK (status IN ('open', 'risk-accepted', 'resolved')),
        risk_accepted_by uuid REFERENCES users (id),
        risk_reason text,
        risk_expires_at timestamptz,
        resolved_at timestamptz,
        version integer NOT NULL DEFAULT 1,
        CHECK (status <> 'risk-accepted'
               OR (risk_accepted_by IS NOT NULL AND risk_reason IS NOT NULL AND risk_expires_at IS NOT NULL))
      )`);
    await queryRunner.query(`
      CREATE UNIQUE INDEX access_findings_subject_key
        ON access_findings (type, system_id, account_id) NULLS NOT DISTINCT`);
    await queryRunner.query(
      `CREATE INDEX access_findings_account_idx ON access_findings (account_id)`,
    );

    await queryRunner.query(`
      CREATE TABLE deprovisioning_tasks (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id uuid NOT NULL REFERENCES accounts (id),
        system_id uuid NOT NULL REFERENCES systems (id),
        -- Open-ended on purpose: grant-expired, grant-revoked, review-revoke, offboarding, import-…
        trigger varchar(40) NOT NULL CHECK (trigger ~ '^[a-z][a-z0-9-]*$'),
        trigger_ref_id uuid,
        opened_at timestamptz NOT NULL,
        assignee_id uuid REFERENCES users (id),
        status varchar(20) NOT NULL CHECK (status IN ('open', 'executed', 'verified', 'not-effective')),
        due_at timestamptz NOT NULL,
        executed_at timestamptz,
        executed_by uuid REFERENCES users (id),
        evidence text,
        verified_at timestamptz,
        verified_by uuid REFERENCES users (id),
        updated_at timestamptz NOT NULL,
        version integer NOT NULL DEFAULT 1
      )`);
    // One open task per account and trigger: a repeated expiry or revoke opens nothing new.
    await queryRunner.query(`
      CREATE UNIQUE INDEX deprovisioning_tasks_open_key ON deprovisioning_tasks (account_id, trigger)
        WHERE status = 'open'`);
    await queryRunner.query(
      `CREATE INDEX deprovisioning_tasks_system_idx ON deprovisioning_tasks (system_id, status)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE deprovisioning_tasks`);
    await queryRunner.query(`DROP TABLE access_findings`);
    await queryRunner.query(`DROP TABLE account_imports`);
    await queryRunner.query(`DROP TABLE access_grants`);
    await queryRunner.query(`DROP TABLE accounts`);
  }
}
