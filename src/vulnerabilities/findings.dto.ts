import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsBoolean,
  IsDateString,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  MaxLength,
  Min,
} from 'class-validator';

import { CRITICALITIES } from '../catalog/catalog.types';
import type { Criticality } from '../catalog/catalog.types';
import { QueryBoolean, Trim } from '../common/dto';
import { PageQuery } from '../common/pagination';

export const FINDING_STATUSES = ['open', 'overdue', 'fixed', 'dismissed', 'withdrawn'] as const;
export type FindingStatus = (typeof FINDING_STATUSES)[number];
export const MATCH_STATES = ['pending', 'confirmed', 'dismissed'] as const;

export class FindingListQuery extends PageQuery {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  systemId?: string;

  @ApiPropertyOptional({
    enum: FINDING_STATUSES,
    description: 'Computed at read time from the clock',
  })
  @IsOptional()
  @IsIn(FINDING_STATUSES)
  status?: FindingStatus;

  @ApiPropertyOptional({ enum: MATCH_STATES })
  @IsOptional()
  @IsIn(MATCH_STATES)
  matchState?: (typeof MATCH_STATES)[number];

  @ApiPropertyOptional({ enum: ['kev', 'advisory'] })
  @IsOptional()
  @IsIn(['kev', 'advisory'])
  source?: 'kev' | 'advisory';

  @ApiPropertyOptional({ type: Boolean })
  @IsOptional()
  @QueryBoolean()
  @IsBoolean()
  knownRansomwareUse?: boolean;

  @ApiPropertyOptional({ example: 'CVE-2024-1709' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  vulnerabilityId?: string;

  @ApiPropertyOptional({ enum: ['dueAt', 'firstSeenAt', 'vulnerabilityId'], default: 'dueAt' })
  @IsOptional()
  @IsIn(['dueAt', 'firstSeenAt', 'vulnerabilityId'])
  sort: 'dueAt' | 'firstSeenAt' | 'vulnerabilityId' = 'dueAt';
}

export class SystemFindingQuery extends FindingListQuery {}

class VersionedDecision {
  @ApiProperty({ description: 'The version you read; a stale version is rejected with 409' })
  @IsInt()
  @Min(1)
  version!: number;
}

export class ConfirmFindingDto extends VersionedDecision {
  @ApiPropertyOptional({ maxLength: 1000 })
  @IsOptional()
  @Trim()
  @IsString()
  @Length(1, 1000)
  reason?: string;
}

export class DismissFindingDto extends VersionedDecision {
  @ApiProperty({
    example: 'Product is the on-premises edition; this entry covers the cloud edition only',
  })
  @Trim()
  @IsString()
  @Length(3, 1000)
  reason!: string;
}

export class FixFindingDto extends VersionedDecision {
  @ApiProperty({ example: '23.9.8', description: 'Version that contains the fix' })
  @Trim()
  @IsString()
  @Length(1, 100)
  fixedVersion!: string;
}

export class CreateAdvisoryDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  systemId!: string;

  @ApiProperty({
    example: 'CVE-2025-0001 or VENDOR-SA-2025-17',
    description: 'CVE id or provider advisory id',
  })
  @Trim()
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._:/-]{1,99}$/, {
    message: 'advisoryId must be 2-100 letters, digits or . _ : / - (e.g. CVE-2025-0001)',
  })
  advisoryId!: string;

  @ApiProperty({ example: 'Remote code execution in the web console' })
  @Trim()
  @IsString()
  @Length(1, 500)
  title!: string;

  @ApiProperty({ enum: CRITICALITIES })
  @IsIn(CRITICALITIES)
  severity!: Criticality;

  @ApiPropertyOptional({
    example: '2026-12-31',
    description: "The advisory's own due date, shown beside the SLA",
  })
  @IsOptional()
  @IsDateString({ strict: true })
  @Matches(/^\d{4}-\d{2}-\d{2}$/, { message: 'dueDate must be a date YYYY-MM-DD' })
  dueDate?: string;

  @ApiPropertyOptional({ default: false })
  @IsOptional()
  @IsBoolean()
  knownRansomwareUse?: boolean;
}
