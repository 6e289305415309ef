import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Providers, systems and the hash-chained audit trail.
 *
 * The audit hash is computed inside PostgreSQL over `jsonb::text` of the stored values, so it covers
 * exactly what the database keeps (key order, numeric precision, microsecond timestamps), and
 * appends are ordered by a sequence number taken under a transaction-scoped advisory lock.
 */
export class CreatedCatalogAndAudit1764864000000 implements MigrationInterface {
  name = 'CreatedCatalogAndAudit1764864000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE providers (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name varchar(200) NOT NULL,
        website varchar(500),
        description text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL DEFAULT 1
      )`);
    await queryRunner.query(`CREATE UNIQUE INDEX providers_name_key ON providers (lower(name))`);

    await queryRunner.query(`
      CREATE TABLE systems (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        provider_id uuid NOT NULL REFERENCES providers (id),
        name varchar(200) NOT NULL,
        product varchar(200) NOT NULL,
        product_version varchar(100),
        category varchar(40) NOT NULL CHECK (category IN
          ('remote-management', 'software-deployment', 'remote-support', 'ci-cd', 'patch-management', 'other')),
        criticality varchar(20) NOT NULL CHECK (criticality IN ('critical', 'high', 'medium', 'low')),
        owner_email varchar(320),
        hosts jsonb NOT NULL DEFAULT '[]',
        network_zone varchar(100),
        deploys_software boolean NOT NULL DEFAULT false,
        lifecycle_status varchar(20) NOT NULL DEFAULT 'active'
          CHECK (lifecycle_status IN ('planned', 'active', 'retired')),
        retired_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL DEFAULT 1
      )`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX systems_provider_name_key ON systems (provider_id, lower(name))`,
    );
    await queryRunner.query(`CREATE INDEX systems_name_idx ON systems (name, id)`);

    await queryRunner.query(`
      CREATE TABLE audit_events (
        seq bigint PRIMARY KEY,
        occurred_at timestamptz NOT NULL,
        actor varchar(200) NOT NULL,
        channel varchar(40) NOT NULL,
        action varchar(100) NOT NULL,
        entity_type varchar(60) NOT NULL,
        entity_id varchar(200) NOT NULL,
        before jsonb,
        after jsonb,
        request_id varchar(100),
        client_address varchar(100),
        prev_hash bytea NOT NULL UNIQUE,
        hash bytea NOT NULL
      )`);
    await queryRunner.query(
      `CREATE INDEX audit_events_entity_idx ON audit_events (entity_type, entity_id, seq)`,
    );
    await queryRunner.query(`CREATE INDEX audit_events_time_idx ON audit_events (occurred_at)`);

    // The canonical pre-image: a JSON array, whose text form PostgreSQL produces deterministically.
    await queryRunner.query(`
      CREATE FUNCTION audit_canonical(e audit_events) RETURNS text
      LANGUAGE sql IMMUTABLE AS $$
        SELECT jsonb_build_array(
          e.seq::text,
          to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
          e.actor, e.channel, e.action, e.entity_type, e.entity_id,
          e.before, e.after, e.request_id, e.client_address
        )::text
      $$`);

    await queryRunner.query(`
      CREATE FUNCTION audit_seal() RETURNS trigger
      LANGUAGE plpgsql AS $$
      DECLARE
        head record;
      BEGIN
        -- One chain: appends serialise on this lock until their transaction ends, so a rolled-back
        -- append leaves no link and two events never share a predecessor.
        PERFORM pg_advisory_xact_lock(72107202);
        SELECT seq, hash INTO head FROM audit_events ORDER BY seq DESC LIMIT 1;
        NEW.seq := COALESCE(head.seq, 0) + 1;
        NEW.prev_hash := COALESCE(head.hash, '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
        NEW.hash := sha256(NEW.prev_hash || convert_to(audit_canonical(NEW), 'UTF8'));
        RETURN NEW;
      END
      $$`);
    await queryRunner.query(`
      CREATE TRIGGER audit_events_seal BEFORE INSERT ON audit_events
      FOR EACH ROW EXECUTE FUNCTION audit_seal()`);

    await queryRunner.query(`
      CREATE FUNCTION audit_reject_change() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
          USING ERRCODE = 'insufficient_privilege';
      END
      $$`);
    await queryRunner.query(`
      CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
      FOR EACH ROW EXECUTE FUNCTION audit_reject_change()`);
    await queryRunner.query(`
      CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
      FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION audit_canonical(audit_events)`);
    await queryRunner.query(`DROP TABLE audit_events`);
    await queryRunner.query(`DROP FUNCTION audit_reject_change()`);
    await queryRunner.query(`DROP FUNCTION audit_seal()`);
    await queryRunner.query(`DROP TABLE systems`);
    await queryRunner.query(`DROP TABLE providers`);
  }
}
