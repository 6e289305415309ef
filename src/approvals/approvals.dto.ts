import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  IsUUID,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';

import { CRITICALITIES, SYSTEM_CATEGORIES } from '../catalog/catalog.types';
import type { Criticality, SystemCategory } from '../catalog/catalog.types';
import { QueryBoolean, Trim } from '../common/dto';
import { PageQuery } from '../common/pagination';
import { ANSWERS, EVALUATION_ITEM_KEYS } from './evaluation';
import type { Answer, EvaluationItem } from './evaluation';
import { OWNER_SLOT } from './slots';

/** Roles a policy may require among the approvers; `system-owner` is the system's own owner. */
export const POLICY_ROLES = ['security-approver', 'platform-admin', OWNER_SLOT] as const;
export const REQUEST_STATUSES = [
  'draft',
  'submitted',
  'in_review',
  'changes_requested',
  'approved',
  'reapproval_due',
  'rejected',
  'withdrawn',
] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];
export const DECISIONS = ['approve', 'reject', 'request-changes'] as const;
export type Decision = (typeof DECISIONS)[number];

export class CreatePolicyDto {
  @ApiProperty({ enum: CRITICALITIES })
  @IsIn(CRITICALITIES)
  criticality!: Criticality;

  @ApiPropertyOptional({
    enum: SYSTEM_CATEGORIES,
    description: 'Only for systems of this category; without it, the policy covers the criticality',
  })
  @IsOptional()
  @IsIn(SYSTEM_CATEGORIES)
  category?: SystemCategory;

  @ApiProperty({ minimum: 1, maximum: 10 })
  @IsInt()
  @Min(1)
  @Max(10)
  requiredApprovals!: number;

  @ApiProperty({
    enum: POLICY_ROLES,
    isArray: true,
    description: 'Roles that must be among the approvers; a role listed twice needs two holders',
  })
  @IsArray()
  @ArrayMaxSize(10)
  @IsIn(POLICY_ROLES, { each: true })
  requiredRoles!: string[];

  @ApiProperty({ minimum: 1, maximum: 3650, description: 'How long an approval is valid' })
  @IsInt()
  @Min(1)
  @Max(3650)
  validityDays!: number;

  @ApiProperty({
    minimum: 0,
    maximum: 365,
    description: 'Re-approval is due this long before expiry',
  })
  @IsInt()
  @Min(0)
  @Max(365)
  reapprovalNoticeDays!: number;

  @ApiProperty({ enum: EVALUATION_ITEM_KEYS, isArray: true })
  @IsArray()
  @ArrayMaxSize(EVALUATION_ITEM_KEYS.length)
  @IsIn(EVALUATION_ITEM_KEYS, { each: true })
  mandatoryItems!: EvaluationItem[];

  @ApiProperty({ minimum: 1, maximum: 1000, description: 'Admin cap of systems with no own cap' })
  @IsInt()
  @Min(1)
  @Max(1000)
  defaultMaxAdmins!: number;
}

export class PolicyListQuery {
  @ApiPropertyOptional({ description: 'Include superseded versions' })
  @IsOptional()
  @QueryBoolean()
  @IsBoolean()
  history?: boolean;
}

export class CreateRequestDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  systemId!: string;

  @ApiProperty({ maxLength: 4000, description: 'Why the organisation needs this tool' })
  @Trim()
  @IsString()
  @Length(1, 4000)
  justification!: string;

  @ApiPropertyOptional({
    maxLength: 253,
    description: 'Host that keeps the trusted signing certificates (systems that deploy software)',
  })
  @IsOptional()
  @Trim()
  @IsString()
  @Length(1, 253)
  signingHost?: string;

  @ApiPropertyOptional({
    maxLength: 2000,
    description: 'How remote access to the signing host is restricted',
  })
  @IsOptional()
  @Trim()
  @IsString()
  @Length(1, 2000)
  signingHostRemoteAccess?: string;
}

export class UpdateRequestDto {
  @ApiProperty({ description: 'The version read; a different current version is a 409' })
  @IsInt()
  @Min(1)
  version!: number;

  @ApiPropertyOptional({ maxLength: 4000 })
  @IsOptional()
  @Trim()
  @IsString()
  @Length(1, 4000)
  justification?: string;

  @ApiPropertyOptional({ maxLength: 253 })
  @IsOptional()
  @Trim()
  @IsString()
  @Length(1, 253)
  signingHost?: string;

  @ApiPropertyOptional({ maxLength: 2000 })
  @IsOptional()
  @Trim()
  @IsString()
  @Length(1, 2000)
  signingHostRemoteAccess?: string;
}

export class AnswerDto {
  @ApiProperty({ enum: ANSWERS })
  @IsIn(ANSWERS)
  answer!: Answer;

  @ApiPropertyOptional({ maxLength: 4000 })
  @IsOptional()
  @Trim()
  @IsString()
  @MaxLength(4000)
  evidenceText?: string;

  @ApiPropertyOptional({ maxLength: 2000, example: 'https://trust.example.com/soc2-2026.pdf' })
  @IsOptional()
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true })
  @MaxLength(2000)
  evidenceUrl?: string;

  @ApiPropertyOptional({ description: 'SHA-256 of a file uploaded to POST /api/evidence' })
  @IsOptional()
  @Matches(/^[0-9a-f]{64}$/, { message: 'evidenceSha256 must be 64 lowercase hexadecimal digits' })
  evidenceSha256?: string;

  @ApiPropertyOptional({
    description:
      'Item facts, e.g. { "reportType": "SOC 2 Type II", "reportDate": "2026-05-31" } or { "patchCadence": "monthly" }',
  })
  @IsOptional()
  @IsObject()
  details?: Record<string, string>;

  @ApiPropertyOptional({
    description: 'The request version read; editing in review resets approvals',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  version?: number;
}

export class DecideDto {
  @ApiProperty({ enum: DECISIONS })
  @IsIn(DECISIONS)
  decision!: Decision;

  @ApiPropertyOptional({ maxLength: 4000 })
  @IsOptional()
  @Trim()
  @IsString()
  @MaxLength(4000)
  comment?: string;
}

export class BulkDecisionItemDto extends DecideDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  requestId!: string;
}

export class BulkDecideDto {
  @ApiProperty({ type: [BulkDecisionItemDto] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(200)
  @ValidateNested({ each: true })
  @Type(() => BulkDecisionItemDto)
  items!: BulkDecisionItemDto[];
}

export class OverrideDto {
  @ApiProperty({ minLength: 10, maxLength: 4000, description: 'Why the policy is set aside' })
  @Trim()
  @IsString()
  @Length(10, 4000)
  reason!: string;
}

export class RequestListQuery extends PageQuery {
  @ApiPropertyOptional({ enum: REQUEST_STATUSES })
  @IsOptional()
  @IsIn(REQUEST_STATUSES)
  status?: RequestStatus;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  systemId?: string;

  @ApiPropertyOptional({
    description:
      'Only requests in review that the caller did not file and has not decided this round',
  })
  @IsOptional()
  @QueryBoolean()
  @IsBoolean()
  awaitingMe?: boolean;
}

export class VersionDto {
  @ApiPropertyOptional({ description: 'The version read; a different current version is a 409' })
  @IsOptional()
  @IsInt()
  @Min(1)
  version?: number;
}
