import { ApiProperty, ApiPropertyOptional, PartialType } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, IsString, IsUrl, Length, MaxLength, Min } from 'class-validator';

import { Trim } from '../common/dto';
import { PageQuery } from '../common/pagination';

export class CreateProviderDto {
  @ApiProperty({ example: 'ConnectWise', maxLength: 200 })
  @Trim()
  @IsString()
  @Length(1, 200)
  name!: string;

  @ApiPropertyOptional({ example: 'https://www.connectwise.com' })
  @IsOptional()
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true })
  @MaxLength(500)
  website?: string;

  @ApiPropertyOptional({ maxLength: 2000 })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  description?: string;
}

export class UpdateProviderDto extends PartialType(CreateProviderDto) {
  @ApiProperty({ description: 'The version you read; a stale version is rejected with 409' })
  @IsInt()
  @Min(1)
  version!: number;
}

export class ProviderListQuery extends PageQuery {
  @ApiPropertyOptional({ description: 'Case-insensitive substring of the name' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  q?: string;

  @ApiPropertyOptional({ enum: ['name', 'createdAt'], default: 'name' })
  @IsOptional()
  @IsIn(['name', 'createdAt'])
  sort: 'name' | 'createdAt' = 'name';
}
