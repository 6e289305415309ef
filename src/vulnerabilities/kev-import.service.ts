import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { ConflictError, DomainError } from '../common/errors';
import { Page, PageQuery, toPage } from '../common/pagination';
import { returnedRows, Transactions } from '../common/transactions';
import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import {
  CatalogFormatError,
  entryContentHash,
  KevEntryInput,
  parseCatalog,
  ParsedCatalog,
} from './kev-catalog';
import { MatchingService } from './matching.service';

export interface ImportReport {
  id: string;
  source: string;
  format: 'json' | 'csv';
  catalogVersion: string | null;
  entries: number;
  added: number;
  updated: number;
  withdrawn: number;
  unchanged: number;
  newFindings: number;
  ignoredColumns: string[];
}

export interface ImportOptions {
  /** Accept a catalog that would withdraw more than the safety fraction of active entries. */
  allowMassWithdrawal?: boolean;
  /** Called with a short line per step, for the operator command's progress output. */
  progress?: (message: string) => void;
}

/** Arbitrary constant naming the KEV import lock among PostgreSQL advisory locks. */
const IMPORT_LOCK_ID = 72_107_203;
/** Rows per INSERT when staging the incoming catalog. */
const BATCH_SIZE = 5000;
/**
 * A newer catalog that drops more than this fraction of the active entries is more likely a
 * truncated download than a real withdrawal, so it is rejected unless explicitly allowed.
 */
const MAX_WITHDRAWN_FRACTION = 0.2;

/**
 * Imports the CISA KEV catalog. Parsing and validation finish before anything is written; the
 * catalog change, new findings, the import record and its audit event then commit together.
 */
@Injectable()
export class KevImportService {
  private readonly logger = new Logger('KevImport');

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly matching: MatchingService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  async importContent(
    content: string,
    source: string,
    options: ImportOptions = {},
  ): Promise<ImportReport> {
    const startedAt = this.clock.now();
    const progress = options.progress ?? (() => undefined);

    let catalog: ParsedCatalog;
    try {
      catalog = parseCatalog(content);
    } catch (error) {
      if (!(error instanceof CatalogFormatError)) throw error;
      await this.recordFailure(source, startedAt, error.message, error.problems);
      throw new DomainError(
        400,
        error.notKev ? 'KEV.NOT_A_CATALOG' : 'KEV.INVALID_CATALOG',
        `${error.message}; the stored catalog is unchanged`,
        { problems: error.problems },
      );
    }
    progress(`Parsed ${catalog.entries.length} entries (${catalog.format})`);

    try {
      const report = await this.transactions.run((manager) =>
        this.apply(manager, catalog, source, startedAt, options),
      );
      this.logger.log(
        {
          importId: report.id,
          added: report.added,
          updated: report.updated,
          withdrawn: report.withdrawn,
        },
        `KEV import from ${source} finished`,
      );
      return report;
    } catch (error) {
      if (error instanceof DomainError) {
        await this.recordFailure(source, startedAt, error.message, []);
      }
      throw error;
    }
  }

  /**
   * Parses and applies a catalog inside the caller's transaction, so the demo organisation and its
   * catalog commit together. A malformed file throws before any write.
   */
  async importWithin(
    manager: EntityManager,
    content: string,
    source: string,
  ): Promise<ImportReport> {
    const startedAt = this.clock.now();
    return this.apply(manager, parseCatalog(content), source, startedAt, {});
  }

  /** Downloads a catalog over HTTP(S) with a time and size limit, then imports it. */
  async importUrl(url: string, options: ImportOptions = {}): Promise<ImportReport> {
    const source = redactUrl(url);
    let content: string;
    try {
      content = await this.download(url);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      await this.recordFailure(source, this.clock.now(), `Download failed: ${reason}`, []);
      if (error instanceof DomainError) throw error;
      throw new DomainError(
        502,
        'KEV.DOWNLOAD_FAILED',
        `Downloading the KEV catalog from ${source} failed: ${reason}; the stored catalog is unchanged`,
      );
    }
    return this.importContent(content, source, options);
  }

  private async apply(
    manager: EntityManager,
    catalog: ParsedCatalog,
    source: string,
    startedAt: Date,
    options: ImportOptions,
  ): Promise<ImportReport> {
    const progress = options.progress ?? (() => undefined);
    const now = this.clock.now();
    // Imports run one at a time, so two refreshes never interleave their withdrawals.
    await manager.query('SELECT pg_advisory_xact_lock($1)', [IMPORT_LOCK_ID]);

    // Only the incoming ids are staged, to find withdrawals. The entries go straight into
    // kev_entries in batches, inserted when new and updated only when their content changed.
    await manager.query(
      `CREATE TEMP TABLE kev_incoming (cve_id varchar(30) PRIMARY KEY) ON COMMIT DROP`,
    );
    await manager.query(`INSERT INTO kev_incoming SELECT unnest($1::text[])`, [
      catalog.entries.map((entry) => entry.cveId),
    ]);

    const [{ active, dropped }] = await manager.query<{ active: number; dropped: number }[]>(`
      SELECT count(*)::int AS active,
             count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM kev_incoming i WHERE i.cve_id = e.cve_id))::int AS dropped
        FROM kev_entries e WHERE e.withdrawn_at IS NULL`);
    if (!options.allowMassWithdrawal && active > 0 && dropped / active > MAX_WITHDRAWN_FRACTION) {
      throw new ConflictError(
        'KEV.MASS_WITHDRAWAL',
        `This catalog would withdraw ${dropped} of ${active} active entries; it looks truncated. ` +
          'Import it with allowMassWithdrawal=true if the withdrawal is real',
        { active, wouldWithdraw: dropped },
      );
    }

    const added: { cve_id: string }[] = [];
    const updated: { cve_id: string }[] = [];
    for (let start = 0; start < catalog.entries.length; start += BATCH_SIZE) {
      const written = await upsertBatch(
        manager,
        catalog.entries.slice(start, start + BATCH_SIZE),
        now,
      );
      for (const row of written) (row.inserted ? added : updated).push(row);
      progress(
        `Wrote ${Math.min(start + BATCH_SIZE, catalog.entries.length)} of ${catalog.entries.length}`,
      );
    }
    const withdrawn = returnedRows<{ cve_id: string }>(
      await manager.query(
        `UPDATE kev_entries e SET withdrawn_at = $1, updated_at = $1
        WHERE e.withdrawn_at IS NULL AND NOT EXISTS (SELECT 1 FROM kev_incoming i WHERE i.cve_id = e.cve_id)
       RETURNING e.cve_id`,
        [now],
      ),
    );
    progress(`Added ${added.length}, updated ${updated.length}, withdrew ${withdrawn.length}`);

    const newFindings = await this.matching.matchNew(manager);
    progress(`Matched ${newFindings} new finding(s)`);

    const counts = {
      entries: catalog.entries.length,
      added: added.length,
      updated: updated.length,
      withdrawn: withdrawn.length,
      unchanged: catalog.entries.length - added.length - updated.length,
    };
    const [{ id }] = await manager.query<{ id: string }[]>(
      `INSERT INTO kev_imports (source, format, catalog_version, date_released, status, entries, added, updated,
                                withdrawn, unchanged, started_at, finished_at)
       VALUES ($1, $2, $3, $4, 'succeeded', $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
      [
        source,
        catalog.format,
        catalog.catalogVersion,
        catalog.dateReleased,
        counts.entries,
        counts.added,
        counts.updated,
        counts.withdrawn,
        counts.unchanged,
        startedAt,
        this.clock.now(),
      ],
    );
    await this.audit.record(manager, {
      action: 'kev.imported',
      entityType: 'kev_import',
      entityId: id,
      before: null,
      after: {
        source,
        format: catalog.format,
        catalogVersion: catalog.catalogVersion,
        ...counts,
        addedIds: added.map((row) => row.cve_id),
        updatedIds: updated.map((row) => row.cve_id),
        withdrawnIds: withdrawn.map((row) => row.cve_id),
      },
    });

    return {
      id,
      source,
      format: catalog.format,
      catalogVersion: catalog.catalogVersion,
      ...counts,
      newFindings,
      ignoredColumns: catalog.ignoredColumns,
    };
  }

  /** A failed import is recorded in its own transaction, so the reason stays visible in the history. */
  private async recordFailure(
    source: string,
    startedAt: Date,
    error: string,
    problems: unknown[],
  ): Promise<void> {
    await this.transactions.run(async (manager) => {
      const [{ id }] = await manager.query<{ id: string }[]>(
        `INSERT INTO kev_imports (source, status, error, problems, started_at, finished_at)
         VALUES ($1, 'failed', $2, $3, $4, $5) RETURNING id`,
        [source, error, JSON.stringify(problems), startedAt, this.clock.now()],
      );
      await this.audit.record(manager, {
        action: 'kev.import_failed',
        entityType: 'kev_import',
        entityId: id,
        before: null,
        after: { source, error },
      });
    });
    this.logger.warn({ source, error }, 'KEV import failed; the stored catalog is unchanged');
  }

  private async download(url: string): Promise<string> {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new DomainError(
        400,
        'KEV.UNSUPPORTED_URL',
        `Only http and https URLs can be imported (got ${parsed.protocol})`,
        {
          field: 'url',
        },
      );
    }
    const response = await fetch(url, { signal: AbortSignal.timeout(60_000), redirect: 'follow' });
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
    const declared = Number(response.headers.get('content-length') ?? '0');
    if (declared > this.settings.kevMaxBytes) {
      throw new Error(
        `the file is ${declared} bytes, over KEV_MAX_BYTES (${this.settings.kevMaxBytes})`,
      );
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body ?? []) {
      size += (chunk as Uint8Array).length;
      if (size > this.settings.kevMaxBytes) {
        throw new Error(`the file is over KEV_MAX_BYTES (${this.settings.kevMaxBytes} bytes)`);
      }
      chunks.push(Buffer.from(chunk as Uint8Array));
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** Imports history, newest first. */
  async listImports(query: PageQuery): Promise<Page<unknown>> {
    const rows = await this.dataSource.query<unknown[]>(
      `SELECT id, source, format, catalog_version AS "catalogVersion", date_released AS "dateReleased", status,
              entries, added, updated, withdrawn, unchanged, error, problems,
              started_at AS "startedAt", finished_at AS "finishedAt"
         FROM kev_imports ORDER BY started_at DESC, id LIMIT $1 OFFSET $2`,
      [query.limit + 1, query.offset],
    );
    return toPage(rows, query);
  }
}

/**
 * Inserts new entries and updates changed or withdrawn ones from one batch. Every column is one
 * argument of a single unnest, so PostgreSQL walks the arrays in step. `inserted` is true for an
 * insert (xmax = 0) and false for an update; unchanged entries return no row.
 */
async function upsertBatch(
  manager: EntityManager,
  entries: KevEntryInput[],
  now: Date,
): Promise<{ cve_id: string; inserted: boolean }[]> {
  return manager.query(
    `INSERT INTO kev_entries (cve_id, vendor_project, product, vulnerability_name, date_added, short_description,
                              required_action, due_date, known_ransomware_use, notes, cwes, content_hash,
                              first_seen_at, updated_at)
     SELECT t.cve_id, t.vendor_project, t.product, t.vulnerability_name, t.date_added, t.short_description,
            t.required_action, t.due_date, t.known_ransomware_use, t.notes, string_to_array(t.cwes, ','),
            t.content_hash, $13, $13
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::text[], $7::text[],
                   $8::date[], $9::boolean[], $10::text[], $11::text[], $12::text[])
            AS t(cve_id, vendor_project, product, vulnerability_name, date_added, short_description,
                 required_action, due_date, known_ransomware_use, notes, cwes, content_hash)
     ON CONFLICT (cve_id) DO UPDATE
        SET vendor_project = EXCLUDED.vendor_project, product = EXCLUDED.product,
            vulnerability_name = EXCLUDED.vulnerability_name, date_added = EXCLUDED.date_added,
            short_description = EXCLUDED.short_description, required_action = EXCLUDED.required_action,
            due_date = EXCLUDED.due_date, known_ransomware_use = EXCLUDED.known_ransomware_use,
            notes = EXCLUDED.notes, cwes = EXCLUDED.cwes, content_hash = EXCLUDED.content_hash,
            updated_at = EXCLUDED.updated_at, withdrawn_at = NULL
      WHERE kev_entries.content_hash <> EXCLUDED.content_hash OR kev_entries.withdrawn_at IS NOT NULL
     RETURNING cve_id, (xmax = 0) AS inserted`,
    [
      entries.map((entry) => entry.cveId),
      entries.map((entry) => entry.vendorProject),
      entries.map((entry) => entry.product),
      entries.map((entry) => entry.vulnerabilityName),
      entries.map((entry) => entry.dateAdded),
      entries.map((entry) => entry.shortDescription),
      entries.map((entry) => entry.requiredAction),
      entries.map((entry) => entry.dueDate),
      entries.map((entry) => entry.knownRansomwareUse),
      entries.map((entry) => entry.notes),
      entries.map((entry) => entry.cwes.join(',')),
      entries.map((entry) => entryContentHash(entry)),
      now,
    ],
  );
}

/** Drops user and password from a URL before it is stored or logged. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().slice(0, 500);
  } catch {
    return '(invalid URL)';
  }
}
