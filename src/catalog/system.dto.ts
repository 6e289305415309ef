import { ApiProperty, ApiPropertyOptional, OmitType, PartialType } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsEmail,
  IsFQDN,
  IsIn,
  IsInt,
  IsIP,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';

import { Trim } from '../common/dto';
import { PageQuery } from '../common/pagination';
import { CRITICALITIES, LIFECYCLE_STATUSES, SYSTEM_CATEGORIES } from './catalog.types';
import type { Criticality, LifecycleStatus, SystemCategory } from './catalog.types';

export class SystemHostDto {
  @ApiProperty({ example: 'rmm01.corp.example.com' })
  @Trim()
  @IsFQDN({ require_tld: false })
  @MaxLength(253)
  hostname!: string;

  @ApiPropertyOptional({ example: '10.20.0.15' })
  @IsOptional()
  @IsIP()
  address?: string;

  @ApiPropertyOptional({ example: 'application', maxLength: 60 })
  @IsOptional()
  @IsString()
  @MaxLength(60)
  role?: string;
}

export class CreateSystemDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  providerId!: string;

  @ApiProperty({ example: 'ScreenConnect (support desk)', maxLength: 200 })
  @Trim()
  @IsString()
  @Length(1, 200)
  name!: string;

  @ApiProperty({
    example: 'ScreenConnect',
    description: 'Product name as the provider publishes it',
  })
  @Trim()
  @IsString()
  @Length(1, 200)
  product!: string;

  @ApiPropertyOptional({ example: '23.9.7' })
  @IsOptional()
  @Trim()
  @IsString()
  @Length(1, 100)
  productVersion?: string;

  @ApiProperty({ enum: SYSTEM_CATEGORIES })
  @IsIn(SYSTEM_CATEGORIES)
  category!: SystemCategory;

  @ApiProperty({ enum: CRITICALITIES })
  @IsIn(CRITICALITIES)
  criticality!: Criticality;

  @ApiPropertyOptional({ format: 'uuid', description: 'The owning user' })
  @IsOptional()
  @IsUUID()
  ownerId?: string;

  @ApiPropertyOptional({ example: 'owner@example.com' })
  @IsOptional()
  @IsEmail()
  @MaxLength(320)
  ownerEmail?: string;

  @ApiPropertyOptional({ type: [SystemHostDto] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @Type(() => SystemHostDto)
  hosts?: SystemHostDto[];

  @ApiPropertyOptional({ example: 'management-vlan' })
  @IsOptional()
  @Trim()
  @IsString()
  @MaxLength(100)
  networkZone?: string;

  @ApiPropertyOptional({ description: 'Whether the system pushes software to managed hosts' })
  @IsOptional()
  @IsBoolean()
  deploysSoftware?: boolean;

  @ApiPropertyOptional({ enum: ['planned', 'active'], default: 'active' })
  @IsOptional()
  @IsIn(['planned', 'active'])
  lifecycleStatus?: 'planned' | 'active';
}

export class UpdateSystemDto extends PartialType(
  OmitType(CreateSystemDto, ['providerId'] as const),
) {
  @ApiProperty({ description: 'The version you read; a stale version is rejected with 409' })
  @IsInt()
  @Min(1)
  version!: number;
}

export class RetireSystemDto {
  @ApiProperty()
  @IsInt()
  @Min(1)
  version!: number;

  @ApiProperty({ example: 'Replaced by the new RMM platform', maxLength: 500 })
  @Trim()
  @IsString()
  @Length(1, 500)
  reason!: string;
}

export class SystemListQuery extends PageQuery {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  providerId?: string;

  @ApiPropertyOptional({ enum: SYSTEM_CATEGORIES })
  @IsOptional()
  @IsIn(SYSTEM_CATEGORIES)
  category?: SystemCategory;

  @ApiPropertyOptional({ enum: CRITICALITIES })
  @IsOptional()
  @IsIn(CRITICALITIES)
  criticality?: Criticality;

  @ApiPropertyOptional({ enum: LIFECYCLE_STATUSES })
  @IsOptional()
  @IsIn(LIFECYCLE_STATUSES)
  lifecycleStatus?: LifecycleStatus;

  @ApiPropertyOptional({ description: 'Case-insensitive substring of the name or product' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  q?: string;

  @ApiPropertyOptional({ enum: ['name', 'createdAt', 'criticality'], default: 'name' })
  @IsOptional()
  @IsIn(['name', 'createdAt', 'criticality'])
  sort: 'name' | 'createdAt' | 'criticality' = 'name';
}
