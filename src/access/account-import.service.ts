import { Readable } from 'node:stream';

import { Injectable, Logger } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { DomainError, NotFoundError } from '../common/errors';
import { assertMayActOnSystem } from '../common/ownership';
import { Page, PageQuery, toPage } from '../common/pagination';
import { Transactions } from '../common/transactions';
import type { AccountImportQuery } from './access.dto';
import { ImportFileError, parseMapping, RejectedRow } from './account-csv';
import { StagedFile, stageRows } from './account-import-staging';

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

  /** Streams the file into the staging tables, checking each row; throws on a rejected file. */
  private async stage(
    manager: EntityManager,
    content: Readable | string,
    options: AccountImportOptions,
    mapping: Record<string, string> | undefined,
  ): Promise<StagedFile> {
    const progress = options.progress ?? (() => undefined);
    let staged: StagedFile;
    try {
      staged = await stageRows(manager, content, {
        preset: options.preset,
        mapping,
        progress,
        progressEvery: PROGRESS_EVERY,
      });
    } catch (error) {
      if (error instanceof ImportFileError) {
        throw invalidFile(`The file cannot be imported: ${error.message}`, [
          { line: error.line, externalId: null, reason: error.message },
        ]);
      }
      throw error;
    }
    const { rejected, rowsRead, rowsValid } = staged;
    progress(`Read ${rowsRead} rows: ${rowsValid} valid, ${rejected.length} rejected`);

    if (rejected.length > 0 && !options.allowPartialErrors) {
      throw invalidFile(
        `${rejected.length} row(s) are invalid, so nothing was imported; fix them or send ` +
          'allowPartialErrors=true to import the valid rows',
        rejected,
      );
    }
    return staged;
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

    // Each statement records its outcomes in account_import_outcomes, so neither the created nor
    // the updated accounts pass through Node.js until the report is read.
    const [{ count: created }] = await manager.query<{ count: number }[]>(
      `WITH created AS (
         INSERT INTO accounts (system_id, external_id, name, privilege, purpose, mfa_state, status,
                               origin, last_used_at, attributes, created_at, updated_at)
         SELECT $1, r.external_id, r.name, r.privilege,
                CASE WHEN r.privilege = 'admin' THEN 'admin' ELSE 'everyday' END,
                r.mfa_state, r.status, 'imported', r.last_used_at, r.attributes, $2, $2
           FROM account_import_rows r
          WHERE NOT EXISTS (SELECT 1 FROM accounts a
                             WHERE a.system_id = $1 AND lower(a.external_id) = r.lower_id)
         RETURNING id, lower(external_id) AS lower_id
       ), marked AS (
         INSERT INTO account_import_outcomes (lower_id, outcome, account_id)
         SELECT lower_id, 'created', id FROM created
         RETURNING 1
       )
       SELECT count(*)::int AS count FROM marked`,
      [systemId, now],
    );
    progress(`Created ${created} account(s)`);

    // When every row created an account, no row can change one, so the join is skipped.
    const updated = created < staged.rowsValid ? await updateAccounts(manager, systemId, now) : 0;
    progress(`Updated ${updated} account(s)`);

    const removal = await this.markRemoved(
      manager,
      systemId,
      staged.rejected,
      staged.rowsRead,
      options.mode,
      now,
    );
    const findings = await reconcileFindings(manager, systemId, now);
    progress(`Findings: ${findings.raised} raised or seen again, ${findings.resolved} resolved`);

    const counts = {
      rowsRead: staged.rowsRead,
      created,
      updated,
      unchanged: staged.rowsValid - created - updated,
      rejected: staged.rejected.length,
      removed: removal.removed,
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
    // PostgreSQL builds the three account lists from the staging tables.
    await this.audit.recordWithAfterQuery(
      manager,
      {
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
          rejectedRows: staged.rejected,
        },
      },
      IMPORTED_ACCOUNT_LISTS,
    );

    return {
      id,
      systemId,
      preset: options.preset,
      mode: options.mode,
      ...counts,
      removalSkipped: removal.skipped,
      findingsRaised: findings.raised,
      findingsResolved: findings.resolved,
      rows: await readRowResults(manager, staged.rejected),
    };
  }

  /**
   * In a full import, marks accounts absent from the file as removed and lists them in
   * `account_import_removed`. A rejected row that named its account keeps that account; a rejected
   * row without an id makes absence unknowable, so nothing is removed.
   */
  private async markRemoved(
    manager: EntityManager,
    systemId: string,
    rejected: RejectedRow[],
    rowsRead: number,
    mode: 'full' | 'partial',
    now: Date,
  ): Promise<{ removed: number; skipped: string | null }> {
    if (mode === 'partial') return { removed: 0, skipped: null };
    // A header-only file is far more often a failed export than a system with no accounts left.
    if (rowsRead === 0) {
      return {
        removed: 0,
        skipped: 'the file has no account rows, so absent accounts were kept',
      };
    }
    if (rejected.some((row) => row.externalId === null)) {
      return {
        removed: 0,
        skipped: 'a rejected row has no readable account id, so absent accounts were kept',
      };
    }
    const kept = rejected.map((row) => (row.externalId ?? '').toLowerCase());
    const [{ count }] = await manager.query<{ count: number }[]>(
      `WITH removed AS (
         UPDATE accounts a SET status = 'removed', removed_at = $2, updated_at = $2,
                version = version + 1
          WHERE a.system_id = $1 AND a.status <> 'removed'
            AND NOT EXISTS (SELECT 1 FROM account_import_rows r WHERE r.lower_id = lower(a.external_id))
            AND NOT (lower(a.external_id) = ANY($3::text[]))
         RETURNING a.id
       ), listed AS (
         INSERT INTO account_import_removed (id) SELECT id FROM removed RETURNING 1
       )
       SELECT count(*)::int AS count FROM listed`,
      [systemId, now, kept],
    );
    return { removed: count, skipped: null };
  }
}

/**
 * Applies the file to the accounts it names whose recorded state differs, and lists them in
 * `account_import_outcomes` with the changed fields before and after. Returns how many changed.
 */
async function updateAccounts(
  manager: EntityManager,
  systemId: string,
  now: Date,
): Promise<number> {
  // "unknown" in the file means the file does not say, so the recorded value stays. The
  // self-join on `o` returns each account's state from before the update. Accounts created by
  // this import match their rows, so they are never updated.
  const [{ count }] = await manager.query<{ count: number }[]>(
    `WITH updated AS (
       UPDATE accounts a
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
       RETURNING a.id, r.lower_id,
                 json_build_object('name', o.name, 'privilege', o.privilege,
                   'mfaState', o.mfa_state, 'status', o.status,
                   'lastUsedAt', o.last_used_at) AS before,
                 json_build_object('name', a.name, 'privilege', a.privilege,
                   'mfaState', a.mfa_state, 'status', a.status,
                   'lastUsedAt', a.last_used_at) AS after
     ), marked AS (
       INSERT INTO account_import_outcomes (lower_id, outcome, account_id, before, after)
       SELECT lower_id, 'updated', id, before, after FROM updated
       RETURNING 1
     )
     SELECT count(*)::int AS count FROM marked`,
    [systemId, now],
  );
  return count;
}

/**
 * The created, updated and removed accounts of the audit event, as one jsonb object built from the
 * staging tables, in file order (removed accounts by id).
 */
const IMPORTED_ACCOUNT_LISTS = `jsonb_build_object(
  'createdAccounts', COALESCE((
    SELECT jsonb_agg(jsonb_build_object('id', o.account_id, 'externalId', r.external_id)
                     ORDER BY r.line)
      FROM account_import_outcomes o JOIN account_import_rows r USING (lower_id)
     WHERE o.outcome = 'created'), '[]'),
  'updatedAccounts', COALESCE((
    SELECT jsonb_agg(jsonb_build_object('id', o.account_id, 'externalId', r.external_id,
                                        'before', o.before, 'after', o.after)
                     ORDER BY r.line)
      FROM account_import_outcomes o JOIN account_import_rows r USING (lower_id)
     WHERE o.outcome = 'updated'), '[]'),
  'removedAccountIds', COALESCE((
    SELECT jsonb_agg(d.id ORDER BY d.id) FROM account_import_removed d), '[]'))`;

/**
 * The findings an import can observe. Each condition is a boolean SQL expression over the account
 * `a`, with $2 the time of the import.
 */
const FINDING_CONDITIONS: Record<string, string> = (() => {
  const holdsGrant = (privilege: string): string =>
    `EXISTS (SELECT 1 FROM access_grants g WHERE g.account_id = a.id
               AND g.status IN ('approved', 'active') AND (g.ends_at IS NULL OR g.ends_at > $2)
               ${privilege})`;
  return {
    'unapproved-access': `a.status = 'active' AND NOT ${holdsGrant('')}`,
    'admin-without-mfa': `a.mfa_state = 'disabled' AND ${holdsGrant("AND g.privilege = 'admin'")}`,
    'admin-on-everyday-account': `a.privilege = 'admin' AND a.purpose = 'everyday'`,
    'provider-account-conflict': `a.status <> 'removed' AND EXISTS (
        SELECT 1 FROM accounts p WHERE lower(p.external_id) = lower(a.external_id)
           AND p.holder_type = 'provider' AND p.id <> a.id)`,
  };
})();

/**
 * Raises or resolves the findings an import can observe, for the accounts in the file, and
 * resolves those of removed accounts, in one statement. Raising evaluates every condition once
 * per account in the file; resolving evaluates only the condition of each unresolved finding. A
 * finding seen again keeps its status and first-seen time.
 */
async function reconcileFindings(
  manager: EntityManager,
  systemId: string,
  now: Date,
): Promise<{ raised: number; resolved: number }> {
  const types = Object.entries(FINDING_CONDITIONS);
  const observed = types.map(([type, condition]) => `('${type}', ${condition})`).join(',\n');
  // Accounts created by this import cannot have findings yet, because no other transaction can
  // reference them before the commit, so their findings need no conflict check.
  const observedFindings = (accounts: 'created' | 'existing'): string =>
    `SELECT t.type, a.system_id, a.id, '{"source": "account-import"}'::jsonb, $2::timestamptz,
            $2::timestamptz, 'open'
       FROM accounts a JOIN account_import_rows r ON r.lower_id = lower(a.external_id)
      CROSS JOIN LATERAL (VALUES ${observed}) AS t (type, holds)
      WHERE a.system_id = $1 AND t.holds
        AND ${accounts === 'created' ? '' : 'NOT '}EXISTS (
          SELECT 1 FROM account_import_outcomes o
           WHERE o.lower_id = r.lower_id AND o.outcome = 'created')`;
  const stillHolds = types.map(([type, condition]) => `WHEN '${type}' THEN ${condition}`);
  const [result] = await manager.query<{ raised: number; resolved: number }[]>(
    `WITH raised_new AS (
       INSERT INTO access_findings (type, system_id, account_id, details, first_seen_at,
                                    last_seen_at, status)
       ${observedFindings('created')}
       RETURNING 1
     ), raised_again AS (
       INSERT INTO access_findings (type, system_id, account_id, details, first_seen_at,
                                    last_seen_at, status)
       ${observedFindings('existing')}
       ON CONFLICT (type, system_id, account_id) DO UPDATE
         SET last_seen_at = EXCLUDED.last_seen_at,
             status = CASE WHEN access_findings.status = 'resolved' THEN 'open'
                           ELSE access_findings.status END,
             resolved_at = NULL
       RETURNING 1
     ), resolved AS (
       UPDATE access_findings f SET status = 'resolved', resolved_at = $2, version = f.version + 1
         FROM accounts a
        WHERE f.account_id = a.id AND f.type = ANY($3::text[]) AND f.status <> 'resolved'
          AND a.system_id = $1
          AND (a.id IN (SELECT d.id FROM account_import_removed d)
               OR (EXISTS (SELECT 1 FROM account_import_rows r WHERE r.lower_id = lower(a.external_id))
                   AND NOT (CASE f.type ${stillHolds.join(' ')} END)))
       RETURNING 1
     )
     SELECT ((SELECT count(*) FROM raised_new) + (SELECT count(*) FROM raised_again))::int AS raised,
            (SELECT count(*) FROM resolved)::int AS resolved`,
    [systemId, now, types.map(([type]) => type)],
  );
  return result;
}

function invalidFile(message: string, rejected: RejectedRow[]): DomainError {
  return new DomainError(400, 'ACCESS.IMPORT_INVALID', message, {
    rejectedCount: rejected.length,
    rejected: rejected.slice(0, MAX_LISTED_PROBLEMS),
  });
}

/**
 * Reads the per-row report: the staged rows with their outcome and the rejected rows, in line
 * order. Unchanged rows carry no account id.
 */
async function readRowResults(
  manager: EntityManager,
  rejected: RejectedRow[],
): Promise<RowResult[]> {
  const client = (await manager.queryRunner!.connect()) as PoolClient;
  // Arrays instead of keyed row objects, because this can be one row per line of a large file.
  const { rows } = await client.query<[number, string, RowOutcome | null, string | null]>({
    text: `SELECT r.line, r.external_id, o.outcome, o.account_id
             FROM account_import_rows r LEFT JOIN account_import_outcomes o USING (lower_id)
            ORDER BY r.line`,
    rowMode: 'array',
  });
  const rejectedRows = [...rejected].sort((a, b) => a.line - b.line);
  const results: RowResult[] = [];
  let next = 0;
  for (const [line, externalId, outcome, accountId] of rows) {
    while (next < rejectedRows.length && rejectedRows[next].line < line) {
      results.push(rejectedResult(rejectedRows[next++]));
    }
    results.push(
      outcome === null
        ? { line, externalId, outcome: 'unchanged' }
        : { line, externalId, outcome, accountId: accountId! },
    );
  }
  while (next < rejectedRows.length) results.push(rejectedResult(rejectedRows[next++]));
  return results;
}

function rejectedResult(row: RejectedRow): RowResult {
  return { line: row.line, externalId: row.externalId, outcome: 'rejected', reason: row.reason };
}
