import { MigrationInterface, QueryRunner } from 'typeorm';

/** Users with roles and managers, sign-in sessions, and a user reference for system owners. */
export class AddedUsersAndSessions1764864200000 implements MigrationInterface {
  name = 'AddedUsersAndSessions1764864200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        external_id varchar(200),
        email varchar(320) NOT NULL,
        name varchar(200) NOT NULL,
        password_hash text,
        manager_id uuid REFERENCES users (id),
        active boolean NOT NULL DEFAULT true,
        time_zone varchar(64) NOT NULL DEFAULT 'UTC',
        failed_sign_ins integer NOT NULL DEFAULT 0,
        locked_until timestamptz,
        deactivated_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL DEFAULT 1,
        CHECK (manager_id IS DISTINCT FROM id)
      )`);
    await queryRunner.query(`CREATE UNIQUE INDEX users_email_key ON users (lower(email))`);
    await queryRunner.query(`CREATE UNIQUE INDEX users_external_id_key ON users (external_id)`);

    await queryRunner.query(`
      CREATE TABLE user_roles (
        user_id uuid NOT NULL REFERENCES users (id),
        role varchar(40) NOT NULL CHECK (role IN
          ('platform-admin', 'security-approver', 'system-owner', 'manager', 'requester', 'auditor')),
        PRIMARY KEY (user_id, role)
      )`);

    await queryRunner.query(`
      CREATE TABLE sessions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id),
        access_token_hash bytea NOT NULL UNIQUE,
        access_expires_at timestamptz NOT NULL,
        refresh_token_hash bytea NOT NULL UNIQUE,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        client_address varchar(100),
        created_at timestamptz NOT NULL,
        last_used_at timestamptz NOT NULL
      )`);
    await queryRunner.query(
      `CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL`,
    );

    await queryRunner.query(`ALTER TABLE systems ADD COLUMN owner_id uuid REFERENCES users (id)`);
    await queryRunner.query(`CREATE INDEX systems_owner_idx ON systems (owner_id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE systems DROP COLUMN owner_id`);
    await queryRunner.query(`DROP TABLE sessions`);
    await queryRunner.query(`DROP TABLE user_roles`);
    await queryRunner.query(`DROP TABLE users`);
  }
}
