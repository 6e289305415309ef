import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOperation, ApiTags } from '@nestjs/swagger';

import { RequirePermission } from '../common/access';
import { DomainError } from '../common/errors';
import { Page } from '../common/pagination';
import { uuidPipe } from '../common/uuid';
import { CreateUserDto, DeactivateUserDto, UpdateUserDto, UserListQuery } from './users.dto';
import { DirectoryImportReport, UsersService, UserView } from './users.service';

@ApiTags('identity')
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get()
  @RequirePermission('users.read')
  list(@Query() query: UserListQuery): Promise<Page<UserView>> {
    return this.users.list(query);
  }

  @Get(':id')
  @RequirePermission('users.read')
  get(@Param('id', uuidPipe) id: string): Promise<UserView> {
    return this.users.get(id);
  }

  @Post()
  @RequirePermission('users.write')
  create(@Body() body: CreateUserDto): Promise<UserView> {
    return this.users.create(body);
  }

  @Patch(':id')
  @RequirePermission('users.write')
  update(@Param('id', uuidPipe) id: string, @Body() body: UpdateUserDto): Promise<UserView> {
    return this.users.update(id, body);
  }

  @Post(':id/deactivate')
  @HttpCode(200)
  @RequirePermission('users.write')
  @ApiOperation({ summary: 'Deactivate a user: history stays, sign-in stops, sessions end' })
  deactivate(
    @Param('id', uuidPipe) id: string,
    @Body() body: DeactivateUserDto,
  ): Promise<UserView> {
    return this.users.deactivate(id, body);
  }

  @Post('import')
  @RequirePermission('users.write')
  @ApiOperation({
    summary: 'Load users from a directory CSV with columns id, name, email, manager, active',
  })
  @ApiConsumes('text/csv')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  importDirectory(@Body() body: unknown): Promise<DirectoryImportReport> {
    if (typeof body !== 'string') {
      throw new DomainError(
        415,
        'REQUEST.UNSUPPORTED_MEDIA_TYPE',
        'Send the directory as a text/csv body',
      );
    }
    return this.users.importDirectory(body);
  }
}
