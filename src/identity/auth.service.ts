import { createHash, randomBytes } from 'node:crypto';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { DomainError } from '../common/errors';
import { currentContext, CurrentUser } from '../common/request-context';
import { Transactions } from '../common/transactions';
import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import { MfaService } from './mfa.service';
import { verifyPassword } from './passwords';

export interface TokenPair {
  accessToken: string;
  accessExpiresAt: Date;
  refreshToken: string;
  sessionExpiresAt: Date;
  user: CurrentUser;
}

/** Failed sign-ins allowed before the account is locked for a while. */
const FREE_ATTEMPTS = 5;
/** Lock length doubles per further failure: 1, 2, 4 … minutes, at most this many. */
const MAX_LOCK_MINUTES = 60;

const invalidCredentials = (): DomainError =>
  new DomainError(401, 'AUTH.INVALID_CREDENTIALS', 'E-mail or password is wrong');

/**
 * Local password sign-in with short-lived opaque access tokens. Tokens are random and stored only
 * as SHA-256 hashes; each request looks its session up, so revocation and deactivation take
 * effect on the next request.
 */
@Injectable()
export class AuthService {
  private readonly logger = new Logger('Auth');

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly mfa: MfaService,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  async signIn(email: string, password: string, code?: string): Promise<TokenPair> {
    const [user] = await this.dataSource.query<
      {
        id: string;
        email: string;
        password_hash: string | null;
        active: boolean;
        locked_until: Date | null;
        failed_sign_ins: number;
        mfa_enrolled: boolean;
      }[]
    >(
      `SELECT id, email, password_hash, active, locked_until, failed_sign_ins,
              totp_enabled_at IS NOT NULL AS mfa_enrolled
         FROM users WHERE lower(email) = lower($1)`,
      [email],
    );
    const now = this.clock.now();

    if (user?.locked_until && user.locked_until > now) {
      const seconds = Math.ceil((user.locked_until.getTime() - now.getTime()) / 1000);
      throw new DomainError(
        429,
        'AUTH.TOO_MANY_ATTEMPTS',
        `Too many failed sign-ins; try again in ${seconds} s`,
        {
          retryAfterSeconds: seconds,
        },
      );
    }

    const valid = await verifyPassword(password, user?.password_hash ?? null);
    if (!user || !valid) {
      if (user) await this.recordFailure(user.id, user.failed_sign_ins + 1);
      throw invalidCredentials();
    }
    if (!user.active) {
      throw new DomainError(403, 'AUTH.USER_INACTIVE', 'This account is deactivated');
    }

    if (user.mfa_enrolled && !code) {
      throw new DomainError(
        401,
        'AUTH.MFA_CODE_REQUIRED',
        'Send the code from your authenticator app in "code"',
      );
    }
    if (user.mfa_enrolled) {
      const accepted = await this.transactions.run((manager) =>
        this.mfa.verify(manager, user.id, code!),
      );
      if (!accepted) {
        await this.recordFailure(user.id, user.failed_sign_ins + 1);
        throw new DomainError(
          401,
          'AUTH.MFA_CODE_INVALID',
          'The code is wrong, expired or already used',
        );
      }
    }

    return this.transactions.run(async (manager) => {
      await manager.query(
        `UPDATE users SET failed_sign_ins = 0, locked_until = NULL WHERE id = $1`,
        [user.id],
      );
      return this.openSession(manager, user.id, {
        method: 'password',
        mfaVerified: user.mfa_enrolled,
      });
    });
  }

  /**
   * Creates a session for a user who has just proven who they are, inside the caller's transaction,
   * and audits it there. Password and OpenID Connect sign-in both end here.
   */
  async openSession(
    manager: EntityManager,
    userId: string,
    options: { method: 'password' | 'oidc'; mfaVerified: boolean },
  ): Promise<TokenPair> {
    const pair = await this.issue(userId);
    await manager.query(
      `INSERT INTO sessions (id, user_id, access_token_hash, access_expires_at, refresh_token_hash, expires_at,
                             client_address, created_at, last_used_at, mfa_verified)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)`,
      [
        pair.sessionId,
        userId,
        tokenHash(pair.accessToken),
        pair.accessExpiresAt,
        tokenHash(pair.refreshToken),
        pair.sessionExpiresAt,
        currentContext()?.clientAddress ?? null,
        this.clock.now(),
        options.mfaVerified,
      ],
    );
    await this.audit.record(manager, {
      action: 'auth.signed_in',
      entityType: 'session',
      entityId: pair.sessionId,
      before: null,
      after: {
        userId,
        method: options.method,
        mfaVerified: options.mfaVerified,
        accessExpiresAt: pair.accessExpiresAt,
        sessionExpiresAt: pair.sessionExpiresAt,
      },
    });
    return { ...pair.tokens, user: await this.loadUser(userId, manager) };
  }

  /**
   * Marks the current session as having passed the second factor after a TOTP or recovery code.
   * Sessions from OpenID Connect sign-in need it when the provider reported no second factor.
   */
  async verifySecondFactor(userId: string, sessionId: string, code: string): Promise<void> {
    if (!(await this.mfa.isEnrolled(userId))) {
      throw new DomainError(
        409,
        'MFA.NOT_ENROLLED',
        'No authenticator is enrolled; enrol one at POST /api/auth/mfa/totp',
      );
    }
    const accepted = await this.transactions.run(async (manager) => {
      if (!(await this.mfa.verify(manager, userId, code))) return false;
      await manager.query(`UPDATE sessions SET mfa_verified = true WHERE id = $1`, [sessionId]);
      await this.audit.record(manager, {
        action: 'auth.mfa_verified',
        entityType: 'session',
        entityId: sessionId,
        before: { mfaVerified: false },
        after: { mfaVerified: true },
      });
      return true;
    });
    if (!accepted) {
      throw new DomainError(
        401,
        'AUTH.MFA_CODE_INVALID',
        'The code is wrong, expired or already used',
      );
    }
  }

  /** Swaps a refresh token for a new pair; the old refresh token stops working (rotation). */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const now = this.clock.now();
    return this.transactions.run(async (manager) => {
      const [session] = await manager.query<
        { id: string; user_id: string; expires_at: Date; active: boolean }[]
      >(
        `SELECT s.id, s.user_id, s.expires_at, u.active FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.refresh_token_hash = $1 AND s.revoked_at IS NULL FOR UPDATE OF s`,
        [tokenHash(refreshToken)],
      );
      if (!session || session.expires_at <= now || !session.active) {
        throw new DomainError(401, 'AUTH.SESSION_ENDED', 'The session has ended; sign in again');
      }
      const pair = await this.issue(session.user_id);
      await manager.query(
        `UPDATE sessions SET access_token_hash = $2, access_expires_at = $3, refresh_token_hash = $4, last_used_at = $5
          WHERE id = $1`,
        [
          session.id,
          tokenHash(pair.accessToken),
          pair.accessExpiresAt,
          tokenHash(pair.refreshToken),
          now,
        ],
      );
      return {
        ...pair.tokens,
        sessionExpiresAt: session.expires_at,
        user: await this.loadUser(session.user_id),
      };
    });
  }

  async signOut(): Promise<void> {
    const context = currentContext();
    const sessionId = context?.sessionId;
    if (!sessionId) return;
    await this.transactions.run(async (manager) => {
      await manager.query(
        `UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`,
        [sessionId, this.clock.now()],
      );
      await this.audit.record(manager, {
        action: 'auth.signed_out',
        entityType: 'session',
        entityId: sessionId,
        before: null,
        after: { revoked: true },
      });
    });
  }

  /** Resolves a bearer token to its user, or undefined when it is unknown, expired, revoked or inactive. */
  async authenticate(
    accessToken: string,
  ): Promise<{ user: CurrentUser; sessionId: string; mfaVerified: boolean } | undefined> {
    const [row] = await this.dataSource.query<
      { session_id: string; user_id: string; mfa_verified: boolean }[]
    >(
      `SELECT s.id AS session_id, s.user_id, s.mfa_verified FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.access_token_hash = $1 AND s.revoked_at IS NULL AND s.access_expires_at > $2
          AND s.expires_at > $2 AND u.active`,
      [tokenHash(accessToken), this.clock.now()],
    );
    if (!row) return undefined;
    return {
      user: await this.loadUser(row.user_id),
      sessionId: row.session_id,
      mfaVerified: row.mfa_verified,
    };
  }

  private async loadUser(
    id: string,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<CurrentUser> {
    const [user] = await manager.query<CurrentUser[]>(
      `SELECT u.id, u.email,
              COALESCE((SELECT array_agg(r.role ORDER BY r.role) FROM user_roles r WHERE r.user_id = u.id), '{}') AS roles
         FROM users u WHERE u.id = $1`,
      [id],
    );
    return user;
  }

  private async issue(userId: string): Promise<{
    sessionId: string;
    accessToken: string;
    accessExpiresAt: Date;
    refreshToken: string;
    sessionExpiresAt: Date;
    tokens: Omit<TokenPair, 'user'>;
  }> {
    const now = this.clock.now().getTime();
    const accessToken = randomBytes(32).toString('base64url');
    const refreshToken = randomBytes(32).toString('base64url');
    const accessExpiresAt = new Date(now + this.settings.accessTokenTtlMinutes * 60_000);
    const sessionExpiresAt = new Date(now + this.settings.sessionTtlHours * 3_600_000);
    this.logger.debug({ userId }, 'Issued tokens');
    return {
      sessionId: (
        await this.dataSource.query<{ id: string }[]>('SELECT gen_random_uuid() AS id')
      )[0].id,
      accessToken,
      accessExpiresAt,
      refreshToken,
      sessionExpiresAt,
      tokens: { accessToken, accessExpiresAt, refreshToken, sessionExpiresAt },
    };
  }

  /** Counts a failed sign-in and locks the account after FREE_ATTEMPTS, doubling the lock each time. */
  private async recordFailure(userId: string, failures: number): Promise<void> {
    const over = failures - FREE_ATTEMPTS;
    const lockedUntil =
      over >= 0
        ? new Date(this.clock.now().getTime() + Math.min(2 ** over, MAX_LOCK_MINUTES) * 60_000)
        : null;
    await this.transactions.run(async (manager) => {
      await manager.query(
        `UPDATE users SET failed_sign_ins = failed_sign_ins + 1, locked_until = $2 WHERE id = $1`,
        [userId, lockedUntil],
      );
      await this.audit.record(manager, {
        action: 'auth.sign_in_failed',
        entityType: 'user',
        entityId: userId,
        before: null,
        after: { failures, lockedUntil },
      });
    });
  }
}

export function tokenHash(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
