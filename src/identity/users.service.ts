import { Injectable } from '@nestjs/common';
import { parse as parseCsv } from 'csv-parse/sync';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { escapeLike } from '../catalog/providers.service';
import { Clock } from '../common/clock';
import {
  ConflictError,
  DomainError,
  InvalidInputError,
  NotFoundError,
  StaleVersionError,
} from '../common/errors';
import { Page, toPage } from '../common/pagination';
import { Transactions } from '../common/transactions';
import { isUniqueViolation } from '../common/unique-violation';
import { hashPassword } from './passwords';
import { UserHooks } from './user-hooks';
import type { Role } from './permissions';
import { CreateUserDto, DeactivateUserDto, UpdateUserDto, UserListQuery } from './users.dto';

/** A user as returned by the API and recorded in audit events; never carries the password hash. */
export interface UserView {
  id: string;
  externalId: string | null;
  email: string;
  name: string;
  managerId: string | null;
  active: boolean;
  timeZone: string;
  roles: Role[];
  deactivatedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

const USER_VIEW = `
  SELECT u.id, u.external_id AS "externalId", u.email, u.name, u.manager_id AS "managerId", u.active,
         u.time_zone AS "timeZone",
         COALESCE((SELECT array_agg(r.role ORDER BY r.role) FROM user_roles r WHERE r.user_id = u.id), '{}') AS roles,
         u.deactivated_at AS "deactivatedAt", u.created_at AS "createdAt", u.updated_at AS "updatedAt", u.version
    FROM users u`;

export interface DirectoryImportReport {
  rows: number;
  created: number;
  updated: number;
  deactivated: number;
}

@Injectable()
export class UsersService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly hooks: UserHooks,
  ) {}

  async list(query: UserListQuery): Promise<Page<UserView>> {
    const conditions: string[] = [];
    const parameters: unknown[] = [];
    if (query.active !== undefined) {
      parameters.push(query.active);
      conditions.push(`u.active = $${parameters.length}`);
    }
    if (query.role) {
      parameters.push(query.role);
      conditions.push(
        `EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = $${parameters.length})`,
      );
    }
    if (query.q) {
      parameters.push(`%${escapeLike(query.q)}%`);
      conditions.push(
        `(u.name ILIKE $${parameters.length} OR u.email ILIKE $${parameters.length})`,
      );
    }
    parameters.push(query.limit + 1, query.offset);
    const rows = await this.dataSource.query<UserView[]>(
      `${USER_VIEW} ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
        ORDER BY lower(u.email) ${query.order === 'asc' ? 'ASC' : 'DESC'}
        LIMIT $${parameters.length - 1} OFFSET $${parameters.length}`,
      parameters,
    );
    return toPage(rows, query);
  }

  async get(id: string, manager: EntityManager = this.dataSource.manager): Promise<UserView> {
    const [user] = await manager.query<UserView[]>(`${USER_VIEW} WHERE u.id = $1`, [id]);
    if (!user) throw new NotFoundError('User', id);
    return user;
  }

  async create(
    input: CreateUserDto,
    externalId: string | null = null,
    manager?: EntityManager,
  ): Promise<UserView> {
    const work = async (tx: EntityManager): Promise<UserView> => {
      if (input.managerId) await requireUser(tx, input.managerId, 'managerId');
      const now = this.clock.now();
      const passwordHash = input.password ? await hashPassword(input.password) : null;
      let id: string;
      try {
        [{ id }] = await tx.query<{ id: string }[]>(
          `INSERT INTO users (external_id, email, name, password_hash, manager_id, time_zone, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`,
          [
            externalId,
            input.email.toLowerCase(),
            input.name,
            passwordHash,
            input.managerId ?? null,
            input.timeZone ?? 'UTC',
            now,
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error, 'users_email_key')) {
          throw new ConflictError(
            'USER.DUPLICATE_EMAIL',
            `A user with e-mail ${input.email} already exists`,
            {
              field: 'email',
            },
          );
        }
        throw error;
      }
      await this.setRoles(tx, id, input.roles ?? []);
      const user = await this.get(id, tx);
      await this.audit.record(tx, {
        action: 'user.created',
        entityType: 'user',
        entityId: id,
        before: null,
        after: user,
      });
      return user;
    };
    return manager ? work(manager) : this.transactions.run(work);
  }

  async update(id: string, input: UpdateUserDto): Promise<UserView> {
    return this.transactions.run(async (manager) => {
      const before = await this.lock(manager, id, input.version);
      if (
        input.roles &&
        before.roles.includes('platform-admin') &&
        !input.roles.includes('platform-admin')
      ) {
        await assertAnotherAdmin(manager, id);
      }
      if (input.managerId !== undefined) {
        if (input.managerId === id) {
          throw new InvalidInputError('A user cannot be their own manager', [
            { field: 'managerId', problems: ['managerId must name another user'] },
          ]);
        }
        await requireUser(manager, input.managerId, 'managerId');
      }
      const passwordHash = input.password ? await hashPassword(input.password) : undefined;
      await manager.query(
        `UPDATE users SET name = COALESCE($2, name), manager_id = COALESCE($3, manager_id),
                time_zone = COALESCE($4, time_zone), password_hash = COALESCE($5, password_hash),
                updated_at = $6, version = version + 1
          WHERE id = $1`,
        [
          id,
          input.name ?? null,
          input.managerId ?? null,
          input.timeZone ?? null,
          passwordHash ?? null,
          this.clock.now(),
        ],
      );
      if (input.roles) await this.setRoles(manager, id, input.roles);
      if (passwordHash) {
        // A new password ends every session signed in with the old one.
        await manager.query(
          `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`,
          [id, this.clock.now()],
        );
      }
      const after = await this.get(id, manager);
      await this.audit.record(manager, {
        action: 'user.updated',
        entityType: 'user',
        entityId: id,
        before,
        after,
      });
      return after;
    });
  }

  /** Deactivates a user: history stays, sign-in stops and every open session ends now. */
  async deactivate(id: string, input: DeactivateUserDto): Promise<UserView> {
    return this.transactions.run(async (manager) => {
      const before = await this.lock(manager, id, input.version);
      if (!before.active) {
        throw new ConflictError('USER.ALREADY_INACTIVE', `User ${id} is already inactive`);
      }
      if (before.roles.includes('platform-admin')) await assertAnotherAdmin(manager, id);
      await this.deactivateLocked(manager, id, before, input.reason);
      return this.get(id, manager);
    });
  }

  /**
   * Loads users from a directory CSV (columns id, name, email, manager, active). All rows are
   * checked before any is written; managers refer to other rows' ids.
   */
  async importDirectory(content: string): Promise<DirectoryImportReport> {
    const rows = parseDirectory(content);
    return this.transactions.run(async (manager) => {
      const report: DirectoryImportReport = {
        rows: rows.length,
        created: 0,
        updated: 0,
        deactivated: 0,
      };
      const ids = new Map<string, string>();
      for (const row of rows) {
        const [existing] = await manager.query<{ id: string }[]>(
          `SELECT id FROM users WHERE external_id = $1 OR lower(email) = lower($2) ORDER BY external_id NULLS LAST LIMIT 1 FOR UPDATE`,
          [row.id, row.email],
        );
        if (existing) {
          const before = await this.get(existing.id, manager);
          await manager.query(
            `UPDATE users SET external_id = $2, name = $3, email = $4, updated_at = $5, version = version + 1 WHERE id = $1`,
            [existing.id, row.id, row.name, row.email.toLowerCase(), this.clock.now()],
          );
          await this.audit.record(manager, {
            action: 'user.updated',
            entityType: 'user',
            entityId: existing.id,
            before,
            after: await this.get(existing.id, manager),
          });
          ids.set(row.id, existing.id);
          report.updated += 1;
        } else {
          const created = await this.create({ email: row.email, name: row.name }, row.id, manager);
          ids.set(row.id, created.id);
          report.created += 1;
        }
      }
      for (const row of rows) {
        const userId = ids.get(row.id)!;
        const managerId = row.manager
          ? (ids.get(row.manager) ?? (await this.findByExternalId(manager, row.manager)))
          : null;
        if (row.manager && !managerId) {
          throw new InvalidInputError(
            `Line ${row.line}: manager ${row.manager} is not in the directory`,
            [
              {
                field: `line ${row.line}.manager`,
                problems: [`unknown manager id ${row.manager}`],
              },
            ],
          );
        }
        await manager.query(`UPDATE users SET manager_id = $2 WHERE id = $1`, [userId, managerId]);
        const current = await this.get(userId, manager);
        if (!row.active && current.active) {
          await this.deactivateLocked(manager, userId, current, 'inactive in the directory');
          report.deactivated += 1;
        }
      }
      return report;
    });
  }

  private async deactivateLocked(
    manager: EntityManager,
    id: string,
    before: UserView,
    reason: string,
  ): Promise<void> {
    const now = this.clock.now();
    await manager.query(
      `UPDATE users SET active = false, deactivated_at = $2, updated_at = $2, version = version + 1 WHERE id = $1`,
      [id, now],
    );
    await manager.query(
      `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`,
      [id, now],
    );
    const after = await this.get(id, manager);
    await this.audit.record(manager, {
      action: 'user.deactivated',
      entityType: 'user',
      entityId: id,
      before,
      after: { ...after, reason },
    });
    await this.hooks.runDeactivated(manager, id);
  }

  private async findByExternalId(
    manager: EntityManager,
    externalId: string,
  ): Promise<string | null> {
    const [row] = await manager.query<{ id: string }[]>(
      `SELECT id FROM users WHERE external_id = $1`,
      [externalId],
    );
    return row?.id ?? null;
  }

  /**
   * Replaces a user's roles with roles decided outside this service (the OpenID Connect group
   * mapping), inside the caller's transaction. Does nothing when they are already equal, and keeps
   * the last active platform admin like a manual update does.
   */
  async syncRoles(
    manager: EntityManager,
    id: string,
    roles: Role[],
    source: string,
  ): Promise<UserView> {
    await manager.query(`SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, [id]);
    const before = await this.get(id, manager);
    const nextRoles = [...new Set(roles)].sort();
    if (nextRoles.join(',') === [...before.roles].sort().join(',')) return before;

    if (before.roles.includes('platform-admin') && !nextRoles.includes('platform-admin')) {
      await assertAnotherAdmin(manager, id);
    }
    await this.setRoles(manager, id, nextRoles);
    await manager.query(`UPDATE users SET updated_at = $2, version = version + 1 WHERE id = $1`, [
      id,
      this.clock.now(),
    ]);
    const after = await this.get(id, manager);
    await this.audit.record(manager, {
      action: 'user.roles_synced',
      entityType: 'user',
      entityId: id,
      before,
      after: { ...after, source },
    });
    return after;
  }

  private async lock(manager: EntityManager, id: string, version: number): Promise<UserView> {
    const locked = await manager.query<{ version: number }[]>(
      `SELECT version FROM users WHERE id = $1 FOR UPDATE`,
      [id],
    );
    if (locked.length === 0) throw new NotFoundError('User', id);
    if (locked[0].version !== version)
      throw new StaleVersionError('User', id, version, locked[0].version);
    return this.get(id, manager);
  }

  private async setRoles(manager: EntityManager, id: string, roles: Role[]): Promise<void> {
    await manager.query(`DELETE FROM user_roles WHERE user_id = $1`, [id]);
    if (roles.length > 0) {
      await manager.query(
        `INSERT INTO user_roles (user_id, role) SELECT $1, unnest($2::varchar[])`,
        [id, roles],
      );
    }
  }
}

interface DirectoryRow {
  line: number;
  id: string;
  name: string;
  email: string;
  manager: string;
  active: boolean;
}

const DIRECTORY_COLUMNS = ['id', 'name', 'email', 'manager', 'active'];

function parseDirectory(content: string): DirectoryRow[] {
  type Row = { record: Record<string, string>; info: { lines: number } };
  let rows: Row[];
  let header: string[] = [];
  try {
    rows = parseCsv<Row>(content, {
      bom: true,
      info: true,
      skip_empty_lines: true,
      trim: true,
      columns: (names: string[]) => (header = names.map((name) => name.trim().toLowerCase())),
    });
  } catch (error) {
    throw new InvalidInputError(
      `The directory file is not valid CSV: ${(error as Error).message}`,
      [],
    );
  }
  const missing = DIRECTORY_COLUMNS.filter((column) => !header.includes(column));
  if (missing.length > 0) {
    throw new InvalidInputError(`The directory CSV lacks the columns ${missing.join(', ')}`, [
      { field: 'header', problems: [`missing columns: ${missing.join(', ')}`] },
    ]);
  }

  const problems: { field: string; problems: string[] }[] = [];
  const seen = new Set<string>();
  const result: DirectoryRow[] = [];
  for (const { record, info } of rows) {
    const line = info.lines;
    const rowProblems: string[] = [];
    if (!record.id) rowProblems.push('id is empty');
    if (seen.has(record.id)) rowProblems.push(`id ${record.id} is listed twice`);
    if (record.manager && record.manager === record.id)
      rowProblems.push('manager must name another row');
    if (!record.name) rowProblems.push('name is empty');
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(record.email ?? ''))
      rowProblems.push('email is not an e-mail address');
    const active = (record.active ?? '').toLowerCase();
    if (!['true', 'false', '1', '0', 'yes', 'no'].includes(active))
      rowProblems.push('active must be true or false');
    if (rowProblems.length > 0) problems.push({ field: `line ${line}`, problems: rowProblems });
    seen.add(record.id);
    result.push({
      line,
      id: record.id,
      name: record.name,
      email: record.email,
      manager: record.manager ?? '',
      active: ['true', '1', 'yes'].includes(active),
    });
  }
  if (problems.length > 0) {
    throw new InvalidInputError(
      `The directory CSV has ${problems.length} invalid line(s); nothing was imported`,
      problems,
    );
  }
  return result;
}

/** Keeps at least one active platform admin, so the organisation cannot be locked out by mistake. */
async function assertAnotherAdmin(manager: EntityManager, leavingId: string): Promise<void> {
  // Lock the admins' rows so two admins cannot remove each other at the same moment.
  const others = await manager.query<{ id: string }[]>(
    `SELECT u.id FROM users u JOIN user_roles r ON r.user_id = u.id
      WHERE r.role = 'platform-admin' AND u.active AND u.id <> $1 FOR UPDATE OF u`,
    [leavingId],
  );
  if (others.length === 0) {
    throw new ConflictError(
      'USER.LAST_ADMIN',
      'This is the last active platform admin; give another user the platform-admin role first',
    );
  }
}

/** Throws a 404 naming `field` unless the user exists; used wherever a body refers to a user. */
export async function requireUser(
  manager: EntityManager,
  id: string,
  field: string,
): Promise<void> {
  const [row] = await manager.query<{ id: string }[]>(`SELECT id FROM users WHERE id = $1`, [id]);
  if (!row) throw new DomainError(404, 'USER.NOT_FOUND', `User ${id} was not found`, { field });
}
