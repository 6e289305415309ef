import { readFile } from 'node:fs/promises';

import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Provider } from '../catalog/provider.entity';
import { ThirdPartySystem } from '../catalog/system.entity';
import { Clock } from '../common/clock';
import { bundledKevFile } from '../common/project-root';
import { Transactions } from '../common/transactions';
import { SETTINGS } from '../config/runtime';
import { schemaIsCurrent } from '../database/data-source';
import type { Settings } from '../config/settings';
import { KevCatalogService } from '../vulnerabilities/kev-catalog.service';
import { KevImportService } from '../vulnerabilities/kev-import.service';
import { UsersService } from '../identity/users.service';
import {
  DEMO_ALIASES,
  DEMO_OWNER,
  DEMO_PROVIDERS,
  DEMO_SYSTEMS,
  DEMO_USERS,
} from './demo-organisation';

/** Arbitrary constant naming the seed lock, so instances starting together seed once. */
const SEED_LOCK_ID = 72_107_204;

export interface SeedResult {
  seeded: boolean;
  reason?: string;
  systems?: number;
  kevEntries?: number;
  findings?: number;
}

/**
 * Seeds the demo organisation and the bundled KEV snapshot on an empty database at start-up
 * (SEED_DEMO=false skips it). A database with any user, provider or KEV entry is left alone.
 */
@Injectable()
export class DemoSeeder implements OnApplicationBootstrap {
  private readonly logger = new Logger('DemoSeed');

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly kevImports: KevImportService,
    private readonly kevCatalog: KevCatalogService,
    private readonly clock: Clock,
    private readonly users: UsersService,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.settings.seedDemo) return;
    if (!(await schemaIsCurrent(this.dataSource))) {
      this.logger.warn(
        'Migrations are pending; the demo organisation is seeded after they are applied',
      );
      return;
    }
    const result = await this.seed();
    if (result.seeded) {
      this.logger.log(
        `Seeded the demo organisation: ${result.systems} systems, ${result.kevEntries} KEV entries, ${result.findings} findings`,
      );
    }
  }

  async seed(): Promise<SeedResult> {
    const catalog = await readFile(bundledKevFile(), 'utf8');
    return this.transactions.run(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [SEED_LOCK_ID]);
      const [{ used }] = await manager.query<{ used: boolean }[]>(
        `SELECT EXISTS (SELECT 1 FROM providers) OR EXISTS (SELECT 1 FROM kev_entries)
                OR EXISTS (SELECT 1 FROM users) AS used`,
      );
      if (used) return { seeded: false, reason: 'the database is not empty' };

      const userIds = new Map<string, string>();
      for (const demo of DEMO_USERS) {
        const user = await this.users.create(
          {
            email: demo.email,
            name: demo.name,
            password: demo.password,
            roles: demo.roles,
            managerId: demo.manager ? userIds.get(demo.manager) : undefined,
          },
          null,
          manager,
        );
        userIds.set(demo.email, user.id);
      }

      const providerIds = await this.createProviders(manager);
      for (const demo of DEMO_SYSTEMS) {
        const now = this.clock.now();
        const { provider, ...fields } = demo;
        const system = manager.create(ThirdPartySystem, {
          ...fields,
          providerId: providerIds.get(provider)!,
          ownerId: userIds.get(DEMO_OWNER)!,
          lifecycleStatus: 'active',
          retiredAt: null,
          createdAt: now,
          updatedAt: now,
          version: 1,
        });
        await manager.save(system);
        await this.audit.record(manager, {
          action: 'system.created',
          entityType: 'system',
          entityId: system.id,
          before: null,
          after: system,
        });
      }
      for (const alias of DEMO_ALIASES) {
        await this.kevCatalog.createAlias(alias, manager);
      }
      const report = await this.kevImports.importWithin(
        manager,
        catalog,
        'bundled snapshot (data/kev)',
      );
      const [{ findings }] = await manager.query<{ findings: number }[]>(
        `SELECT count(*)::int AS findings FROM vulnerability_findings`,
      );
      return { seeded: true, systems: DEMO_SYSTEMS.length, kevEntries: report.entries, findings };
    });
  }

  private async createProviders(manager: EntityManager): Promise<Map<string, string>> {
    const ids = new Map<string, string>();
    for (const demo of DEMO_PROVIDERS) {
      const now = this.clock.now();
      const provider = manager.create(Provider, {
        name: demo.name,
        website: demo.website,
        description: null,
        createdAt: now,
        updatedAt: now,
        version: 1,
      });
      await manager.save(provider);
      await this.audit.record(manager, {
        action: 'provider.created',
        entityType: 'provider',
        entityId: provider.id,
        before: null,
        after: provider,
      });
      ids.set(demo.name, provider.id);
    }
    return ids;
  }
}
