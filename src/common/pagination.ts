import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';

export const MAX_PAGE_SIZE = 200;

/** Query parameters shared by list routes; each route subclasses it to declare its sort fields. */
export class PageQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: MAX_PAGE_SIZE, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  limit = 50;

  @ApiPropertyOptional({ minimum: 0, default: 0 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  offset = 0;

  @ApiPropertyOptional({ enum: ['asc', 'desc'], default: 'asc' })
  @IsOptional()
  @IsIn(['asc', 'desc'])
  order: 'asc' | 'desc' = 'asc';
}

/** One page of a list. `nextOffset` is null on the last page. */
export interface Page<T> {
  items: T[];
  limit: number;
  offset: number;
  nextOffset: number | null;
}

/**
 * Builds a page from rows fetched with `limit + 1`: the extra row only signals that another page
 * exists, so no separate count query is needed.
 */
export function toPage<T>(rows: T[], query: PageQuery): Page<T> {
  const hasMore = rows.length > query.limit;
  return {
    items: hasMore ? rows.slice(0, query.limit) : rows,
    limit: query.limit,
    offset: query.offset,
    nextOffset: hasMore ? query.offset + query.limit : null,
  };
}
