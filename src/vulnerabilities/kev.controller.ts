import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOperation, ApiTags } from '@nestjs/swagger';

import { RequirePermission } from '../common/access';
import { DomainError } from '../common/errors';
import { Page, PageQuery } from '../common/pagination';
import { uuidPipe } from '../common/uuid';
import { AliasView, KevCatalogService } from './kev-catalog.service';
import { ImportReport, KevImportService } from './kev-import.service';
import { CreateAliasDto, ImportFromUrlDto, KevEntryQuery, UploadQuery } from './kev.dto';

@ApiTags('vulnerabilities')
@Controller('kev')
export class KevController {
  constructor(
    private readonly imports: KevImportService,
    private readonly catalog: KevCatalogService,
  ) {}

  @Post('imports/upload')
  @RequirePermission('kev.import')
  @ApiOperation({
    summary:
      'Import a KEV catalog file (the published JSON or CSV form, detected from the content)',
    description:
      'Send the file as the raw body with Content-Type text/csv or application/octet-stream.',
  })
  @ApiConsumes('application/octet-stream', 'text/csv')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  upload(@Body() body: unknown, @Query() query: UploadQuery): Promise<ImportReport> {
    const content = Buffer.isBuffer(body) ? body.toString('utf8') : body;
    if (typeof content !== 'string') {
      throw new DomainError(
        415,
        'REQUEST.UNSUPPORTED_MEDIA_TYPE',
        'Send the catalog file as the raw body with Content-Type text/csv or application/octet-stream',
      );
    }
    return this.imports.importContent(content, 'upload', {
      allowMassWithdrawal: query.allowMassWithdrawal,
    });
  }

  @Post('imports')
  @RequirePermission('kev.import')
  @ApiOperation({ summary: 'Download and import a KEV catalog from an http(s) URL' })
  importUrl(@Body() body: ImportFromUrlDto): Promise<ImportReport> {
    return this.imports.importUrl(body.url, { allowMassWithdrawal: body.allowMassWithdrawal });
  }

  @Get('imports')
  @RequirePermission('kev.read')
  @ApiOperation({ summary: 'Import history, newest first, with counts or the failure reason' })
  listImports(@Query() query: PageQuery): Promise<Page<unknown>> {
    return this.imports.listImports(query);
  }

  @Get('entries')
  @RequirePermission('kev.read')
  listEntries(@Query() query: KevEntryQuery): Promise<Page<unknown>> {
    return this.catalog.listEntries(query);
  }

  @Get('entries/:cveId')
  @RequirePermission('kev.read')
  getEntry(@Param('cveId') cveId: string): Promise<unknown> {
    if (!/^CVE-\d{4}-\d{4,19}$/i.test(cveId)) {
      throw new DomainError(
        400,
        'REQUEST.INVALID',
        'Invalid CVE id: expected a form like CVE-2024-1709',
        {
          fields: [{ field: 'cveId', problems: ['cveId must look like CVE-2024-1709'] }],
        },
      );
    }
    return this.catalog.getEntry(cveId);
  }

  @Get('aliases')
  @RequirePermission('kev.read')
  listAliases(): Promise<AliasView[]> {
    return this.catalog.listAliases();
  }

  @Post('aliases')
  @RequirePermission('kev.alias.write')
  @ApiOperation({
    summary: 'Link a catalog product to the name KEV lists it under; systems are re-matched',
  })
  createAlias(@Body() body: CreateAliasDto): Promise<AliasView> {
    return this.catalog.createAlias(body);
  }

  @Delete('aliases/:id')
  @HttpCode(204)
  @RequirePermission('kev.alias.write')
  deleteAlias(@Param('id', uuidPipe) id: string): Promise<void> {
    return this.catalog.deleteAlias(id);
  }
}
