import { Injectable, OnModuleInit } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { escapeLike } from '../catalog/providers.service';
import { SystemHooks } from '../catalog/system-hooks';
import { Clock } from '../common/clock';
import { ConflictError, NotFoundError } from '../common/errors';
import { Page, toPage } from '../common/pagination';
import { returnedRows, Transactions } from '../common/transactions';
import { isUniqueViolation } from '../common/unique-violation';
import { CreateAliasDto, KevEntryQuery } from './kev.dto';
import { MatchingService } from './matching.service';

const ENTRY_COLUMNS = `
  cve_id AS "cveId", vendor_project AS "vendorProject", product, vulnerability_name AS "vulnerabilityName",
  to_char(date_added, 'YYYY-MM-DD') AS "dateAdded", short_description AS "shortDescription",
  required_action AS "requiredAction", to_char(due_date, 'YYYY-MM-DD') AS "dueDate",
  known_ransomware_use AS "knownRansomwareUse", notes, cwes, first_seen_at AS "firstSeenAt",
  updated_at AS "updatedAt", withdrawn_at AS "withdrawnAt"`;

const ALIAS_COLUMNS = `
  id, provider_name AS "providerName", product_name AS "productName",
  kev_vendor_project AS "kevVendorProject", kev_product AS "kevProduct", reason, created_at AS "createdAt"`;

export interface AliasView {
  id: string;
  providerName: string;
  productName: string;
  kevVendorProject: string;
  kevProduct: string;
  reason: string;
  createdAt: Date;
}

/** Reads the stored KEV catalog and keeps product aliases; re-matches systems when either changes. */
@Injectable()
export class KevCatalogService implements OnModuleInit {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly matching: MatchingService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly systemHooks: SystemHooks,
  ) {}

  onModuleInit(): void {
    this.systemHooks.register(async (manager, system) => {
      await this.matching.pruneStale(manager, system.id);
      await this.matching.matchNew(manager, system.id);
    });
  }

  async listEntries(query: KevEntryQuery): Promise<Page<unknown>> {
    const conditions: string[] = [];
    const parameters: unknown[] = [];
    if (!query.includeWithdrawn) conditions.push('withdrawn_at IS NULL');
    if (query.knownRansomwareUse !== undefined) {
      parameters.push(query.knownRansomwareUse);
      conditions.push(`known_ransomware_use = $${parameters.length}`);
    }
    if (query.q) {
      parameters.push(`%${escapeLike(query.q)}%`);
      const p = `$${parameters.length}`;
      conditions.push(
        `(cve_id ILIKE ${p} OR vendor_project ILIKE ${p} OR product ILIKE ${p} OR vulnerability_name ILIKE ${p})`,
      );
    }
    parameters.push(query.limit + 1, query.offset);
    const rows = await this.dataSource.query<unknown[]>(
      `SELECT ${ENTRY_COLUMNS} FROM kev_entries
        ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
        ORDER BY date_added ${query.order === 'asc' ? 'ASC' : 'DESC'}, cve_id
        LIMIT $${parameters.length - 1} OFFSET $${parameters.length}`,
      parameters,
    );
    return toPage(rows, query);
  }

  async getEntry(cveId: string): Promise<unknown> {
    const [row] = await this.dataSource.query<unknown[]>(
      `SELECT ${ENTRY_COLUMNS} FROM kev_entries WHERE cve_id = upper($1)`,
      [cveId],
    );
    if (!row) throw new NotFoundError('KEV entry', cveId);
    return row;
  }

  listAliases(): Promise<AliasView[]> {
    return this.dataSource.query<AliasView[]>(
      `SELECT ${ALIAS_COLUMNS} FROM product_aliases ORDER BY provider_key, product_key, kev_vendor_key, kev_product_key`,
    );
  }

  async createAlias(input: CreateAliasDto, manager?: EntityManager): Promise<AliasView> {
    const work = async (tx: EntityManager): Promise<AliasView> => {
      let alias: AliasView;
      try {
        [alias] = await tx.query<AliasView[]>(
          `INSERT INTO product_aliases (provider_name, product_name, kev_vendor_project, kev_product, reason, created_at)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${ALIAS_COLUMNS}`,
          [
            input.providerName,
            input.productName,
            input.kevVendorProject,
            input.kevProduct,
            input.reason,
            this.clock.now(),
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error, 'product_aliases_key')) {
          throw new ConflictError(
            'ALIAS.DUPLICATE',
            'This alias already exists (names are compared after normalisation)',
          );
        }
        throw error;
      }
      await this.audit.record(tx, {
        action: 'alias.created',
        entityType: 'product_alias',
        entityId: alias.id,
        before: null,
        after: alias,
      });
      await this.matching.matchNew(tx);
      return alias;
    };
    return manager ? work(manager) : this.transactions.run(work);
  }

  /** Deletes an alias; pending findings that only it produced are removed, decided ones stay. */
  async deleteAlias(id: string): Promise<void> {
    await this.transactions.run(async (manager) => {
      const [alias] = returnedRows<AliasView>(
        await manager.query(
          `DELETE FROM product_aliases WHERE id = $1 RETURNING ${ALIAS_COLUMNS}`,
          [id],
        ),
      );
      if (!alias) throw new NotFoundError('Alias', id);
      await this.audit.record(manager, {
        action: 'alias.deleted',
        entityType: 'product_alias',
        entityId: id,
        before: alias,
        after: null,
      });
      const systems = await manager.query<{ id: string }[]>(
        `SELECT s.id FROM systems s JOIN providers p ON p.id = s.provider_id
          WHERE p.match_key = match_key($1) AND s.product_key = match_key($2)`,
        [alias.providerName, alias.productName],
      );
      for (const system of systems) {
        await this.matching.pruneStale(manager, system.id);
      }
    });
  }
}
