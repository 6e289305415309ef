import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { ConflictError, DomainError, NotFoundError, StaleVersionError } from '../common/errors';
import { assertMayActOnSystem } from '../common/ownership';
import { Page, toPage } from '../common/pagination';
import { Transactions } from '../common/transactions';
import { requireUser } from '../identity/users.service';
import { isUniqueViolation } from '../common/unique-violation';
import { Provider } from './provider.entity';
import { escapeLike } from './providers.service';
import { SystemHooks } from './system-hooks';
import { CreateSystemDto, RetireSystemDto, SystemListQuery, UpdateSystemDto } from './system.dto';
import { ThirdPartySystem } from './system.entity';

/** Ranks criticality so an ascending sort lists the most critical systems first. */
const CRITICALITY_RANK = `array_position(ARRAY['critical','high','medium','low']::varchar[], s.criticality)`;

@Injectable()
export class SystemsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly hooks: SystemHooks,
  ) {}

  async list(query: SystemListQuery): Promise<Page<ThirdPartySystem>> {
    const builder = this.dataSource.getRepository(ThirdPartySystem).createQueryBuilder('s');
    if (query.providerId)
      builder.andWhere('s.provider_id = :providerId', { providerId: query.providerId });
    if (query.category) builder.andWhere('s.category = :category', { category: query.category });
    if (query.criticality)
      builder.andWhere('s.criticality = :criticality', { criticality: query.criticality });
    if (query.lifecycleStatus) {
      builder.andWhere('s.lifecycle_status = :status', { status: query.lifecycleStatus });
    }
    if (query.q) {
      builder.andWhere('(s.name ILIKE :q OR s.product ILIKE :q)', {
        q: `%${escapeLike(query.q)}%`,
      });
    }
    const direction = query.order === 'asc' ? 'ASC' : 'DESC';
    if (query.sort === 'criticality') {
      builder
        .addSelect(CRITICALITY_RANK, 'criticality_rank')
        .orderBy('criticality_rank', direction);
    } else {
      builder.orderBy(`s.${query.sort}`, direction);
    }
    const rows = await builder
      .addOrderBy('s.id', 'ASC')
      .offset(query.offset)
      .limit(query.limit + 1)
      .getMany();
    return toPage(rows, query);
  }

  async get(id: string): Promise<ThirdPartySystem> {
    const system = await this.dataSource.getRepository(ThirdPartySystem).findOneBy({ id });
    if (!system) throw new NotFoundError('System', id);
    return system;
  }

  async create(input: CreateSystemDto): Promise<ThirdPartySystem> {
    return this.transactions.run(async (manager) => {
      // A shared lock keeps the provider from changing or vanishing until this insert commits.
      const provider = await manager.findOne(Provider, {
        where: { id: input.providerId },
        lock: { mode: 'pessimistic_read' },
      });
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

      if (input.ownerId) await requireUser(manager, input.ownerId, 'ownerId');
      const now = this.clock.now();
      const system = manager.create(ThirdPartySystem, {
        providerId: input.providerId,
        name: input.name,
        product: input.product,
        productVersion: input.productVersion ?? null,
        category: input.category,
        criticality: input.criticality,
        ownerId: input.ownerId ?? null,
        ownerEmail: input.ownerEmail?.toLowerCase() ?? null,
        hosts: (input.hosts ?? []).map((host) => ({
          ...host,
          hostname: host.hostname.toLowerCase(),
        })),
        networkZone: input.networkZone ?? null,
        deploysSoftware: input.deploysSoftware ?? false,
        lifecycleStatus: input.lifecycleStatus ?? 'active',
        retiredAt: null,
        createdAt: now,
        updatedAt: now,
        version: 1,
      });
      await this.save(manager, system);
      await this.hooks.run(manager, system);
      await this.audit.record(manager, {
        action: 'system.created',
        entityType: 'system',
        entityId: system.id,
        before: null,
        after: system,
      });
      return system;
    });
  }

  async update(id: string, input: UpdateSystemDto): Promise<ThirdPartySystem> {
    return this.transactions.run(async (manager) => {
      const system = await this.lockForChange(manager, id, input.version);
      const before = { ...system };
      const { version: _version, ...changes } = input;
      if (changes.ownerId !== undefined) {
        // Handing a system to another owner is the platform admin's call, not the owner's.
        assertMayActOnSystem(id, null, ['platform-admin']);
        await requireUser(manager, changes.ownerId, 'ownerId');
      }
      if (changes.ownerEmail !== undefined) changes.ownerEmail = changes.ownerEmail.toLowerCase();
      if (changes.hosts !== undefined) {
        changes.hosts = changes.hosts.map((host) => ({
          ...host,
          hostname: host.hostname.toLowerCase(),
        }));
      }
      Object.assign(system, changes, { updatedAt: this.clock.now(), version: system.version + 1 });
      await this.save(manager, system);
      await this.hooks.run(manager, system);
      await this.audit.record(manager, {
        action: 'system.updated',
        entityType: 'system',
        entityId: id,
        before,
        after: system,
      });
      return system;
    });
  }

  async retire(id: string, input: RetireSystemDto): Promise<ThirdPartySystem> {
    return this.transactions.run(async (manager) => {
      const system = await this.lockForChange(manager, id, input.version);
      const before = { ...system };
      const now = this.clock.now();
      Object.assign(system, {
        lifecycleStatus: 'retired',
        retiredAt: now,
        updatedAt: now,
        version: system.version + 1,
      });
      await manager.save(system);
      await this.audit.record(manager, {
        action: 'system.retired',
        entityType: 'system',
        entityId: id,
        before,
        after: { ...system, retirementReason: input.reason },
      });
      return system;
    });
  }

  /** Locks the row and checks the caller's version; a retired system accepts no further change. */
  private async lockForChange(
    manager: EntityManager,
    id: string,
    version: number,
  ): Promise<ThirdPartySystem> {
    const system = await manager.findOne(ThirdPartySystem, {
      where: { id },
      lock: { mode: 'pessimistic_write' },
    });
    if (!system) throw new NotFoundError('System', id);
    assertMayActOnSystem(id, system.ownerId, ['platform-admin']);
    if (system.version !== version)
      throw new StaleVersionError('System', id, version, system.version);
    if (system.lifecycleStatus === 'retired') {
      throw new ConflictError(
        'SYSTEM.RETIRED',
        `System ${id} is retired and can no longer change`,
        { id },
      );
    }
    return system;
  }

  private async save(manager: EntityManager, system: ThirdPartySystem): Promise<void> {
    try {
      await manager.save(system);
    } catch (error) {
      if (isUniqueViolation(error, 'systems_provider_name_key')) {
        throw new ConflictError(
          'SYSTEM.DUPLICATE_NAME',
          `This provider already has a system named "${system.name}" (names are compared ignoring case)`,
          { field: 'name' },
        );
      }
      throw error;
    }
  }
}
