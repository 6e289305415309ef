import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import {
  ConflictError,
  DomainError,
  InvalidInputError,
  NotFoundError,
  RuleViolationError,
  StaleVersionError,
} from '../common/errors';
import { assertMayActOnSystem } from '../common/ownership';
import { Page, toPage } from '../common/pagination';
import { Transactions } from '../common/transactions';
import { isUniqueViolation } from '../common/unique-violation';
import { KEYS } from '../config/runtime';
import type { Keys } from '../config/keys';
import { requireUser } from '../identity/users.service';
import { AccountListQuery, RecordCredentialDto, TransferAccountDto } from './access.dto';
import { raiseFinding, resolveFinding } from './access-findings.service';
import { credentialFingerprint } from './credential';

/**
 * An account as the API shows it. The credential fingerprint is never part of it: only whether a
 * credential was checked and whether another account shares it.
 */
export interface AccountView {
  id: string;
  systemId: string;
  externalId: string;
  name: string;
  holderType: 'user' | 'provider' | null;
  holderUserId: string | null;
  providerId: string | null;
  sponsorUserId: string | null;
  privilege: string;
  purpose: string;
  mfaState: string;
  status: string;
  origin: string;
  lastUsedAt: Date | null;
  /** fingerprinted, cannot-be-checked or none. */
  credentialState: string;
  /** reuse-found, no-reuse, cannot-be-checked or not-provided. */
  credentialCheck: string;
  /** Latest grant on the account and its status as of now (expired once past its end date). */
  grantId: string | null;
  grantStatus: string | null;
  grantEndsAt: Date | null;
  removedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

/** SQL for a grant's status as of `now`: an approved or active grant past its end is expired. */
export function effectiveGrantStatus(alias: string, now: string): string {
  return `CASE WHEN ${alias}.status IN ('approved', 'active') AND ${alias}.ends_at <= ${now}
               THEN 'expired' ELSE ${alias}.status END`;
}

/** Columns of AccountView, selected from `accounts a` with `$1` as now; no fingerprint. */
export const ACCOUNT_COLUMNS = `
  a.id, a.system_id, a.external_id, a.name, a.holder_type, a.holder_user_id, a.provider_id,
  a.sponsor_user_id, a.privilege, a.purpose, a.mfa_state, a.status, a.origin, a.last_used_at,
  a.credential_state,
  CASE a.credential_state
    WHEN 'none' THEN 'not-provided'
    WHEN 'cannot-be-checked' THEN 'cannot-be-checked'
    ELSE CASE WHEN EXISTS (SELECT 1 FROM accounts o
                            WHERE o.credential_fingerprint = a.credential_fingerprint AND o.id <> a.id)
              THEN 'reuse-found' ELSE 'no-reuse' END
  END AS credential_check,
  g.id AS grant_id, ${effectiveGrantStatus('g', '$1')} AS grant_status, g.ends_at AS grant_ends_at,
  a.removed_at, a.created_at, a.updated_at, a.version`;

/** Joins the latest grant of each account as `g`. */
export const LATEST_GRANT_JOIN = `
  LEFT JOIN LATERAL (SELECT * FROM access_grants lg WHERE lg.account_id = a.id
                      ORDER BY lg.created_at DESC, lg.id DESC LIMIT 1) g ON true`;

export function toAccountView(row: Record<string, unknown>): AccountView {
  return {
    id: row.id as string,
    systemId: row.system_id as string,
    externalId: row.external_id as string,
    name: row.name as string,
    holderType: row.holder_type as AccountView['holderType'],
    holderUserId: row.holder_user_id as string | null,
    providerId: row.provider_id as string | null,
    sponsorUserId: row.sponsor_user_id as string | null,
    privilege: row.privilege as string,
    purpose: row.purpose as string,
    mfaState: row.mfa_state as string,
    status: row.status as string,
    origin: row.origin as string,
    lastUsedAt: row.last_used_at as Date | null,
    credentialState: row.credential_state as string,
    credentialCheck: row.credential_check as string,
    grantId: row.grant_id as string | null,
    grantStatus: row.grant_status as string | null,
    grantEndsAt: row.grant_ends_at as Date | null,
    removedAt: row.removed_at as Date | null,
    createdAt: row.created_at as Date,
    updatedAt: row.updated_at as Date,
    version: row.version as number,
  };
}

/** Reads one account as its API view inside `manager`, or throws 404. */
export async function readAccount(
  manager: EntityManager,
  id: string,
  now: Date,
): Promise<AccountView> {
  const [row] = await manager.query<Record<string, unknown>[]>(
    `SELECT ${ACCOUNT_COLUMNS} FROM accounts a ${LATEST_GRANT_JOIN} WHERE a.id = $2`,
    [now, id],
  );
  if (!row) throw new NotFoundError('Account', id);
  return toAccountView(row);
}

/**
 * Stores a credential's fingerprint (or that it cannot be checked) on an account and re-derives
 * the credential-reuse findings of every account that shares the new or the old fingerprint.
 * The secret is used only to compute the HMAC and is not stored, logged or returned.
 */
export async function recordCredential(
  manager: EntityManager,
  fingerprintKey: Buffer,
  accountId: string,
  credential: { secret?: string; cannotBeChecked?: boolean },
  now: Date,
): Promise<void> {
  const fingerprint =
    credential.secret !== undefined
      ? credentialFingerprint(fingerprintKey, credential.secret)
      : null;
  const [previous] = await manager.query<{ credential_fingerprint: Buffer | null }[]>(
    `SELECT credential_fingerprint FROM accounts WHERE id = $1`,
    [accountId],
  );
  await manager.query(
    `UPDATE accounts SET credential_state = $2, credential_fingerprint = $3,
            credential_recorded_at = $4, updated_at = $4, version = version + 1
      WHERE id = $1`,
    [accountId, fingerprint ? 'fingerprinted' : 'cannot-be-checked', fingerprint, now],
  );
  const groups = [fingerprint, previous?.credential_fingerprint ?? null].filter(
    (value): value is Buffer => value !== null,
  );
  for (const group of groups) await refreshCredentialReuse(manager, group, now);
  if (fingerprint === null) await resolveFinding(manager, 'credential-reuse', accountId, now);
}

/** Raises credential-reuse on every account sharing `fingerprint`, or resolves a lone one's. */
async function refreshCredentialReuse(
  manager: EntityManager,
  fingerprint: Buffer,
  now: Date,
): Promise<void> {
  const sharing = await manager.query<{ id: string; system_id: string }[]>(
    `SELECT id, system_id FROM accounts WHERE credential_fingerprint = $1 ORDER BY id`,
    [fingerprint],
  );
  if (sharing.length < 2) {
    for (const account of sharing) {
      await resolveFinding(manager, 'credential-reuse', account.id, now);
    }
    return;
  }
  for (const account of sharing) {
    await raiseFinding(
      manager,
      {
        type: 'credential-reuse',
        systemId: account.system_id,
        accountId: account.id,
        details: {
          sharedWithAccountIds: sharing.filter((other) => other.id !== account.id).map((o) => o.id),
        },
      },
      now,
    );
  }
}

/** Maps the provider identity index to the governance rule it enforces. */
export function providerConflictFrom(error: unknown, externalId: string): unknown {
  if (isUniqueViolation(error, 'accounts_provider_identity_key')) {
    return new RuleViolationError(
      'ACCESS.PROVIDER_ACCOUNT_CONFLICT',
      `Provider account "${externalId}" already exists on another system or under another provider; ` +
        'move it with POST /api/accounts/{id}/transfer instead',
      { field: 'accountExternalId' },
    );
  }
  return error;
}

/** Reads the account inventory, records credentials and transfers provider accounts. */
@Injectable()
export class AccountsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(KEYS) private readonly keys: Keys,
  ) {}

  async list(query: AccountListQuery): Promise<Page<AccountView>> {
    const conditions: string[] = [];
    const parameters: unknown[] = [this.clock.now()];
    const add = (column: string, value: unknown): void => {
      parameters.push(value);
      conditions.push(`a.${column} = $${parameters.length}`);
    };
    if (query.systemId) add('system_id', query.systemId);
    if (query.holderUserId) add('holder_user_id', query.holderUserId);
    if (query.providerId) add('provider_id', query.providerId);
    if (query.privilege) add('privilege', query.privilege);
    if (query.status) add('status', query.status);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const direction = query.order === 'desc' ? 'DESC' : 'ASC';
    const rows = await this.dataSource.query<Record<string, unknown>[]>(
      `SELECT ${ACCOUNT_COLUMNS} FROM accounts a ${LATEST_GRANT_JOIN} ${where}
        ORDER BY a.system_id, lower(a.external_id) ${direction}, a.id
        OFFSET ${query.offset} LIMIT ${query.limit + 1}`,
      parameters,
    );
    return toPage(rows.map(toAccountView), query);
  }

  get(id: string): Promise<AccountView> {
    return readAccount(this.dataSource.manager, id, this.clock.now());
  }

  /** Yields the accounts of one system as CSV lines (header first); fingerprints are not a column. */
  async *exportCsv(systemId: string): AsyncGenerator<string> {
    const [system] = await this.dataSource.query<{ id: string }[]>(
      `SELECT id FROM systems WHERE id = $1`,
      [systemId],
    );
    if (!system) throw new NotFoundError('System', systemId);
    const columns: (keyof AccountView)[] = [
      'id',
      'externalId',
      'name',
      'holderType',
      'holderUserId',
      'providerId',
      'sponsorUserId',
      'privilege',
      'purpose',
      'mfaState',
      'status',
      'origin',
      'lastUsedAt',
      'credentialCheck',
      'grantStatus',
      'grantEndsAt',
    ];
    yield `${columns.join(',')}\n`;
    const pageSize = 1000;
    for (let offset = 0; ; offset += pageSize) {
      const rows = await this.dataSource.query<Record<string, unknown>[]>(
        `SELECT ${ACCOUNT_COLUMNS} FROM accounts a ${LATEST_GRANT_JOIN}
          WHERE a.system_id = $2 ORDER BY lower(a.external_id), a.id OFFSET $3 LIMIT $4`,
        [this.clock.now(), systemId, offset, pageSize],
      );
      for (const row of rows) {
        const view = toAccountView(row);
        yield `${columns.map((column) => csvCell(view[column] as string | Date | null)).join(',')}\n`;
      }
      if (rows.length < pageSize) return;
    }
  }

  async recordCredential(id: string, input: RecordCredentialDto): Promise<AccountView> {
    assertOneCredentialForm(input.credentialSecret, input.credentialCannotBeChecked);
    if (input.credentialSecret === undefined && input.credentialCannotBeChecked !== true) {
      throw new InvalidInputError('Invalid request: check credentialSecret', [
        {
          field: 'credentialSecret',
          problems: ['credentialSecret is required unless credentialCannotBeChecked is true'],
        },
      ]);
    }
    return this.transactions.run(async (manager) => {
      const now = this.clock.now();
      const [row] = await manager.query<{ system_id: string; owner_id: string | null }[]>(
        `SELECT a.system_id, s.owner_id FROM accounts a JOIN systems s ON s.id = a.system_id
          WHERE a.id = $1 FOR UPDATE OF a`,
        [id],
      );
      if (!row) throw new NotFoundError('Account', id);
      assertMayActOnSystem(row.system_id, row.owner_id, ['platform-admin']);
      const before = await readAccount(manager, id, now);
      await recordCredential(
        manager,
        this.keys.fingerprintKey,
        id,
        { secret: input.credentialSecret, cannotBeChecked: input.credentialCannotBeChecked },
        now,
      );
      const after = await readAccount(manager, id, now);
      await this.audit.record(manager, {
        action: 'account.credential_recorded',
        entityType: 'account',
        entityId: id,
        before,
        after,
      });
      return after;
    });
  }

  /**
   * Moves a provider account to another provider (and optionally another system). This is the
   * only way a provider account's identity changes hands, and the audit event keeps the reason.
   */
  async transfer(id: string, input: TransferAccountDto): Promise<AccountView> {
    return this.transactions.run(async (manager) => {
      const now = this.clock.now();
      const [row] = await manager.query<
        { system_id: string; holder_type: string | null; version: number; external_id: string }[]
      >(
        `SELECT system_id, holder_type, version, external_id FROM accounts WHERE id = $1 FOR UPDATE`,
        [id],
      );
      if (!row) throw new NotFoundError('Account', id);
      if (row.version !== input.version) {
        throw new StaleVersionError('Account', id, input.version, row.version);
      }
      if (row.holder_type !== 'provider') {
        throw new RuleViolationError(
          'ACCESS.NOT_A_PROVIDER_ACCOUNT',
          `Account ${id} is not held by a provider; only provider accounts are transferred`,
          { id },
        );
      }
      const [provider] = await manager.query<{ id: string }[]>(
        `SELECT id FROM providers WHERE id = $1`,
        [input.providerId],
      );
      if (!provider) {
        throw new DomainError(
          404,
          'PROVIDER.NOT_FOUND',
          `Provider ${input.providerId} was not found`,
          {
            field: 'providerId',
          },
        );
      }
      await requireUser(manager, input.sponsorUserId, 'sponsorUserId');
      const systemId = input.systemId ?? row.system_id;
      if (input.systemId) {
        const [system] = await manager.query<{ id: string }[]>(
          `SELECT id FROM systems WHERE id = $1`,
          [input.systemId],
        );
        if (!system) throw new NotFoundError('System', input.systemId);
      }

      const before = await readAccount(manager, id, now);
      try {
        await manager.query(
          `UPDATE accounts SET provider_id = $2, sponsor_user_id = $3, system_id = $4,
                  updated_at = $5, version = version + 1
            WHERE id = $1`,
          [id, input.providerId, input.sponsorUserId, systemId, now],
        );
      } catch (error) {
        if (isUniqueViolation(error, 'accounts_system_external_id_key')) {
          throw new ConflictError(
            'ACCESS.DUPLICATE_ACCOUNT',
            `System ${systemId} already has an account "${row.external_id}"`,
            { field: 'systemId' },
          );
        }
        throw error;
      }
      await resolveFinding(manager, 'provider-account-conflict', id, now);
      const after = await readAccount(manager, id, now);
      await this.audit.record(manager, {
        action: 'account.transferred',
        entityType: 'account',
        entityId: id,
        before,
        after: { ...after, transferReason: input.reason },
      });
      return after;
    });
  }
}

/** Rejects a secret given together with the cannot-be-checked flag, with a 400 naming both fields. */
export function assertOneCredentialForm(
  secret: string | undefined,
  cannotBeChecked: boolean | undefined,
): void {
  const flagged = cannotBeChecked === true;
  if (secret !== undefined && flagged) {
    throw new InvalidInputError(
      'Invalid request: check credentialSecret, credentialCannotBeChecked',
      [
        {
          field: 'credentialSecret',
          problems: ['give either credentialSecret or credentialCannotBeChecked, not both'],
        },
        {
          field: 'credentialCannotBeChecked',
          problems: ['give either credentialSecret or credentialCannotBeChecked, not both'],
        },
      ],
    );
  }
}

/** Formats one CSV cell per RFC 4180, and defuses cells a spreadsheet would run as formulas. */
export function csvCell(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined) return '';
  let text = value instanceof Date ? value.toISOString() : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
