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

import { QueryBoolean, Trim } from '../common/dto';
import { PageQuery } from '../common/pagination';
import {
  ACCOUNT_STATUSES,
  FINDING_STATUSES,
  FINDING_TYPES,
  GRANT_STATUSES,
  GRANTABLE_PRIVILEGES,
  MFA_STATES,
  PRIVILEGES,
  PURPOSES,
  TASK_STATUSES,
} from './access.types';
import type {
  AccountStatus,
  FindingStatus,
  FindingType,
  GrantablePrivilege,
  GrantStatus,
  MfaState,
  Privilege,
  Purpose,
} from './access.types';

export class AccountListQuery extends PageQuery {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  systemId?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'User holding the account' })
  @IsOptional()
  @IsUUID()
  holderUserId?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'Provider holding the account' })
  @IsOptional()
  @IsUUID()
  providerId?: string;

  @ApiPropertyOptional({ enum: PRIVILEGES })
  @IsOptional()
  @IsIn(PRIVILEGES)
  privilege?: Privilege;

  @ApiPropertyOptional({ enum: ACCOUNT_STATUSES })
  @IsOptional()
  @IsIn(ACCOUNT_STATUSES)
  status?: AccountStatus;
}

export class CreateGrantDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  systemId!: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'The person who will hold the account' })
  @IsOptional()
  @IsUUID()
  holderUserId?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'The provider that will hold the account' })
  @IsOptional()
  @IsUUID()
  providerId?: string;

  @ApiPropertyOptional({
    format: 'uuid',
    description: 'Named user answerable for a provider account; required with providerId',
  })
  @IsOptional()
  @IsUUID()
  sponsorUserId?: string;

  @ApiProperty({ example: 'jdoe-admin', description: 'Account id on the system (login, ARN)' })
  @Trim()
  @IsString()
  @Length(1, 300)
  accountExternalId!: string;

  @ApiPropertyOptional({ example: 'J. Doe (admin)', maxLength: 300 })
  @IsOptional()
  @Trim()
  @IsString()
  @Length(1, 300)
  accountName?: string;

  @ApiProperty({ enum: GRANTABLE_PRIVILEGES })
  @IsIn(GRANTABLE_PRIVILEGES)
  privilege!: GrantablePrivilege;

  @ApiProperty({ enum: PURPOSES })
  @IsIn(PURPOSES)
  purpose!: Purpose;

  @ApiPropertyOptional({
    enum: MFA_STATES,
    default: 'unknown',
    description: 'MFA state of a new account; an existing account keeps its recorded state',
  })
  @IsOptional()
  @IsIn(MFA_STATES)
  mfa?: MfaState;

  @ApiProperty({ example: 'On-call administrator for the support desk', maxLength: 2000 })
  @Trim()
  @IsString()
  @Length(1, 2000)
  justification!: string;

  @ApiPropertyOptional({
    format: 'date-time',
    description: 'End of the access; required for provider accounts and admin grants',
  })
  @IsOptional()
  @IsDateString({ strict: true })
  endsAt?: string;
}

export class ApproveGrantDto {
  @ApiPropertyOptional({ maxLength: 2000 })
  @IsOptional()
  @Trim()
  @IsString()
  @MaxLength(2000)
  comment?: string;
}

export class DecideGrantDto {
  @ApiProperty({ example: 'No longer needed after the migration', maxLength: 2000 })
  @Trim()
  @IsString()
  @Length(1, 2000)
  reason!: string;
}

export class ProvisionGrantDto {
  @ApiProperty({
    example: 'Created in the ScreenConnect console, change CHG-1234',
    maxLength: 4000,
  })
  @Trim()
  @IsString()
  @Length(1, 4000)
  evidence!: string;

  @ApiPropertyOptional({ enum: MFA_STATES, description: 'MFA state observed when provisioning' })
  @IsOptional()
  @IsIn(MFA_STATES)
  mfa?: MfaState;

  @ApiPropertyOptional({
    description:
      'Secret or key identifier of the account, fingerprinted with HMAC-SHA256 and then discarded',
    writeOnly: true,
  })
  @IsOptional()
  @IsString()
  @Length(1, 4096)
  credentialSecret?: string;

  @ApiPropertyOptional({
    description: 'Set when the credential cannot be fingerprinted (e.g. only a hash is known)',
  })
  @IsOptional()
  @IsBoolean()
  credentialCannotBeChecked?: boolean;
}

export class RecordCredentialDto {
  @ApiPropertyOptional({
    description:
      'Secret or key identifier of the account, fingerprinted with HMAC-SHA256 and then discarded',
    writeOnly: true,
  })
  @IsOptional()
  @IsString()
  @Length(1, 4096)
  credentialSecret?: string;

  @ApiPropertyOptional({
    description: 'Set when the credential cannot be fingerprinted (e.g. only a hash is known)',
  })
  @IsOptional()
  @IsBoolean()
  credentialCannotBeChecked?: boolean;
}

export class TransferAccountDto {
  @ApiProperty({ format: 'uuid', description: 'Provider that holds the account from now on' })
  @IsUUID()
  providerId!: string;

  @ApiProperty({ format: 'uuid', description: 'Named user answerable for the account' })
  @IsUUID()
  sponsorUserId!: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'System the account moves to, if any' })
  @IsOptional()
  @IsUUID()
  systemId?: string;

  @ApiProperty({ example: 'VendorA support contract moved to VendorB', maxLength: 2000 })
  @Trim()
  @IsString()
  @Length(1, 2000)
  reason!: string;

  @ApiProperty({ description: 'The account version you read; a stale version gets 409' })
  @IsInt()
  @Min(1)
  version!: number;
}

export class GrantListQuery extends PageQuery {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  systemId?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  accountId?: string;

  @ApiPropertyOptional({ enum: GRANT_STATUSES, description: 'Status as of now (expiry included)' })
  @IsOptional()
  @IsIn(GRANT_STATUSES)
  status?: GrantStatus;
}

export class FindingListQuery extends PageQuery {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  systemId?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  accountId?: string;

  @ApiPropertyOptional({ enum: FINDING_TYPES })
  @IsOptional()
  @IsIn(FINDING_TYPES)
  type?: FindingType;

  @ApiPropertyOptional({
    enum: FINDING_STATUSES,
    description: 'Status as of now: an accepted risk past its expiry is open again',
  })
  @IsOptional()
  @IsIn(FINDING_STATUSES)
  status?: FindingStatus;
}

export class AcceptRiskDto {
  @ApiProperty({ example: 'Vendor fixes MFA support in the next release', maxLength: 2000 })
  @Trim()
  @IsString()
  @Length(1, 2000)
  reason!: string;

  @ApiProperty({ format: 'date-time', description: 'When the acceptance lapses; in the future' })
  @IsDateString({ strict: true })
  expiresAt!: string;

  @ApiProperty({ description: 'The finding version you read; a stale version gets 409' })
  @IsInt()
  @Min(1)
  version!: number;
}

export class TaskListQuery extends PageQuery {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  systemId?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  accountId?: string;

  @ApiPropertyOptional({ enum: TASK_STATUSES })
  @IsOptional()
  @IsIn(TASK_STATUSES)
  status?: string;

  @ApiPropertyOptional({ example: 'grant-expired' })
  @IsOptional()
  @Matches(/^[a-z][a-z0-9-]{0,39}$/)
  trigger?: string;
}

export const IMPORT_PRESETS = ['aws-iam-credential-report', 'generic'] as const;
export type ImportPreset = (typeof IMPORT_PRESETS)[number];

export class AccountImportQuery {
  @ApiProperty({ enum: IMPORT_PRESETS })
  @IsIn(IMPORT_PRESETS)
  preset!: ImportPreset;

  @ApiPropertyOptional({
    enum: ['full', 'partial'],
    default: 'full',
    description: 'full: an account missing from the file is marked removed; partial: nothing',
  })
  @IsOptional()
  @IsIn(['full', 'partial'])
  mode: 'full' | 'partial' = 'full';

  @ApiPropertyOptional({
    example:
      'externalId:login,name:display_name,privilege:role,mfa:mfa,lastUsed:last_login,enabled:active',
    description:
      'generic preset: comma-separated field:column pairs; fields are externalId (required), ' +
      'name, privilege, mfa, lastUsed and enabled',
  })
  @IsOptional()
  @IsString()
  @MaxLength(1000)
  mapping?: string;

  @ApiPropertyOptional({
    default: false,
    description: 'Apply the valid rows and list the rejected ones instead of rejecting the file',
  })
  @IsOptional()
  @QueryBoolean()
  @IsBoolean()
  allowPartialErrors = false;
}
