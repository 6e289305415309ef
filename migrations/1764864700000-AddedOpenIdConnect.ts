import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * OpenID Connect sign-in: the provider accounts linked to each user (keyed by issuer and subject,
 * never by e-mail), and the pending authorization requests with their PKCE verifier and nonce.
 */
export class AddedOpenIdConnect1764864700000 implements MigrationInterface {
  name = 'AddedOpenIdConnect1764864700000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE user_identities (
        issuer varchar(500) NOT NULL,
        subject varchar(255) NOT NULL,
        user_id uuid NOT NULL REFERENCES users (id),
        linked_at timestamptz NOT NULL,
        last_sign_in_at timestamptz NOT NULL,
        PRIMARY KEY (issuer, subject)
      )`);
    await queryRunner.query(`CREATE INDEX user_identities_user_idx ON user_identities (user_id)`);

    // One row per started sign-in, deleted when its callback arrives. The state and the browser
    // binding cookie are stored as SHA-256 hashes only.
    await queryRunner.query(`
      CREATE TABLE oidc_login_attempts (
        state_hash bytea PRIMARY KEY,
        browser_hash bytea NOT NULL,
        code_verifier varchar(128) NOT NULL,
        nonce varchar(128) NOT NULL,
        return_to varchar(2000),
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      )`);
    await queryRunner.query(
      `CREATE INDEX oidc_login_attempts_expiry_idx ON oidc_login_attempts (expires_at)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE oidc_login_attempts`);
    await queryRunner.query(`DROP TABLE user_identities`);
  }
}
