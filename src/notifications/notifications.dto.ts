import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Length,
  Matches,
  Min,
} from 'class-validator';

import { QueryBoolean, Trim } from '../common/dto';
import { PageQuery } from '../common/pagination';

export const USER_CHANNELS = ['in-app', 'email'] as const;
export const ROUTE_CHANNELS = ['in-app', 'email', 'webhook'] as const;
export const EVENT_TYPES = [
  'kev.findings_due',
  'tool-request.submitted',
  'tool-request.approved',
  'tool-request.rejected',
  'tool-request.changes-requested',
  'tool-request.reapproval-due',
  'review.campaign-undecided',
  'review.reminder',
  'review.escalation',
] as const;
export const DELIVERY_STATUSES = [
  'pending',
  'sending',
  'delivered',
  'failed',
  'dead',
  'cancelled',
] as const;

const TIME_OF_DAY = /^([01]\d|2[0-3]):[0-5]\d$/;

export class NotificationListQuery extends PageQuery {
  @ApiPropertyOptional({ type: Boolean })
  @IsOptional()
  @QueryBoolean()
  @IsBoolean()
  unread?: boolean;
}

export class PreferencesDto {
  @ApiProperty({ enum: USER_CHANNELS, isArray: true, example: ['in-app', 'email'] })
  @IsArray()
  @ArrayUnique()
  @ArrayMaxSize(USER_CHANNELS.length)
  @IsIn(USER_CHANNELS, { each: true })
  channels!: (typeof USER_CHANNELS)[number][];

  @ApiPropertyOptional({
    example: '22:00',
    description: 'Start of quiet hours in your time zone (HH:MM)',
  })
  @IsOptional()
  @Matches(TIME_OF_DAY, { message: 'quietStart must be a time HH:MM' })
  quietStart?: string;

  @ApiPropertyOptional({
    example: '07:00',
    description: 'End of quiet hours in your time zone (HH:MM)',
  })
  @IsOptional()
  @Matches(TIME_OF_DAY, { message: 'quietEnd must be a time HH:MM' })
  quietEnd?: string;
}

export class RouteDto {
  @ApiProperty({ enum: ROUTE_CHANNELS, isArray: true })
  @IsArray()
  @ArrayUnique()
  @ArrayMaxSize(ROUTE_CHANNELS.length)
  @IsIn(ROUTE_CHANNELS, { each: true })
  channels!: (typeof ROUTE_CHANNELS)[number][];
}

export class CreateWebhookDto {
  @ApiProperty({ example: 'SIEM intake' })
  @Trim()
  @IsString()
  @Length(1, 200)
  name!: string;

  @ApiProperty({ example: 'https://siem.example.com/hooks/governance' })
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true, require_tld: false })
  @Length(1, 2000)
  url!: string;

  @ApiProperty({ enum: EVENT_TYPES, isArray: true })
  @IsArray()
  @ArrayUnique()
  @IsIn(EVENT_TYPES, { each: true })
  eventTypes!: (typeof EVENT_TYPES)[number][];
}

export class UpdateWebhookDto {
  @ApiProperty()
  @IsInt()
  @Min(1)
  version!: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  active?: boolean;

  @ApiPropertyOptional({ enum: EVENT_TYPES, isArray: true })
  @IsOptional()
  @IsArray()
  @ArrayUnique()
  @IsIn(EVENT_TYPES, { each: true })
  eventTypes?: (typeof EVENT_TYPES)[number][];
}

export class DeliveryListQuery extends PageQuery {
  @ApiPropertyOptional({ enum: DELIVERY_STATUSES, description: '"dead" lists the dead letters' })
  @IsOptional()
  @IsIn(DELIVERY_STATUSES)
  status?: (typeof DELIVERY_STATUSES)[number];
}
