import { readFile } from 'node:fs/promises';

import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Provider } from '../catalog/provider.entity';
import { ThirdPartySystem } from '../catalog/system.entity';
import { Clock } from '../common/clock';
import { bundledKevFile } from '../common/project-root';
import { CampaignsService } from '../reviews/campaigns.service';
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
import { DemoSystemRef, seedDemoGovernance } from './demo-governance';

/** Arbitrary constant naming the seed lock, so instances starting together seed once. */
const SEED_LOCK_ID = 72_107_204;

export interface SeedResult {
  seeded: boolean;
  reason?: string;
  systems?: number;
  kevEntries?: number;
  findings?: number;
  approvedSystems?: number;
  accounts?: number;
  reviewCampaigns?: number;
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
    private readonly campaigns: CampaignsService,
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
        `Seeded the demo organisation: ${result.systems} systems (${result.approvedSystems} approved), ${result.accounts} accounts, ${result.reviewCampaigns} review campaigns, ${result.kevEntries} KEV entries, ${result.findings} findings`,
      );
    }
  }

  async seed(): Promise<SeedResult> {
    const result = await this.seedRecords();
    if (!result.seeded) return result;

    // Campaigns open through the review service after the seed commits, as a scheduled run would.
    const reviewed = await this.dataSource.query<{ system_id: string }[]>(
      `SELECT system_id FROM review_policies ORDER BY created_at, system_id`,
    );
    const today = this.clock.now().toISOString().slice(0, 10);
    let reviewCampaigns = 0;
    for (const { system_id: systemId } of reviewed) {
      if (await this.campaigns.open(systemId, 'all', 'on-demand', today)) reviewCampaigns += 1;
    }
    return { ...result, reviewCampaigns };
  }

  private async seedRecords(): Promise<SeedResult> {
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
      const systems: DemoSystemRef[] = [];
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
        systems.push({
          id: system.id,
          providerId: system.providerId,
          criticality: system.criticality,
          category: system.category,
          deploysSoftware: system.deploysSoftware,
        });
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
      const person = (email: string): string => userIds.get(email)!;
      const governance = await seedDemoGovernance(
        manager,
        this.audit,
        this.clock.now(),
        {
          admin: person('admin@demo.example'),
          requester: person('requester@demo.example'),
          owner: person(DEMO_OWNER),
          security: person('security@demo.example'),
          manager: person('manager@demo.example'),
        },
        systems,
      );
      const [{ findings }] = await manager.query<{ findings: number }[]>(
        `SELECT count(*)::int AS findings FROM vulnerability_findings`,
      );
      return {
        seeded: true,
        systems: DEMO_SYSTEMS.length,
        kevEntries: report.entries,
        findings,
        approvedSystems: governance.approved,
        accounts: governance.accounts,
      };
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
