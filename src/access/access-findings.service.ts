import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import {
  ConflictError,
  InvalidInputError,
  NotFoundError,
  StaleVersionError,
} from '../common/errors';
import { Page, toPage } from '../common/pagination';
import { returnedRows, Transactions } from '../common/transactions';
import { currentContext } from '../common/request-context';
import { AcceptRiskDto, FindingListQuery } from './access.dto';
import type { FindingType } from './access.types';

export interface AccessFindingView {
  id: string;
  type: string;
  systemId: string;
  accountId: string | null;
  details: Record<string, unknown>;
  firstSeenAt: Date;
  lastSeenAt: Date;
  /** Status as of now: an accepted risk past its expiry reads as open. */
  status: string;
  riskAcceptedBy: string | null;
  riskReason: string | null;
  riskExpiresAt: Date | null;
  resolvedAt: Date | null;
  version: number;
}

interface FindingRow {
  id: string;
  type: string;
  system_id: string;
  account_id: string | null;
  details: Record<string, unknown>;
  first_seen_at: Date;
  last_seen_at: Date;
  status: string;
  risk_accepted_by: string | null;
  risk_reason: string | null;
  risk_expires_at: Date | null;
  resolved_at: Date | null;
  version: number;
}

/** SQL for the status as of `$now`: a risk acceptance lapses at its expiry without a job. */
export function effectiveFindingStatus(alias: string, now: string): string {
  return `CASE WHEN ${alias}.status = 'risk-accepted' AND ${alias}.risk_expires_at <= ${now}
               THEN 'open' ELSE ${alias}.status END`;
}

/**
 * Opens a finding, or records that it was seen again. A resolved finding reopens; an open or
 * risk-accepted one keeps its status.
 */
export async function raiseFinding(
  manager: EntityManager,
  finding: { type: FindingType; systemId: string; accountId: string; details: object },
  now: Date,
): Promise<void> {
  await manager.query(
    `INSERT INTO access_findings (type, system_id, account_id, details, first_seen_at, last_seen_at, status)
     VALUES ($1, $2, $3, $4, $5, $5, 'open')
     ON CONFLICT (type, system_id, account_id) DO UPDATE
       SET last_seen_at = EXCLUDED.last_seen_at, details = EXCLUDED.details,
           status = CASE WHEN access_findings.status = 'resolved' THEN 'open' ELSE access_findings.status END,
           resolved_at = CASE WHEN access_findings.status = 'resolved' THEN NULL ELSE access_findings.resolved_at END,
           version = access_findings.version + CASE WHEN access_findings.status = 'resolved' THEN 1 ELSE 0 END`,
    [finding.type, finding.systemId, finding.accountId, JSON.stringify(finding.details), now],
  );
}

/** Resolves the open or risk-accepted finding of one type on an account; returns whether one was. */
export async function resolveFinding(
  manager: EntityManager,
  type: FindingType,
  accountId: string,
  now: Date,
): Promise<boolean> {
  const rows = returnedRows<{ id: string }>(
    await manager.query(
      `UPDATE access_findings SET status = 'resolved', resolved_at = $3, version = version + 1
        WHERE type = $1 AND account_id = $2 AND status <> 'resolved' RETURNING id`,
      [type, accountId, now],
    ),
  );
  return rows.length > 0;
}

/** Lists access findings and records risk acceptance. */
@Injectable()
export class AccessFindingsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  async list(query: FindingListQuery): Promise<Page<AccessFindingView>> {
    const now = this.clock.now();
    const conditions: string[] = [];
    const parameters: unknown[] = [now];
    const add = (sql: string, value: unknown): void => {
      parameters.push(value);
      conditions.push(sql.replace('?', `$${parameters.length}`));
    };
    if (query.systemId) add('f.system_id = ?', query.systemId);
    if (query.accountId) add('f.account_id = ?', query.accountId);
    if (query.type) add('f.type = ?', query.type);
    if (query.status) add(`${effectiveFindingStatus('f', '$1')} = ?`, query.status);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const direction = query.order === 'desc' ? 'DESC' : 'ASC';
    const rows = await this.dataSource.query<FindingRow[]>(
      `SELECT f.*, ${effectiveFindingStatus('f', '$1')} AS status FROM access_findings f ${where}
        ORDER BY f.first_seen_at ${direction}, f.id
        OFFSET ${query.offset} LIMIT ${query.limit + 1}`,
      parameters,
    );
    return toPage(rows.map(toView), query);
  }

  async acceptRisk(id: string, input: AcceptRiskDto): Promise<AccessFindingView> {
    const now = this.clock.now();
    const expiresAt = new Date(input.expiresAt);
    if (expiresAt.getTime() <= now.getTime()) {
      throw new InvalidInputError('Invalid request: check expiresAt', [
        { field: 'expiresAt', problems: [`expiresAt must be after ${now.toISOString()}`] },
      ]);
    }
    const latest = new Date(now.getTime() + this.settings.riskAcceptanceMaxDays * 86_400_000);
    if (expiresAt > latest) {
      // A risk accepted without a real end is a permanent exception, which the review must see.
      throw new InvalidInputError('Invalid request: check expiresAt', [
        {
          field: 'expiresAt',
          problems: [
            `expiresAt must be at most ${this.settings.riskAcceptanceMaxDays} days ahead (by ${latest.toISOString()}); RISK_ACCEPTANCE_MAX_DAYS sets the limit`,
          ],
        },
      ]);
    }
    return this.transactions.run(async (manager) => {
      const [row] = await manager.query<FindingRow[]>(
        `SELECT * FROM access_findings WHERE id = $1 FOR UPDATE`,
        [id],
      );
      if (!row) throw new NotFoundError('Access finding', id);
      if (row.version !== input.version) {
        throw new StaleVersionError('Access finding', id, input.version, row.version);
      }
      if (row.status === 'resolved') {
        throw new ConflictError(
          'ACCESS.FINDING_RESOLVED',
          `Access finding ${id} is resolved; there is no risk left to accept`,
          { id },
        );
      }
      const before = toView(row);
      const [updated] = returnedRows<FindingRow>(
        await manager.query(
          `UPDATE access_findings
              SET status = 'risk-accepted', risk_accepted_by = $2, risk_reason = $3,
                  risk_expires_at = $4, version = version + 1
            WHERE id = $1 RETURNING *`,
          [id, currentContext()?.user?.id ?? null, input.reason, expiresAt],
        ),
      );
      const after = toView(updated);
      await this.audit.record(manager, {
        action: 'access_finding.risk_accepted',
        entityType: 'access_finding',
        entityId: id,
        before,
        after,
      });
      return after;
    });
  }
}

function toView(row: FindingRow): AccessFindingView {
  return {
    id: row.id,
    type: row.type,
    systemId: row.system_id,
    accountId: row.account_id,
    details: row.details,
    firstSeenAt: row.first_seen_at,
    lastSeenAt: row.last_seen_at,
    status: row.status,
    riskAcceptedBy: row.risk_accepted_by,
    riskReason: row.risk_reason,
    riskExpiresAt: row.risk_expires_at,
    resolvedAt: row.resolved_at,
    version: row.version,
  };
}
