import { Readable } from 'node:stream';

import { Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { DomainError, NotFoundError } from '../common/errors';
import { assertMayActOnSystem } from '../common/ownership';
import { Page, PageQuery, toPage } from '../common/pagination';
import { returnedRows, Transactions } from '../common/transactions';
import type { AccountImportQuery } from './access.dto';
import {
  ImportedAccount,
  ImportFileError,
  isRejected,
  parseMapping,
  readAccountRows,
  RejectedRow,
} from './account-csv';

export type RowOutcome = 'created' | 'updated' | 'unchanged' | 'rejected';

export interface RowResult {
  line: number;
  externalId: string | null;
  outcome: RowOutcome;
  accountId?: string;
  reason?: string;
}

export interface AccountImportReport {
  id: string;
  systemId: string;
  preset: string;
  mode: 'full' | 'partial';
  rowsRead: number;
  created: number;
  updated: number;
  unchanged: number;
  rejected: number;
  removed: number;
  /** Why a full import marked nothing removed, when it could not tell which accounts are absent. */
  removalSkipped: string | null;
  findingsRaised: number;
  findingsResolved: number;
  rows: RowResult[];
}

export interface AccountImportOptions extends Pick<
  AccountImportQuery,
  'preset' | 'mode' | 'mapping' | 'allowPartialErrors'
> {
  /** Where the file came from, for the import history (e.g. "upload" or "file accounts.csv"). */
  source: string;
  /** Called every PROGRESS_EVERY rows and at each step, for the operator command. */
  progress?: (message: string) => void;
}

/** Valid rows by lower-cased account id, and the rejected rows, of one file. */
interface StagedFile {
  lines: Map<string, { line: number; externalId: string }>;
  rejected: RejectedRow[];
  rowsRead: number;
}

/** Rows per INSERT into the staging table. */
const BATCH_SIZE = 5000;
const PROGRESS_EVERY = 10_000;
/** Rejected rows listed in a 400 body; the count covers all of them. */
const MAX_LISTED_PROBLEMS = 1000;

/**
 * Imports a system's accounts from a CSV export and reconciles the inventory in one transaction:
 * new accounts, changed accounts, accounts absent from a full snapshot, and the findings that
 * follow (unapproved access, admin without MFA, admin on an everyday account, provider account
 * conflicts). By default one bad row rejects the whole file and nothing changes.
 */
@Injectable()
export class AccountImportService {
  private readonly logger = new Logger('AccountImport');

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async importAccounts(
    systemId: string,
    content: Readable | string,
    options: AccountImportOptions,
  ): Promise<AccountImportReport> {
    const mapping = options.preset === 'generic' ? parseMapping(options.mapping) : undefined;
    const report = await this.transactions.run(async (manager) => {
      const [system] = await manager.query<{ owner_id: string | null }[]>(
        `SELECT owner_id FROM systems WHERE id = $1 FOR UPDATE`,
        [systemId],
      );
      if (!system) throw new NotFoundError('System', systemId);
      assertMayActOnSystem(systemId, system.owner_id, ['platform-admin', 'security-approver']);
      const staged = await this.stage(manager, content, options, mapping);
      return this.reconcile(manager, systemId, staged, options);
    });
    this.logger.log(
      {
        importId: report.id,
        systemId,
        created: report.created,
        updated: report.updated,
        removed: report.removed,
        rejected: report.rejected,
      },
      'Account import finished',
    );
    return report;
  }

  async listImports(systemId: string, query: PageQuery): Promise<Page<unknown>> {
    const rows = await this.dataSource.query<Record<string, unknown>[]>(
      `SELECT id, system_id AS "systemId", preset, mode, source, rows_read AS "rowsRead", created,
              updated, unchanged, rejected, removed, started_at AS "startedAt",
              finished_at AS "finishedAt"
         FROM account_imports WHERE system_id = $1
        ORDER BY started_at DESC, id OFFSET $2 LIMIT $3`,
      [systemId, query.offset, query.limit + 1],
    );
    return toPage(rows, query);
  }

  /** Streams the file into a temporary table, checking each row; throws on a rejected file. */
  private async stage(
    manager: EntityManager,
    content: Readable | string,
    options: AccountImportOptions,
    mapping: Record<string, string> | undefined,
  ): Promise<StagedFile> {
    const progress = options.progress ?? (() => undefined);
    await manager.query(
      `CREATE TEMP TABLE account_import_rows (
         line integer NOT NULL, lower_id text PRIMARY KEY, external_id text NOT NULL,
         name text NOT NULL, privilege text NOT NULL, mfa_state text NOT NULL,
         status text NOT NULL, last_used_at timestamptz, attributes jsonb NOT NULL
       ) ON COMMIT DROP`,
    );
    const lines = new Map<string, { line: number; externalId: string }>();
    const rejected: RejectedRow[] = [];
    let batch: ImportedAccount[] = [];
    let rowsRead = 0;
    try {
      for await (const row of readAccountRows(content, options.preset, mapping)) {
        rowsRead++;
        if (rowsRead % PROGRESS_EVERY === 0) progress(`Read ${rowsRead} rows`);
        if (isRejected(row)) {
          rejected.push(row);
          continue;
        }
        const key = row.externalId.toLowerCase();
        const first = lines.get(key);
        if (first !== undefined) {
          rejected.push({
            line: row.line,
            externalId: row.externalId,
            reason: `duplicate account id "${row.externalId}" (first on line ${first.line}; ids ignore case)`,
          });
          continue;
        }
        lines.set(key, { line: row.line, externalId: row.externalId });
        batch.push(row);
        if (batch.length >= BATCH_SIZE) {
          await insertBatch(manager, batch);
          batch = [];
        }
      }
    } catch (error) {
      if (error instanceof ImportFileError) {
        throw invalidFile(`The file cannot be imported: ${error.message}`, [
          { line: error.line, externalId: null, reason: error.message },
        ]);
      }
      throw error;
    }
    if (batch.length > 0) await insertBatch(manager, batch);
    progress(`Read ${rowsRead} rows: ${lines.size} valid, ${rejected.length} rejected`);

    if (rejected.length > 0 && !options.allowPartialErrors) {
      throw invalidFile(
        `${rejected.length} row(s) are invalid, so nothing was imported; fix them or send ` +
          'allowPartialErrors=true to import the valid rows',
        rejected,
      );
    }
    return { lines, rejected, rowsRead };
  }

  private async reconcile(
    manager: EntityManager,
    systemId: string,
    staged: StagedFile,
    options: AccountImportOptions,
  ): Promise<AccountImportReport> {
    const progress = options.progress ?? (() => undefined);
    const startedAt = this.clock.now();
    const now = startedAt;

    const created = await manager.query<{ id: string; lower_id: string; external_id: string }[]>(
      `INSERT INTO accounts (system_id, external_id, name, privilege, purpose, mfa_state, status,
                             origin, last_used_at, attributes, created_at, updated_at)
       SELECT $1, r.external_id, r.name, r.privilege,
              CASE WHEN r.privilege = 'admin' THEN 'admin' ELSE 'everyday' END,
              r.mfa_state, r.status, 'imported', r.last_used_at, r.attributes, $2, $2
         FROM account_import_rows r
        WHERE NOT EXISTS (SELECT 1 FROM accounts a
                           WHERE a.system_id = $1 AND lower(a.external_id) = r.lower_id)
       RETURNING id, lower(external_id) AS lower_id, external_id`,
      [systemId, now],
    );
    progress(`Created ${created.length} account(s)`);

    // "unknown" in the file means the file does not say, so the recorded value stays. The
    // self-join on `o` returns each account's state from before the update.
    const updated = returnedRows<Record<string, unknown>>(
      await manager.query(
        `UPDATE accounts a
            SET name = r.name,
                privilege = CASE WHEN r.privilege = 'unknown' THEN a.privilege ELSE r.privilege END,
                mfa_state = CASE WHEN r.mfa_state = 'unknown' THEN a.mfa_state ELSE r.mfa_state END,
                status = r.status, removed_at = NULL,
                last_used_at = COALESCE(r.last_used_at, a.last_used_at),
                attributes = r.attributes, updated_at = $2, version = a.version + 1
           FROM account_import_rows r, accounts o
          WHERE a.system_id = $1 AND lower(a.external_id) = r.lower_id AND o.id = a.id
            AND (a.name, CASE WHEN r.privilege = 'unknown' THEN a.privilege ELSE r.privilege END,
                 CASE WHEN r.mfa_state = 'unknown' THEN a.mfa_state ELSE r.mfa_state END,
                 a.status, COALESCE(r.last_used_at, a.last_used_at), a.attributes)
                IS DISTINCT FROM
                (r.name, a.privilege, a.mfa_state, r.status, a.last_used_at, r.attributes)
        RETURNING a.id, r.lower_id, a.external_id,
                  json_build_object('name', o.name, 'privilege', o.privilege, 'mfaState', o.mfa_state,
                    'status', o.status, 'lastUsedAt', o.last_used_at) AS before,
                  json_build_object('name', a.name, 'privilege', a.privilege, 'mfaState', a.mfa_state,
                    'status', a.status, 'lastUsedAt', a.last_used_at) AS after`,
        [systemId, now],
      ),
    );
    progress(`Updated ${updated.length} account(s)`);

    const removal = await this.markRemoved(manager, systemId, staged.rejected, options.mode, now);
    const findings = await this.reconcileFindings(manager, systemId, removal.removedIds, now);
    progress(`Findings: ${findings.raised} raised or seen again, ${findings.resolved} resolved`);

    const rowsValid = staged.lines.size;
    const counts = {
      rowsRead: staged.rowsRead,
      created: created.length,
      updated: updated.length,
      unchanged: rowsValid - created.length - updated.length,
      rejected: staged.rejected.length,
      removed: removal.removedIds.length,
    };
    const [{ id }] = await manager.query<{ id: string }[]>(
      `INSERT INTO account_imports (system_id, preset, mode, source, rows_read, created, updated,
                                    unchanged, rejected, removed, started_at, finished_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
      [
        systemId,
        options.preset,
        options.mode,
        options.source.slice(0, 300),
        counts.rowsRead,
        counts.created,
        counts.updated,
        counts.unchanged,
        counts.rejected,
        counts.removed,
        startedAt,
        this.clock.now(),
      ],
    );
    // One event for the whole import: it lists every account it created, changed or removed, with
    // the changed fields before and after, so the history of each account can be rebuilt from it.
    await this.audit.record(manager, {
      action: 'account_import.applied',
      entityType: 'account_import',
      entityId: id,
      before: null,
      after: {
        systemId,
        preset: options.preset,
        mode: options.mode,
        source: options.source,
        ...counts,
        createdAccounts: created.map((row) => ({ id: row.id, externalId: row.external_id })),
        updatedAccounts: updated.map((row) => ({
          id: row.id,
          externalId: row.external_id,
          before: row.before,
          after: row.after,
        })),
        removedAccountIds: removal.removedIds,
        rejectedRows: staged.rejected,
      },
    });

    return {
      id,
      systemId,
      preset: options.preset,
      mode: options.mode,
      ...counts,
      removalSkipped: removal.skipped,
      findingsRaised: findings.raised,
      findingsResolved: findings.resolved,
      rows: rowResults(staged, created, updated),
    };
  }

  /**
   * In a full import, marks accounts absent from the file as removed. A rejected row that named
   * its account keeps that account; a rejected row without an id makes absence unknowable, so
   * nothing is removed.
   */
  private async markRemoved(
    manager: EntityManager,
    systemId: string,
    rejected: RejectedRow[],
    mode: 'full' | 'partial',
    now: Date,
  ): Promise<{ removedIds: string[]; skipped: string | null }> {
    if (mode === 'partial') return { removedIds: [], skipped: null };
    if (rejected.some((row) => row.externalId === null)) {
      return {
        removedIds: [],
        skipped: 'a rejected row has no readable account id, so absent accounts were kept',
      };
    }
    const kept = rejected.map((row) => (row.externalId ?? '').toLowerCase());
    const removed = returnedRows<{ id: string }>(
      await manager.query(
        `UPDATE accounts a SET status = 'removed', removed_at = $2, updated_at = $2,
                version = version + 1
          WHERE a.system_id = $1 AND a.status <> 'removed'
            AND NOT EXISTS (SELECT 1 FROM account_import_rows r WHERE r.lower_id = lower(a.external_id))
            AND NOT (lower(a.external_id) = ANY($3::text[]))
        RETURNING a.id`,
        [systemId, now, kept],
      ),
    );
    return { removedIds: removed.map((row) => row.id), skipped: null };
  }

  /**
   * Raises or resolves the findings an import can observe, for the accounts in the file, and
   * resolves those of removed accounts. A finding seen again keeps its status and first-seen time.
   */
  private async reconcileFindings(
    manager: EntityManager,
    systemId: string,
    removedIds: string[],
    now: Date,
  ): Promise<{ raised: number; resolved: number }> {
    const holdsGrant = (privilege: string): string =>
      `EXISTS (SELECT 1 FROM access_grants g WHERE g.account_id = a.id
                 AND g.status IN ('approved', 'active') AND (g.ends_at IS NULL OR g.ends_at > $2)
                 ${privilege})`;
    const conditions: Record<string, string> = {
      'unapproved-access': `a.status = 'active' AND NOT ${holdsGrant('')}`,
      'admin-without-mfa': `a.mfa_state = 'disabled' AND ${holdsGrant("AND g.privilege = 'admin'")}`,
      'admin-on-everyday-account': `a.privilege = 'admin' AND a.purpose = 'everyday'`,
      'provider-account-conflict': `a.status <> 'removed' AND EXISTS (
          SELECT 1 FROM accounts p WHERE lower(p.external_id) = lower(a.external_id)
             AND p.holder_type = 'provider' AND p.id <> a.id)`,
    };
    let raised = 0;
    let resolved = 0;
    for (const [type, condition] of Object.entries(conditions)) {
      const inserted = returnedRows<{ id: string }>(
        await manager.query(
          `INSERT INTO access_findings (type, system_id, account_id, details, first_seen_at,
                                        last_seen_at, status)
           SELECT $3, a.system_id, a.id, '{"source": "account-import"}', $2, $2, 'open'
             FROM accounts a JOIN account_import_rows r ON r.lower_id = lower(a.external_id)
            WHERE a.system_id = $1 AND ${condition}
           ON CONFLICT (type, system_id, account_id) DO UPDATE
             SET last_seen_at = EXCLUDED.last_seen_at,
                 status = CASE WHEN access_findings.status = 'resolved' THEN 'open'
                               ELSE access_findings.status END,
                 resolved_at = NULL
           RETURNING id`,
          [systemId, now, type],
        ),
      );
      raised += inserted.length;
      const cleared = returnedRows<{ id: string }>(
        await manager.query(
          `UPDATE access_findings f SET status = 'resolved', resolved_at = $2, version = f.version + 1
             FROM accounts a
            WHERE f.account_id = a.id AND f.type = $3 AND f.status <> 'resolved'
              AND a.system_id = $1
              AND (a.id = ANY($4::uuid[])
                   OR (EXISTS (SELECT 1 FROM account_import_rows r WHERE r.lower_id = lower(a.external_id))
                       AND NOT (${condition})))
           RETURNING f.id`,
          [systemId, now, type, removedIds],
        ),
      );
      resolved += cleared.length;
    }
    return { raised, resolved };
  }
}

async function insertBatch(manager: EntityManager, batch: ImportedAccount[]): Promise<void> {
  await manager.query(
    `INSERT INTO account_import_rows
       (line, lower_id, external_id, name, privilege, mfa_state, status, last_used_at, attributes)
     SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                          $7::text[], $8::timestamptz[], $9::jsonb[])`,
    [
      batch.map((row) => row.line),
      batch.map((row) => row.externalId.toLowerCase()),
      batch.map((row) => row.externalId),
      batch.map((row) => row.name),
      batch.map((row) => row.privilege),
      batch.map((row) => row.mfaState),
      batch.map((row) => row.status),
      batch.map((row) => row.lastUsedAt),
      batch.map((row) => JSON.stringify(row.attributes)),
    ],
  );
}

function invalidFile(message: string, rejected: RejectedRow[]): DomainError {
  return new DomainError(400, 'ACCESS.IMPORT_INVALID', message, {
    rejectedCount: rejected.length,
    rejected: rejected.slice(0, MAX_LISTED_PROBLEMS),
  });
}

function rowResults(
  staged: StagedFile,
  created: { id: string; lower_id: string; external_id: string }[],
  updated: Record<string, unknown>[],
): RowResult[] {
  const outcomes = new Map<string, { outcome: RowOutcome; accountId: string }>();
  for (const row of created) outcomes.set(row.lower_id, { outcome: 'created', accountId: row.id });
  for (const row of updated) {
    outcomes.set(row.lower_id as string, { outcome: 'updated', accountId: row.id as string });
  }
  const results: RowResult[] = [];
  for (const [key, { line, externalId }] of staged.lines) {
    const known = outcomes.get(key);
    results.push({
      line,
      externalId,
      outcome: known?.outcome ?? 'unchanged',
      ...(known ? { accountId: known.accountId } : {}),
    });
  }
  for (const row of staged.rejected) {
    results.push({
      line: row.line,
      externalId: row.externalId,
      outcome: 'rejected',
      reason: row.reason,
    });
  }
  return results.sort((a, b) => a.line - b.line);
}
