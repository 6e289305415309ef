import { createHash, randomBytes } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import { Secret, TOTP } from 'otpauth';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { ConflictError, DomainError } from '../common/errors';
import { currentContext } from '../common/request-context';
import { openSecret, sealSecret } from '../common/secret-box';
import { Transactions } from '../common/transactions';
import type { Keys } from '../config/keys';
import { KEYS } from '../config/runtime';

const PERIOD_SECONDS = 30;
const RECOVERY_CODES = 10;
/** Accepted clock drift: the codes of one step before and after the current one. */
const WINDOW = 1;

function totpFor(seed: string, email: string): TOTP {
  return new TOTP({
    issuer: 'Governance tracker',
    label: email,
    algorithm: 'SHA1',
    digits: 6,
    period: PERIOD_SECONDS,
    secret: Secret.fromBase32(seed),
  });
}

function recoveryHash(code: string): Buffer {
  return createHash('sha256').update(code.replace(/[\s-]/g, '').toLowerCase()).digest();
}

/**
 * TOTP enrolment and verification. Seeds are stored encrypted with SECRETS_KEY. The last accepted
 * time step is stored per user and advanced by a conditional update. So a code works once, an older
 * code never works after a newer one, and the enrolment code cannot sign in.
 */
@Injectable()
export class MfaService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(KEYS) private readonly keys: Keys,
  ) {}

  async isEnrolled(userId: string): Promise<boolean> {
    const [row] = await this.dataSource.query<{ enrolled: boolean }[]>(
      `SELECT totp_enabled_at IS NOT NULL AS enrolled FROM users WHERE id = $1`,
      [userId],
    );
    return row?.enrolled ?? false;
  }

  /** Starts enrolment: a new seed, kept pending until a code from it is confirmed. */
  async startEnrolment(
    userId: string,
    email: string,
  ): Promise<{ otpauthUri: string; secret: string }> {
    if (await this.isEnrolled(userId)) {
      throw new ConflictError(
        'MFA.ALREADY_ENROLLED',
        'A second factor is already enrolled for this account',
      );
    }
    const seed = new Secret({ size: 20 }).base32;
    await this.transactions.run(async (manager) => {
      await manager.query(`UPDATE users SET totp_pending_ciphertext = $2 WHERE id = $1`, [
        userId,
        sealSecret(this.keys.secretsKey, seed),
      ]);
      await this.audit.record(manager, {
        action: 'mfa.enrolment_started',
        entityType: 'user',
        entityId: userId,
        before: null,
        after: { method: 'totp' },
      });
    });
    return { otpauthUri: totpFor(seed, email).toString(), secret: seed };
  }

  /** Confirms enrolment with a code from the pending seed; returns recovery codes, shown once. */
  async confirmEnrolment(userId: string, code: string): Promise<{ recoveryCodes: string[] }> {
    return this.transactions.run(async (manager) => {
      const [row] = await manager.query<{ email: string; pending: Buffer | null }[]>(
        `SELECT email, totp_pending_ciphertext AS pending FROM users WHERE id = $1 FOR UPDATE`,
        [userId],
      );
      if (!row?.pending) throw new ConflictError('MFA.NOT_STARTED', 'Start enrolment first');
      const seed = openSecret(this.keys.secretsKey, row.pending);
      const step = this.matchingStep(seed, row.email, code);
      if (step === null)
        throw new DomainError(
          400,
          'MFA.CODE_INVALID',
          'The code does not match; check the device clock',
        );

      await manager.query(
        `UPDATE users SET totp_seed_ciphertext = totp_pending_ciphertext, totp_pending_ciphertext = NULL,
                totp_enabled_at = $2, totp_last_step = $3 WHERE id = $1`,
        [userId, this.clock.now(), step],
      );
      const codes = Array.from({ length: RECOVERY_CODES }, () => randomBytes(5).toString('hex'));
      await manager.query(`DELETE FROM recovery_codes WHERE user_id = $1`, [userId]);
      for (const recovery of codes) {
        await manager.query(
          `INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)`,
          [userId, recoveryHash(recovery), this.clock.now()],
        );
      }
      const sessionId = currentContext()?.sessionId;
      if (sessionId)
        await manager.query(`UPDATE sessions SET mfa_verified = true WHERE id = $1`, [sessionId]);
      await this.audit.record(manager, {
        action: 'mfa.enrolled',
        entityType: 'user',
        entityId: userId,
        before: null,
        after: { method: 'totp', recoveryCodes: RECOVERY_CODES },
      });
      return { recoveryCodes: codes };
    });
  }

  /**
   * Accepts a TOTP code or a recovery code once. A TOTP code counts only when its step is later than
   * the last accepted one, checked and stored in a single conditional update. A recovery code is
   * spent the same way.
   */
  async verify(manager: EntityManager, userId: string, code: string): Promise<boolean> {
    const trimmed = code.replace(/\s/g, '');
    if (/^\d{6}$/.test(trimmed)) {
      const [row] = await manager.query<{ email: string; seed: Buffer | null }[]>(
        `SELECT email, totp_seed_ciphertext AS seed FROM users WHERE id = $1`,
        [userId],
      );
      if (!row?.seed) return false;
      const step = this.matchingStep(
        openSecret(this.keys.secretsKey, row.seed),
        row.email,
        trimmed,
      );
      if (step === null) return false;
      const [, advanced] = await manager.query<[unknown, number]>(
        `UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)`,
        [userId, step],
      );
      return advanced === 1;
    }
    const [, spent] = await manager.query<[unknown, number]>(
      `UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`,
      [userId, recoveryHash(trimmed), this.clock.now()],
    );
    return spent === 1;
  }

  /** Returns the absolute time step whose code equals `code`, within the drift window, or null. */
  private matchingStep(seed: string, email: string, code: string): number | null {
    const now = this.clock.now().getTime();
    const delta = totpFor(seed, email).validate({ token: code, timestamp: now, window: WINDOW });
    if (delta === null) return null;
    return Math.floor(now / 1000 / PERIOD_SECONDS) + delta;
  }
}
