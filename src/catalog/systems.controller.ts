import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';

import { RequirePermission } from '../common/access';
import { Page } from '../common/pagination';
import { uuidPipe } from '../common/uuid';
import { CreateSystemDto, RetireSystemDto, SystemListQuery, UpdateSystemDto } from './system.dto';
import { ThirdPartySystem } from './system.entity';
import { SystemsService } from './systems.service';

@ApiTags('catalog')
@Controller('systems')
export class SystemsController {
  constructor(private readonly systems: SystemsService) {}

  @Get()
  @RequirePermission('catalog.read')
  @ApiOperation({ summary: 'List systems with filters, sorting and offset paging' })
  list(@Query() query: SystemListQuery): Promise<Page<ThirdPartySystem>> {
    return this.systems.list(query);
  }

  @Get(':id')
  @RequirePermission('catalog.read')
  get(@Param('id', uuidPipe) id: string): Promise<ThirdPartySystem> {
    return this.systems.get(id);
  }

  @Post()
  @RequirePermission('catalog.write')
  @ApiOperation({ summary: 'Register a system (names are unique per provider, ignoring case)' })
  create(@Body() body: CreateSystemDto): Promise<ThirdPartySystem> {
    return this.systems.create(body);
  }

  @Patch(':id')
  @RequirePermission('catalog.system.update')
  update(
    @Param('id', uuidPipe) id: string,
    @Body() body: UpdateSystemDto,
  ): Promise<ThirdPartySystem> {
    return this.systems.update(id, body);
  }

  @Post(':id/retire')
  @HttpCode(200)
  @RequirePermission('catalog.system.update')
  @ApiOperation({ summary: 'Retire a system; it keeps its history and accepts no further change' })
  retire(
    @Param('id', uuidPipe) id: string,
    @Body() body: RetireSystemDto,
  ): Promise<ThirdPartySystem> {
    return this.systems.retire(id, body);
  }
}
