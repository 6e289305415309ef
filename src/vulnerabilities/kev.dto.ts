import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, IsString, IsUrl, Length, MaxLength } from 'class-validator';

import { QueryBoolean, Trim } from '../common/dto';
import { PageQuery } from '../common/pagination';

export class ImportFromUrlDto {
  @ApiProperty({ example: 'https://example.org/known_exploited_vulnerabilities.json' })
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true, require_tld: false })
  @MaxLength(2000)
  url!: string;

  @ApiPropertyOptional({
    default: false,
    description: 'Accept a catalog that withdraws over 20% of entries',
  })
  @IsOptional()
  @IsBoolean()
  allowMassWithdrawal?: boolean;
}

export class UploadQuery {
  @ApiPropertyOptional({
    default: false,
    description: 'Accept a catalog that withdraws over 20% of entries',
  })
  @IsOptional()
  @QueryBoolean()
  @IsBoolean()
  allowMassWithdrawal?: boolean;
}

export class KevEntryQuery extends PageQuery {
  @ApiPropertyOptional({
    description: 'Case-insensitive substring of CVE id, vendor, product or name',
  })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  q?: string;

  @ApiPropertyOptional({ type: Boolean })
  @IsOptional()
  @QueryBoolean()
  @IsBoolean()
  knownRansomwareUse?: boolean;

  @ApiPropertyOptional({ type: Boolean, default: false })
  @IsOptional()
  @QueryBoolean()
  @IsBoolean()
  includeWithdrawn?: boolean;
}

export class CreateAliasDto {
  @ApiProperty({ example: 'TeamViewer', description: 'Provider name as in this catalog' })
  @Trim()
  @IsString()
  @Length(1, 200)
  providerName!: string;

  @ApiProperty({ example: 'TeamViewer Remote', description: 'Product name as in this catalog' })
  @Trim()
  @IsString()
  @Length(1, 200)
  productName!: string;

  @ApiProperty({ example: 'TeamViewer', description: 'vendorProject as KEV lists it' })
  @Trim()
  @IsString()
  @Length(1, 200)
  kevVendorProject!: string;

  @ApiProperty({ example: 'Desktop', description: 'product as KEV lists it' })
  @Trim()
  @IsString()
  @Length(1, 200)
  kevProduct!: string;

  @ApiProperty({ example: 'KEV lists the remote-access client under its former name' })
  @Trim()
  @IsString()
  @Length(3, 500)
  reason!: string;
}
