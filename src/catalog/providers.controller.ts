import { Body, Controller, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';

import { RequirePermission } from '../common/access';
import { Page } from '../common/pagination';
import { uuidPipe } from '../common/uuid';
import { CreateProviderDto, ProviderListQuery, UpdateProviderDto } from './provider.dto';
import { Provider } from './provider.entity';
import { ProvidersService } from './providers.service';

@ApiTags('catalog')
@Controller('providers')
export class ProvidersController {
  constructor(private readonly providers: ProvidersService) {}

  @Get()
  @RequirePermission('catalog.read')
  @ApiOperation({ summary: 'List providers' })
  list(@Query() query: ProviderListQuery): Promise<Page<Provider>> {
    return this.providers.list(query);
  }

  @Get(':id')
  @RequirePermission('catalog.read')
  get(@Param('id', uuidPipe) id: string): Promise<Provider> {
    return this.providers.get(id);
  }

  @Post()
  @RequirePermission('catalog.write')
  @ApiOperation({ summary: 'Create a provider (names are unique, ignoring case)' })
  create(@Body() body: CreateProviderDto): Promise<Provider> {
    return this.providers.create(body);
  }

  @Patch(':id')
  @RequirePermission('catalog.write')
  update(@Param('id', uuidPipe) id: string, @Body() body: UpdateProviderDto): Promise<Provider> {
    return this.providers.update(id, body);
  }
}
