import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';

import { QueryBoolean, Trim } from '../common/dto';
import { PageQuery } from '../common/pagination';

export const REVIEWER_RULES = ['holder-manager', 'system-owner'] as const;
export const UNDECIDED_ACTIONS = ['revoke', 'keep-and-flag', 'escalate-only'] as const;
export const SCOPES = ['admin', 'standard', 'all'] as const;
export type Scope = (typeof SCOPES)[number];
export const REVIEW_DECISIONS = ['certify', 'revoke'] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];
export const PRIVILEGES = ['admin', 'privileged', 'standard', 'read-only', 'unknown'] as const;

export class ReviewPolicyDto {
  @ApiProperty({
    minimum: 1,
    maximum: 3650,
    example: 90,
    description: 'Admin and privileged accounts',
  })
  @IsInt()
  @Min(1)
  @Max(3650)
  adminCadenceDays!: number;

  @ApiProperty({ minimum: 1, maximum: 3650, example: 180, description: 'Every other account' })
  @IsInt()
  @Min(1)
  @Max(3650)
  standardCadenceDays!: number;

  @ApiProperty({
    enum: REVIEWER_RULES,
    description:
      'holder-manager: the holder’s manager (the system owner for provider accounts); system-owner: the owner for every account',
  })
  @IsIn(REVIEWER_RULES)
  reviewerRule!: (typeof REVIEWER_RULES)[number];

  @ApiProperty({
    format: 'uuid',
    description: 'Reviews items whose rule gives no eligible reviewer',
  })
  @IsUUID()
  fallbackReviewerId!: string;

  @ApiProperty({ minimum: 1, maximum: 365, example: 14 })
  @IsInt()
  @Min(1)
  @Max(365)
  durationDays!: number;

  @ApiProperty({ minimum: 0, maximum: 365, example: 3 })
  @IsInt()
  @Min(0)
  @Max(365)
  graceDays!: number;

  @ApiProperty({ enum: UNDECIDED_ACTIONS })
  @IsIn(UNDECIDED_ACTIONS)
  undecidedAction!: (typeof UNDECIDED_ACTIONS)[number];

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  active?: boolean;

  @ApiPropertyOptional({ description: 'The version read, when replacing a policy' })
  @IsOptional()
  @IsInt()
  @Min(1)
  version?: number;
}

export class OpenCampaignDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  systemId!: string;

  @ApiPropertyOptional({ enum: SCOPES, default: 'all' })
  @IsOptional()
  @IsIn(SCOPES)
  scope?: Scope;
}

export class CampaignListQuery extends PageQuery {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  systemId?: string;

  @ApiPropertyOptional({ enum: ['open', 'closed'] })
  @IsOptional()
  @IsIn(['open', 'closed'])
  status?: 'open' | 'closed';
}

export class ItemFilterDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  reviewerId?: string;

  @ApiPropertyOptional({ enum: PRIVILEGES })
  @IsOptional()
  @IsIn(PRIVILEGES)
  privilege?: (typeof PRIVILEGES)[number];

  @ApiPropertyOptional({ enum: ['user', 'provider'] })
  @IsOptional()
  @IsIn(['user', 'provider'])
  holderType?: 'user' | 'provider';

  @ApiPropertyOptional({ description: 'Only items without a decision (the default for bulk)' })
  @IsOptional()
  @IsBoolean()
  undecidedOnly?: boolean;
}

export class ItemListQuery extends PageQuery {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  reviewerId?: string;

  @ApiPropertyOptional({ enum: PRIVILEGES })
  @IsOptional()
  @IsIn(PRIVILEGES)
  privilege?: (typeof PRIVILEGES)[number];

  @ApiPropertyOptional({ enum: ['user', 'provider'] })
  @IsOptional()
  @IsIn(['user', 'provider'])
  holderType?: 'user' | 'provider';

  @ApiPropertyOptional()
  @IsOptional()
  @QueryBoolean()
  @IsBoolean()
  decided?: boolean;
}

export class DecideItemDto {
  @ApiProperty({ enum: REVIEW_DECISIONS })
  @IsIn(REVIEW_DECISIONS)
  decision!: ReviewDecision;

  @ApiPropertyOptional({
    maxLength: 4000,
    description: 'Required to certify admin and provider accounts, and as the reason to revoke',
  })
  @IsOptional()
  @Trim()
  @IsString()
  @Length(1, 4000)
  justification?: string;

  @ApiProperty({ description: 'The item version read; another current version is a 409' })
  @IsInt()
  @Min(1)
  version!: number;
}

export class BulkItemDto extends DecideItemDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  itemId!: string;
}

export class BulkDecideItemsDto {
  @ApiPropertyOptional({
    type: [BulkItemDto],
    description: 'Explicit items, each with its version',
  })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @ValidateNested({ each: true })
  @Type(() => BulkItemDto)
  items?: BulkItemDto[];

  @ApiPropertyOptional({
    type: ItemFilterDto,
    description: 'Every matching item of the campaign, resolved on the server (not one page)',
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => ItemFilterDto)
  filter?: ItemFilterDto;

  @ApiPropertyOptional({ enum: REVIEW_DECISIONS, description: 'The decision for a filter' })
  @IsOptional()
  @IsIn(REVIEW_DECISIONS)
  decision?: ReviewDecision;

  @ApiPropertyOptional({ maxLength: 4000 })
  @IsOptional()
  @Trim()
  @IsString()
  @Length(1, 4000)
  justification?: string;
}

export class ReassignItemDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  reviewerId!: string;

  @ApiProperty({ maxLength: 1000 })
  @Trim()
  @IsString()
  @Length(1, 1000)
  reason!: string;

  @ApiProperty()
  @IsInt()
  @Min(1)
  version!: number;
}
