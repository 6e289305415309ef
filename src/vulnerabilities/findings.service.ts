import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { ConflictError, DomainError, NotFoundError, StaleVersionError } from '../common/errors';
import { assertMayActOnSystem } from '../common/ownership';
import { Page, toPage } from '../common/pagination';
import { Transactions } from '../common/transactions';
import { isUniqueViolation } from '../common/unique-violation';
import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import {
  ConfirmFindingDto,
  CreateAdvisoryDto,
  DismissFindingDto,
  FindingListQuery,
  FindingStatus,
  FixFindingDto,
} from './findings.dto';

/** A finding as read: stored facts plus the due date and status computed from the clock. */
export interface FindingView {
  id: string;
  systemId: string;
  systemName: string;
  systemCriticality: string;
  source: 'kev' | 'advisory';
  vulnerabilityId: string;
  title: string;
  kevVendorProject: string | null;
  kevProduct: string | null;
  severity: string | null;
  knownRansomwareUse: boolean;
  requiredAction: string | null;
  matchedBy: string;
  matchState: 'pending' | 'confirmed' | 'dismissed';
  decisionReason: string | null;
  decidedAt: Date | null;
  firstSeenAt: Date;
  /** First-seen time plus the patch SLA of the system's criticality. */
  slaDueAt: Date;
  /** CISA's due date for the entry (YYYY-MM-DD), shown beside the SLA. */
  kevDueDate: string | null;
  advisoryDueDate: string | null;
  /** The binding due time: the SLA, or the source's date when earlier and KEV_DUE_DATE_BINDING is on. */
  dueAt: Date;
  withdrawnAt: Date | null;
  fixedAt: Date | null;
  fixedVersion: string | null;
  status: FindingStatus;
  version: number;
}

const SORT_COLUMNS = {
  dueAt: '"dueAt"',
  firstSeenAt: '"firstSeenAt"',
  vulnerabilityId: '"vulnerabilityId"',
};

/**
 * Parameters $1-$6 are the clock, the binding setting and the four SLA lengths in days. A source
 * date binds at the end of that day in UTC.
 */
const FINDINGS_VIEW = `
  SELECT d.*,
         CASE WHEN d."matchState" = 'dismissed' THEN 'dismissed'
              WHEN d."fixedAt" IS NOT NULL THEN 'fixed'
              WHEN d."withdrawnAt" IS NOT NULL THEN 'withdrawn'
              WHEN d."dueAt" <= $1 THEN 'overdue'
              ELSE 'open' END AS status
    FROM (
      SELECT b.*,
             CASE WHEN $2::boolean AND b.source_due IS NOT NULL AND b.source_due < b."slaDueAt"
                  THEN b.source_due ELSE b."slaDueAt" END AS "dueAt"
        FROM (
          SELECT f.id, f.system_id AS "systemId", s.name AS "systemName", s.criticality AS "systemCriticality",
                 f.source, COALESCE(f.cve_id, f.advisory_id) AS "vulnerabilityId",
                 COALESCE(k.vulnerability_name, f.title) AS title,
                 k.vendor_project AS "kevVendorProject", k.product AS "kevProduct", f.severity,
                 COALESCE(k.known_ransomware_use, f.advisory_ransomware_use) AS "knownRansomwareUse",
                 k.required_action AS "requiredAction",
                 f.matched_by AS "matchedBy", f.match_state AS "matchState",
                 f.decision_reason AS "decisionReason", f.decided_at AS "decidedAt",
                 f.first_seen_at AS "firstSeenAt",
                 f.first_seen_at + make_interval(days => CASE s.criticality
                   WHEN 'critical' THEN $3::int WHEN 'high' THEN $4::int
                   WHEN 'medium' THEN $5::int ELSE $6::int END) AS "slaDueAt",
                 to_char(k.due_date, 'YYYY-MM-DD') AS "kevDueDate",
                 to_char(f.advisory_due_date, 'YYYY-MM-DD') AS "advisoryDueDate",
                 ((COALESCE(k.due_date, f.advisory_due_date) + 1)::timestamp AT TIME ZONE 'UTC') AS source_due,
                 k.withdrawn_at AS "withdrawnAt", f.fixed_at AS "fixedAt", f.fixed_version AS "fixedVersion",
                 f.version
            FROM vulnerability_findings f
            JOIN systems s ON s.id = f.system_id
            LEFT JOIN kev_entries k ON k.cve_id = f.cve_id
        ) b
    ) d`;

@Injectable()
export class FindingsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  async list(query: FindingListQuery): Promise<Page<FindingView>> {
    const parameters: unknown[] = this.viewParameters();
    const conditions: string[] = [];
    const add = (sql: string, value: unknown): void => {
      parameters.push(value);
      conditions.push(sql.replace('?', `$${parameters.length}`));
    };
    if (query.systemId) add('v."systemId" = ?', query.systemId);
    if (query.status) add('v.status = ?', query.status);
    if (query.matchState) add('v."matchState" = ?', query.matchState);
    if (query.source) add('v.source = ?', query.source);
    if (query.knownRansomwareUse !== undefined)
      add('v."knownRansomwareUse" = ?', query.knownRansomwareUse);
    if (query.vulnerabilityId) add('upper(v."vulnerabilityId") = upper(?)', query.vulnerabilityId);

    parameters.push(query.limit + 1, query.offset);
    const rows = await this.dataSource.query<FindingView[]>(
      `SELECT v.* FROM (${FINDINGS_VIEW}) v
        ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
        ORDER BY v.${SORT_COLUMNS[query.sort]} ${query.order === 'asc' ? 'ASC' : 'DESC'}, v.id
        LIMIT $${parameters.length - 1} OFFSET $${parameters.length}`,
      parameters,
    );
    return toPage(rows.map(toView), query);
  }

  async get(id: string, manager: EntityManager = this.dataSource.manager): Promise<FindingView> {
    const [row] = await manager.query<FindingView[]>(
      `SELECT v.* FROM (${FINDINGS_VIEW}) v WHERE v.id = $7`,
      [...this.viewParameters(), id],
    );
    if (!row) throw new NotFoundError('Finding', id);
    return toView(row);
  }

  confirm(id: string, input: ConfirmFindingDto): Promise<FindingView> {
    return this.decide(id, input.version, 'finding.confirmed', (finding) => {
      if (finding.matchState === 'confirmed') {
        throw new ConflictError('FINDING.ALREADY_DECIDED', `Finding ${id} is already confirmed`, {
          current: finding,
        });
      }
      return {
        match_state: 'confirmed',
        decision_reason: input.reason ?? null,
        decided_at: this.clock.now(),
      };
    });
  }

  dismiss(id: string, input: DismissFindingDto): Promise<FindingView> {
    return this.decide(id, input.version, 'finding.dismissed', (finding) => {
      if (finding.matchState === 'dismissed') {
        throw new ConflictError('FINDING.ALREADY_DECIDED', `Finding ${id} is already dismissed`, {
          current: finding,
        });
      }
      if (finding.fixedAt !== null) {
        throw new ConflictError(
          'FINDING.ALREADY_FIXED',
          `Finding ${id} is fixed; a fixed finding is not dismissed`,
        );
      }
      return {
        match_state: 'dismissed',
        decision_reason: input.reason,
        decided_at: this.clock.now(),
      };
    });
  }

  fix(id: string, input: FixFindingDto): Promise<FindingView> {
    return this.decide(id, input.version, 'finding.fixed', (finding) => {
      if (finding.fixedAt !== null) {
        throw new ConflictError(
          'FINDING.ALREADY_FIXED',
          `Finding ${id} was already fixed in ${finding.fixedVersion}`,
        );
      }
      if (finding.matchState === 'dismissed') {
        throw new ConflictError(
          'FINDING.DISMISSED',
          `Finding ${id} is dismissed; confirm it before recording a fix`,
        );
      }
      return { fixed_at: this.clock.now(), fixed_version: input.fixedVersion };
    });
  }

  /** Records an advisory outside KEV; it gets the same SLA, due date and status rules. */
  async createAdvisory(input: CreateAdvisoryDto): Promise<FindingView> {
    return this.transactions.run(async (manager) => {
      const [system] = await manager.query<
        { id: string; owner_id: string | null; lifecycle_status: string }[]
      >(`SELECT id, owner_id, lifecycle_status FROM systems WHERE id = $1 FOR SHARE`, [
        input.systemId,
      ]);
      if (!system) {
        throw new DomainError(404, 'SYSTEM.NOT_FOUND', `System ${input.systemId} was not found`, {
          field: 'systemId',
        });
      }
      assertMayActOnSystem(system.id, system.owner_id, ['platform-admin', 'security-approver']);
      if (system.lifecycle_status === 'retired') {
        throw new ConflictError(
          'SYSTEM.RETIRED',
          `System ${system.id} is retired; it takes no new findings`,
        );
      }
      const now = this.clock.now();
      let id: string;
      try {
        [{ id }] = await manager.query<{ id: string }[]>(
          `INSERT INTO vulnerability_findings
             (system_id, source, advisory_id, title, severity, advisory_due_date, advisory_ransomware_use,
              matched_by, match_state, decided_at, first_seen_at, created_at, updated_at)
           VALUES ($1, 'advisory', $2, $3, $4, $5, $6, 'manual', 'confirmed', $7, $7, $7, $7)
           RETURNING id`,
          [
            input.systemId,
            input.advisoryId,
            input.title,
            input.severity,
            input.dueDate ?? null,
            input.knownRansomwareUse ?? false,
            now,
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error, 'findings_system_advisory_key')) {
          throw new ConflictError(
            'FINDING.DUPLICATE_ADVISORY',
            `System ${input.systemId} already has advisory ${input.advisoryId}`,
            { field: 'advisoryId' },
          );
        }
        throw error;
      }
      const finding = await this.get(id, manager);
      await this.audit.record(manager, {
        action: 'finding.advisory_recorded',
        entityType: 'finding',
        entityId: id,
        before: null,
        after: finding,
      });
      return finding;
    });
  }

  /** Open or overdue findings on the owner's active systems, due at or before `horizon`. */
  async dueForOwner(ownerId: string, horizon: Date): Promise<FindingView[]> {
    const rows = await this.dataSource.query<FindingView[]>(
      `SELECT v.* FROM (${FINDINGS_VIEW}) v JOIN systems s ON s.id = v."systemId"
        WHERE s.owner_id = $7 AND s.lifecycle_status <> 'retired'
          AND v.status IN ('open', 'overdue') AND v."dueAt" <= $8
        ORDER BY v."dueAt", v."vulnerabilityId"`,
      [...this.viewParameters(), ownerId, horizon],
    );
    return rows.map(toView);
  }

  private viewParameters(): unknown[] {
    const sla = this.settings.patchSlaDays;
    return [
      this.clock.now(),
      this.settings.kevDueDateBinding,
      sla.critical,
      sla.high,
      sla.medium,
      sla.low,
    ];
  }

  /**
   * Applies a decision with optimistic concurrency: the row is locked, the caller's version
   * compared, and the update must touch exactly one row.
   */
  private async decide(
    id: string,
    version: number,
    action: string,
    change: (finding: FindingView) => Record<string, unknown>,
  ): Promise<FindingView> {
    return this.transactions.run(async (manager) => {
      const locked = await manager.query<
        { version: number; system_id: string; owner_id: string | null }[]
      >(
        `SELECT f.version, f.system_id, s.owner_id FROM vulnerability_findings f JOIN systems s ON s.id = f.system_id
          WHERE f.id = $1 FOR UPDATE OF f`,
        [id],
      );
      if (locked.length === 0) throw new NotFoundError('Finding', id);
      assertMayActOnSystem(locked[0].system_id, locked[0].owner_id, [
        'platform-admin',
        'security-approver',
      ]);
      const before = await this.get(id, manager);
      if (before.version !== version)
        throw new StaleVersionError('Finding', id, version, before.version);

      const values = change(before);
      const columns = Object.keys(values);
      const assignments = columns.map((column, index) => `${column} = $${index + 3}`).join(', ');
      const [, affected] = await manager.query<[unknown, number]>(
        `UPDATE vulnerability_findings
            SET ${assignments}, version = version + 1, updated_at = $${columns.length + 3}
          WHERE id = $1 AND version = $2`,
        [id, version, ...Object.values(values), this.clock.now()],
      );
      if (affected !== 1) throw new StaleVersionError('Finding', id, version, before.version + 1);

      const after = await this.get(id, manager);
      await this.audit.record(manager, {
        action,
        entityType: 'finding',
        entityId: id,
        before,
        after,
      });
      return after;
    });
  }
}

/** Drops the helper column the view query needs for its due-date comparison. */
function toView(row: FindingView & { source_due?: unknown }): FindingView {
  const { source_due: _sourceDue, ...view } = row;
  return view;
}
