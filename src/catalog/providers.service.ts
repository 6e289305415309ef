import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { ConflictError, NotFoundError, StaleVersionError } from '../common/errors';
import { Page, toPage } from '../common/pagination';
import { Transactions } from '../common/transactions';
import { isUniqueViolation } from '../common/unique-violation';
import { CreateProviderDto, ProviderListQuery, UpdateProviderDto } from './provider.dto';
import { Provider } from './provider.entity';

@Injectable()
export class ProvidersService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async list(query: ProviderListQuery): Promise<Page<Provider>> {
    const builder = this.dataSource.getRepository(Provider).createQueryBuilder('p');
    if (query.q) {
      builder.where('p.name ILIKE :q', { q: `%${escapeLike(query.q)}%` });
    }
    const rows = await builder
      .orderBy(`p.${query.sort}`, query.order === 'asc' ? 'ASC' : 'DESC')
      .addOrderBy('p.id', 'ASC')
      .offset(query.offset)
      .limit(query.limit + 1)
      .getMany();
    return toPage(rows, query);
  }

  async get(id: string): Promise<Provider> {
    const provider = await this.dataSource.getRepository(Provider).findOneBy({ id });
    if (!provider) throw new NotFoundError('Provider', id);
    return provider;
  }

  async create(input: CreateProviderDto): Promise<Provider> {
    return this.transactions.run(async (manager) => {
      const now = this.clock.now();
      const provider = manager.create(Provider, {
        name: input.name,
        website: input.website ?? null,
        description: input.description ?? null,
        createdAt: now,
        updatedAt: now,
        version: 1,
      });
      await this.save(manager, provider);
      await this.audit.record(manager, {
        action: 'provider.created',
        entityType: 'provider',
        entityId: provider.id,
        before: null,
        after: provider,
      });
      return provider;
    });
  }

  async update(id: string, input: UpdateProviderDto): Promise<Provider> {
    return this.transactions.run(async (manager) => {
      const provider = await lockProvider(manager, id);
      if (provider.version !== input.version) {
        throw new StaleVersionError('Provider', id, input.version, provider.version);
      }
      const before = { ...provider };
      const { version: _version, ...changes } = input;
      Object.assign(provider, changes, {
        updatedAt: this.clock.now(),
        version: provider.version + 1,
      });
      await this.save(manager, provider);
      await this.audit.record(manager, {
        action: 'provider.updated',
        entityType: 'provider',
        entityId: id,
        before,
        after: provider,
      });
      return provider;
    });
  }

  private async save(manager: EntityManager, provider: Provider): Promise<void> {
    try {
      await manager.save(provider);
    } catch (error) {
      if (isUniqueViolation(error, 'providers_name_key')) {
        throw new ConflictError(
          'PROVIDER.DUPLICATE_NAME',
          `A provider named "${provider.name}" already exists`,
          {
            field: 'name',
          },
        );
      }
      throw error;
    }
  }
}

export async function lockProvider(manager: EntityManager, id: string): Promise<Provider> {
  const provider = await manager.findOne(Provider, {
    where: { id },
    lock: { mode: 'pessimistic_write' },
  });
  if (!provider) throw new NotFoundError('Provider', id);
  return provider;
}

/** Escapes LIKE wildcards so a search for "50%" matches the text literally. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}
