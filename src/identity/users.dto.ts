import { ApiProperty, ApiPropertyOptional, OmitType, PartialType } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsEmail,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsTimeZone,
  IsUUID,
  Length,
  Max,
  Matches,
  MaxLength,
  Min,
} from 'class-validator';

import { QueryBoolean, Trim } from '../common/dto';
import { PageQuery } from '../common/pagination';
import { PERMISSIONS, ROLES } from './permissions';
import type { Permission, Role } from './permissions';

export class CreateUserDto {
  @ApiProperty({ example: 'dana.owner@example.com' })
  @Trim()
  @IsEmail()
  @MaxLength(320)
  email!: string;

  @ApiProperty({ example: 'Dana Owner' })
  @Trim()
  @IsString()
  @Length(1, 200)
  name!: string;

  @ApiPropertyOptional({ description: 'At least 12 characters; omit for directory-only users' })
  @IsOptional()
  @IsString()
  @Length(12, 200)
  password?: string;

  @ApiPropertyOptional({ enum: ROLES, isArray: true })
  @IsOptional()
  @IsArray()
  @ArrayUnique()
  @ArrayMaxSize(ROLES.length)
  @IsIn(ROLES, { each: true })
  roles?: Role[];

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  managerId?: string;

  @ApiPropertyOptional({ example: 'Europe/Berlin', default: 'UTC' })
  @IsOptional()
  @IsTimeZone()
  timeZone?: string;
}

/** Every field of a new user but the e-mail may change; a new password ends the user's sessions. */
export class UpdateUserDto extends PartialType(OmitType(CreateUserDto, ['email'] as const)) {
  @ApiProperty()
  @IsInt()
  @Min(1)
  version!: number;
}

export class DeactivateUserDto {
  @ApiProperty()
  @IsInt()
  @Min(1)
  version!: number;

  @ApiProperty({ example: 'Left the company' })
  @Trim()
  @IsString()
  @Length(3, 500)
  reason!: string;
}

export class UserListQuery extends PageQuery {
  @ApiPropertyOptional({ type: Boolean })
  @IsOptional()
  @QueryBoolean()
  @IsBoolean()
  active?: boolean;

  @ApiPropertyOptional({ enum: ROLES })
  @IsOptional()
  @IsIn(ROLES)
  role?: Role;

  @ApiPropertyOptional({ description: 'Case-insensitive substring of name or e-mail' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  q?: string;
}

export class SignInDto {
  @ApiProperty({ example: 'admin@demo.example' })
  @Trim()
  @IsEmail()
  @MaxLength(320)
  email!: string;

  @ApiProperty()
  @IsString()
  @Length(1, 200)
  password!: string;

  @ApiPropertyOptional({
    description: 'Six-digit TOTP code or a recovery code, when a second factor is enrolled',
  })
  @IsOptional()
  @IsString()
  @Length(6, 20)
  code?: string;
}

export class MfaCodeDto {
  @ApiProperty({ example: '123456' })
  @IsString()
  @Length(6, 20)
  code!: string;
}

export class OidcStartQuery {
  @ApiPropertyOptional({
    example: '/systems',
    description: 'Relative path handed back by the callback, for the client to continue at',
  })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  // One leading slash only, because browsers read "//host" and "/\host" as another site.
  @Matches(/^\/(?![/\\])[^\s\\]*$/, {
    message: 'returnTo must be a relative path starting with one "/", such as /systems',
  })
  returnTo?: string;
}

export class CreateApiTokenDto {
  @ApiProperty({ example: 'Nightly inventory export' })
  @Trim()
  @IsString()
  @Length(1, 200)
  name!: string;

  @ApiProperty({
    enum: Object.keys(PERMISSIONS),
    isArray: true,
    example: ['catalog.read', 'findings.read'],
  })
  @IsArray()
  @ArrayUnique()
  @ArrayMaxSize(Object.keys(PERMISSIONS).length)
  @IsIn(Object.keys(PERMISSIONS), { each: true })
  scopes!: Permission[];

  @ApiProperty({ minimum: 1, maximum: 365, example: 90 })
  @IsInt()
  @Min(1)
  @Max(365)
  expiresInDays!: number;
}

export class RefreshDto {
  @ApiProperty()
  @IsString()
  @Length(20, 200)
  refreshToken!: string;
}
