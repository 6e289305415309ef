import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';

import { SystemsService } from '../catalog/systems.service';
import { RequirePermission } from '../common/access';
import { Page } from '../common/pagination';
import { uuidPipe } from '../common/uuid';
import {
  ConfirmFindingDto,
  CreateAdvisoryDto,
  DismissFindingDto,
  FindingListQuery,
  FixFindingDto,
  SystemFindingQuery,
} from './findings.dto';
import { FindingsService, FindingView } from './findings.service';

@ApiTags('vulnerabilities')
@Controller()
export class FindingsController {
  constructor(
    private readonly findings: FindingsService,
    private readonly systems: SystemsService,
  ) {}

  @Get('findings')
  @RequirePermission('findings.read')
  @ApiOperation({
    summary: 'List vulnerability findings; status and due date are computed at read time',
  })
  list(@Query() query: FindingListQuery): Promise<Page<FindingView>> {
    return this.findings.list(query);
  }

  @Get('systems/:id/findings')
  @RequirePermission('findings.read')
  @ApiOperation({ summary: "List one system's findings" })
  async listForSystem(
    @Param('id', uuidPipe) id: string,
    @Query() query: SystemFindingQuery,
  ): Promise<Page<FindingView>> {
    await this.systems.get(id);
    return this.findings.list({ ...query, systemId: id });
  }

  @Get('findings/:id')
  @RequirePermission('findings.read')
  get(@Param('id', uuidPipe) id: string): Promise<FindingView> {
    return this.findings.get(id);
  }

  @Post('findings/advisories')
  @RequirePermission('findings.write')
  @ApiOperation({
    summary: 'Record an advisory outside KEV (CVE or provider advisory id) for a system',
  })
  createAdvisory(@Body() body: CreateAdvisoryDto): Promise<FindingView> {
    return this.findings.createAdvisory(body);
  }

  @Post('findings/:id/confirm')
  @HttpCode(200)
  @RequirePermission('findings.write')
  @ApiOperation({ summary: 'Confirm that the system is affected' })
  confirm(
    @Param('id', uuidPipe) id: string,
    @Body() body: ConfirmFindingDto,
  ): Promise<FindingView> {
    return this.findings.confirm(id, body);
  }

  @Post('findings/:id/dismiss')
  @HttpCode(200)
  @RequirePermission('findings.write')
  @ApiOperation({ summary: 'Dismiss a match with a reason; the dismissal survives later imports' })
  dismiss(
    @Param('id', uuidPipe) id: string,
    @Body() body: DismissFindingDto,
  ): Promise<FindingView> {
    return this.findings.dismiss(id, body);
  }

  @Post('findings/:id/fix')
  @HttpCode(200)
  @RequirePermission('findings.write')
  @ApiOperation({ summary: 'Record the fix: the version that contains it, at the current time' })
  fix(@Param('id', uuidPipe) id: string, @Body() body: FixFindingDto): Promise<FindingView> {
    return this.findings.fix(id, body);
  }
}
