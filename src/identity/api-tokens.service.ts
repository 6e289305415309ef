import { randomBytes } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { InvalidInputError, NotFoundError } from '../common/errors';
import { CurrentUser } from '../common/request-context';
import { returnedRows, Transactions } from '../common/transactions';
import { tokenHash } from './auth.service';
import { allows } from './permissions';
import type { Permission, Role } from './permissions';

/** Prefix that distinguishes personal API tokens from session access tokens. */
export const API_TOKEN_PREFIX = 'gvt_';

export interface ApiTokenView {
  id: string;
  name: string;
  scopes: Permission[];
  expiresAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  createdAt: Date;
}

const TOKEN_VIEW = `
  SELECT id, name, scopes, expires_at AS "expiresAt", revoked_at AS "revokedAt", last_used_at AS "lastUsedAt",
         created_at AS "createdAt" FROM api_tokens`;

/** Personal API tokens: shown once, stored as SHA-256, scoped to permissions, expiring and revocable. */
@Injectable()
export class ApiTokensService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async create(
    userId: string,
    input: { name: string; scopes: Permission[]; expiresInDays: number },
  ): Promise<ApiTokenView & { token: string }> {
    const token = `${API_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    return this.transactions.run(async (manager) => {
      const roles = await manager.query<{ role: Role }[]>(
        `SELECT role FROM user_roles WHERE user_id = $1`,
        [userId],
      );
      const beyond = input.scopes.filter(
        (scope) =>
          !allows(
            scope,
            roles.map((row) => row.role),
          ),
      );
      if (beyond.length > 0) {
        // Such a scope could never be used, so a token carrying it would only mislead its owner.
        throw new InvalidInputError('A token scope is beyond your roles', [
          {
            field: 'scopes',
            problems: [`scopes ${beyond.join(', ')} are not granted to any of your roles`],
          },
        ]);
      }
      const now = this.clock.now();
      const [view] = await manager.query<ApiTokenView[]>(
        `WITH created AS (
           INSERT INTO api_tokens (user_id, name, token_hash, scopes, expires_at, created_at)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING *)
         SELECT id, name, scopes, expires_at AS "expiresAt", revoked_at AS "revokedAt",
                last_used_at AS "lastUsedAt", created_at AS "createdAt" FROM created`,
        [
          userId,
          input.name,
          tokenHash(token),
          input.scopes,
          new Date(now.getTime() + input.expiresInDays * 86_400_000),
          now,
        ],
      );
      await this.audit.record(manager, {
        action: 'api_token.created',
        entityType: 'api_token',
        entityId: view.id,
        before: null,
        after: view,
      });
      return { ...view, token };
    });
  }

  list(userId: string): Promise<ApiTokenView[]> {
    return this.dataSource.query<ApiTokenView[]>(
      `${TOKEN_VIEW} WHERE user_id = $1 ORDER BY created_at DESC, id`,
      [userId],
    );
  }

  async revoke(userId: string, id: string): Promise<void> {
    await this.transactions.run(async (manager) => {
      const [, affected] = await manager.query<[unknown, number]>(
        `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND user_id = $2`,
        [id, userId, this.clock.now()],
      );
      if (affected !== 1) throw new NotFoundError('API token', id);
      await this.audit.record(manager, {
        action: 'api_token.revoked',
        entityType: 'api_token',
        entityId: id,
        before: null,
        after: { revoked: true },
      });
    });
  }

  /** Resolves a token to its owner and scopes, or undefined when unknown, expired, revoked or the owner is inactive. */
  async authenticate(
    token: string,
  ): Promise<{ user: CurrentUser; tokenId: string; scopes: Permission[] } | undefined> {
    const now = this.clock.now();
    type TokenRow = {
      id: string;
      scopes: Permission[];
      user_id: string;
      email: string;
      roles: string[];
    };
    const [row] = returnedRows<TokenRow>(
      await this.dataSource.query(
        `UPDATE api_tokens t SET last_used_at = $2
           FROM users u
          WHERE t.token_hash = $1 AND u.id = t.user_id AND u.active AND t.revoked_at IS NULL AND t.expires_at > $2
          RETURNING t.id, t.scopes, u.id AS user_id, u.email,
                    COALESCE((SELECT array_agg(r.role ORDER BY r.role) FROM user_roles r WHERE r.user_id = u.id), '{}') AS roles`,
        [tokenHash(token), now],
      ),
    );
    if (!row) return undefined;
    return {
      user: { id: row.user_id, email: row.email, roles: row.roles },
      tokenId: row.id,
      scopes: row.scopes,
    };
  }
}
