import { Inject, Injectable, Logger } from '@nestjs/common';
import { EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { ConflictError, DomainError } from '../common/errors';
import { Transactions } from '../common/transactions';
import { SETTINGS } from '../config/runtime';
import type { OidcSettings, Settings } from '../config/settings';
import { AuthService, TokenPair } from './auth.service';
import type { Role } from './permissions';
import { UsersService } from './users.service';

/** The claims of a validated ID token (merged with userinfo) that sign-in uses. */
export interface ProviderIdentity {
  issuer: string;
  subject: string;
  email: string | undefined;
  emailVerified: boolean;
  name: string | undefined;
  groups: string[];
  /** Authentication methods references (RFC 8176) reported by the provider. */
  amr: string[];
}

/**
 * `amr` values that count as a passed second factor: RFC 8176 `mfa` (several factors) and `otp`
 * (a one-time password). Without them, a user whose role requires MFA passes the local TOTP at
 * POST /api/auth/mfa/verify before reaching more than the self.mfa routes.
 */
export const MFA_AMR_VALUES = ['mfa', 'otp'];

/**
 * Turns a provider identity into a local user and a session: links by issuer and subject, creates
 * the user on first sign-in, and replaces the user's roles with those mapped from the groups claim.
 */
@Injectable()
export class OidcAccountsService {
  private readonly logger = new Logger('Oidc');

  constructor(
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly users: UsersService,
    private readonly auth: AuthService,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  /** Returns the roles the groups map to, the default role when none maps, or none. */
  mapRoles(settings: OidcSettings, groups: string[]): Role[] {
    const roles = new Set<Role>();
    for (const group of groups) {
      for (const role of settings.roleMap[group] ?? []) roles.add(role);
    }
    if (roles.size === 0 && settings.defaultRole) roles.add(settings.defaultRole);
    return [...roles].sort();
  }

  async signIn(identity: ProviderIdentity): Promise<TokenPair> {
    const settings = this.settings.oidc!;
    const roles = this.mapRoles(settings, identity.groups);
    if (roles.length === 0) {
      this.logger.warn(
        { issuer: identity.issuer, subject: identity.subject, groups: identity.groups },
        'Rejected OpenID Connect sign-in: no group maps to a role',
      );
      throw new DomainError(
        403,
        'AUTH.OIDC_NO_ROLE',
        `None of your groups in claim "${settings.groupsClaim}" maps to a role here; ask an administrator to add your group to OIDC_ROLE_MAP`,
        { groups: identity.groups },
      );
    }

    return this.transactions.run(async (manager) => {
      // Two first sign-ins of one identity at the same moment would otherwise both create the user.
      await manager.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [
        `oidc ${identity.issuer} ${identity.subject}`,
      ]);
      const userId =
        (await this.linkedUser(manager, identity)) ?? (await this.linkOrCreate(manager, identity));

      const user = await this.users.get(userId, manager);
      if (!user.active) {
        throw new DomainError(403, 'AUTH.USER_INACTIVE', 'This account is deactivated');
      }
      await this.users.syncRoles(manager, userId, roles, `oidc ${identity.issuer}`);
      await manager.query(
        `UPDATE user_identities SET last_sign_in_at = $3 WHERE issuer = $1 AND subject = $2`,
        [identity.issuer, identity.subject, this.clock.now()],
      );

      const mfaVerified = identity.amr.some((method) => MFA_AMR_VALUES.includes(method));
      return this.auth.openSession(manager, userId, { method: 'oidc', mfaVerified });
    });
  }

  private async linkedUser(
    manager: EntityManager,
    identity: ProviderIdentity,
  ): Promise<string | undefined> {
    const [row] = await manager.query<{ user_id: string }[]>(
      `SELECT user_id FROM user_identities WHERE issuer = $1 AND subject = $2`,
      [identity.issuer, identity.subject],
    );
    return row?.user_id;
  }

  /**
   * Links the identity to the local user with the same e-mail when the provider verified that
   * address, or creates a new user. An unverified address never links, so a provider account
   * cannot take over a local account just by claiming its e-mail.
   */
  private async linkOrCreate(manager: EntityManager, identity: ProviderIdentity): Promise<string> {
    if (!identity.email) {
      throw new DomainError(
        403,
        'AUTH.OIDC_EMAIL_MISSING',
        'The provider sent no email claim; request the "email" scope in OIDC_SCOPES',
      );
    }
    if (identity.email.length > 320 || !/^[^@\s]+@[^@\s]+$/.test(identity.email)) {
      throw new DomainError(
        403,
        'AUTH.OIDC_EMAIL_INVALID',
        'The email claim from the provider is not a valid e-mail address of at most 320 characters',
      );
    }
    const [existing] = await manager.query<{ id: string; other_subject: string | null }[]>(
      `SELECT u.id,
              (SELECT i.subject FROM user_identities i WHERE i.user_id = u.id AND i.issuer = $2 LIMIT 1)
                AS other_subject
         FROM users u WHERE lower(u.email) = lower($1) FOR UPDATE OF u`,
      [identity.email, identity.issuer],
    );

    let userId: string;
    if (existing) {
      if (!identity.emailVerified) {
        throw new ConflictError(
          'AUTH.OIDC_EMAIL_UNVERIFIED',
          `A local user with e-mail ${identity.email} exists, and the provider has not verified that address, so the accounts are not linked; verify the address at the provider or ask an administrator`,
        );
      }
      if (existing.other_subject !== null) {
        throw new ConflictError(
          'AUTH.OIDC_ALREADY_LINKED',
          `The user with e-mail ${identity.email} is already linked to another account of this provider; ask an administrator`,
        );
      }
      userId = existing.id;
    } else {
      const created = await this.users.create(
        {
          email: identity.email,
          name: (identity.name?.trim() || identity.email).slice(0, 200),
          roles: [],
        },
        null,
        manager,
      );
      userId = created.id;
    }

    const now = this.clock.now();
    await manager.query(
      `INSERT INTO user_identities (issuer, subject, user_id, linked_at, last_sign_in_at)
       VALUES ($1, $2, $3, $4, $4)`,
      [identity.issuer, identity.subject, userId, now],
    );
    await this.audit.record(manager, {
      action: 'user.identity_linked',
      entityType: 'user',
      entityId: userId,
      before: null,
      after: {
        issuer: identity.issuer,
        subject: identity.subject,
        email: identity.email,
        createdUser: !existing,
      },
    });
    this.logger.log(
      { userId, issuer: identity.issuer, subject: identity.subject, createdUser: !existing },
      'Linked an OpenID Connect identity',
    );
    return userId;
  }
}
