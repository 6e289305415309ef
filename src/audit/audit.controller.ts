import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDate, IsOptional, IsString, MaxLength } from 'class-validator';
import { DataSource } from 'typeorm';

import { RequirePermission } from '../common/access';
import { Page, PageQuery, toPage } from '../common/pagination';
import { AuditEvent } from './audit-event.entity';
import { AuditService, ChainVerification } from './audit.service';

export class AuditQuery extends PageQuery {
  @ApiPropertyOptional({ example: 'system' })
  @IsOptional()
  @IsString()
  @MaxLength(60)
  entityType?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(200)
  entityId?: string;

  @ApiPropertyOptional({ example: 'system.updated' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  action?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(200)
  actor?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Events at or after this time' })
  @IsOptional()
  @Type(() => Date)
  @IsDate()
  from?: Date;

  @ApiPropertyOptional({ format: 'date-time', description: 'Events before this time' })
  @IsOptional()
  @Type(() => Date)
  @IsDate()
  to?: Date;
}

@ApiTags('audit')
@Controller('audit')
export class AuditController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Get()
  @RequirePermission('audit.read')
  @ApiOperation({
    summary: 'List audit events, oldest first, filtered by entity, actor, action and time',
  })
  async list(@Query() query: AuditQuery): Promise<Page<AuditEvent>> {
    const builder = this.dataSource.getRepository(AuditEvent).createQueryBuilder('e');
    if (query.entityType)
      builder.andWhere('e.entity_type = :entityType', { entityType: query.entityType });
    if (query.entityId) builder.andWhere('e.entity_id = :entityId', { entityId: query.entityId });
    if (query.action) builder.andWhere('e.action = :action', { action: query.action });
    if (query.actor) builder.andWhere('e.actor = :actor', { actor: query.actor });
    if (query.from) builder.andWhere('e.occurred_at >= :from', { from: query.from });
    if (query.to) builder.andWhere('e.occurred_at < :to', { to: query.to });
    const rows = await builder
      .orderBy('e.seq', query.order === 'asc' ? 'ASC' : 'DESC')
      .offset(query.offset)
      .limit(query.limit + 1)
      .getMany();
    // Reading the trail is itself recorded, with the filters used, so an auditor's access shows.
    await this.dataSource.transaction((manager) =>
      this.audit.record(manager, {
        action: 'audit.read',
        entityType: 'audit_trail',
        entityId: 'audit_events',
        before: null,
        after: { filters: { ...query }, returned: Math.min(rows.length, query.limit) },
      }),
    );
    return toPage(rows, query);
  }

  @Get('verify')
  @RequirePermission('audit.read')
  @ApiOperation({ summary: 'Recompute the hash chain and report the first broken event' })
  verify(): Promise<ChainVerification> {
    return this.audit.verify();
  }
}
