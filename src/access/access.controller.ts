import { Body, Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Readable } from 'node:stream';

import { RequirePermission } from '../common/access';
import { DomainError } from '../common/errors';
import { Page, PageQuery } from '../common/pagination';
import { uuidPipe } from '../common/uuid';
import {
  AcceptRiskDto,
  AccountImportQuery,
  AccountListQuery,
  ApproveGrantDto,
  CreateGrantDto,
  DecideGrantDto,
  FindingListQuery,
  GrantListQuery,
  ProvisionGrantDto,
  RecordCredentialDto,
  TaskListQuery,
  TransferAccountDto,
} from './access.dto';
import { AccessFindingsService, AccessFindingView } from './access-findings.service';
import { AccountImportReport, AccountImportService } from './account-import.service';
import { AccountsService, AccountView } from './accounts.service';
import { DeprovisioningTasksService, DeprovisioningTaskView } from './deprovisioning-tasks';
import { GrantsService, GrantView } from './grants.service';

@ApiTags('access')
@Controller('accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  @Get()
  @RequirePermission('access.read')
  @ApiOperation({ summary: 'List accounts with filters (system, holder, privilege, status)' })
  list(@Query() query: AccountListQuery): Promise<Page<AccountView>> {
    return this.accounts.list(query);
  }

  @Get(':id')
  @RequirePermission('access.read')
  get(@Param('id', uuidPipe) id: string): Promise<AccountView> {
    return this.accounts.get(id);
  }

  @Post(':id/credential')
  @HttpCode(200)
  @RequirePermission('access.provision')
  @ApiOperation({
    summary:
      'Fingerprint the account credential (HMAC-SHA256) to detect reuse; the secret is not kept',
  })
  recordCredential(
    @Param('id', uuidPipe) id: string,
    @Body() body: RecordCredentialDto,
  ): Promise<AccountView> {
    return this.accounts.recordCredential(id, body);
  }

  @Post(':id/transfer')
  @HttpCode(200)
  @RequirePermission('access.transfer')
  @ApiOperation({ summary: 'Move a provider account to another provider or system (audited)' })
  transfer(
    @Param('id', uuidPipe) id: string,
    @Body() body: TransferAccountDto,
  ): Promise<AccountView> {
    return this.accounts.transfer(id, body);
  }
}

@ApiTags('access')
@Controller('systems')
export class SystemAccessController {
  constructor(
    private readonly accounts: AccountsService,
    private readonly imports: AccountImportService,
    private readonly findings: AccessFindingsService,
  ) {}

  @Get(':id/accounts')
  @RequirePermission('access.read')
  list(
    @Param('id', uuidPipe) id: string,
    @Query() query: AccountListQuery,
  ): Promise<Page<AccountView>> {
    return this.accounts.list({ ...query, systemId: id });
  }

  @Get(':id/accounts/export')
  @RequirePermission('access.read')
  @ApiOperation({ summary: 'The accounts of a system as CSV (credential fingerprints excluded)' })
  async export(@Param('id', uuidPipe) id: string, @Res() reply: FastifyReply): Promise<void> {
    const lines = this.accounts.exportCsv(id);
    // The first line is read before replying, so an unknown system still gets a 404 body.
    const first = await lines.next();
    async function* rest(): AsyncGenerator<string> {
      if (!first.done) yield first.value;
      yield* lines;
    }
    await reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="accounts-${id}.csv"`)
      .send(Readable.from(rest()));
  }

  @Get(':id/access-findings')
  @RequirePermission('access.read')
  findingsOfSystem(
    @Param('id', uuidPipe) id: string,
    @Query() query: FindingListQuery,
  ): Promise<Page<AccessFindingView>> {
    return this.findings.list({ ...query, systemId: id });
  }

  @Post(':id/account-imports')
  @RequirePermission('access.import')
  @ApiOperation({
    summary: 'Import the accounts of a system from a CSV export and reconcile the inventory',
    description:
      'Send the CSV as the raw body with Content-Type text/csv. preset=aws-iam-credential-report ' +
      'reads the AWS IAM credential report; preset=generic needs a mapping. The same file twice ' +
      'changes nothing the second time.',
  })
  @ApiConsumes('text/csv')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  importAccounts(
    @Param('id', uuidPipe) id: string,
    @Query() query: AccountImportQuery,
    @Body() body: unknown,
  ): Promise<AccountImportReport> {
    if (typeof body !== 'string') {
      throw new DomainError(
        415,
        'REQUEST.UNSUPPORTED_MEDIA_TYPE',
        'Send the account file as the raw body with Content-Type text/csv',
      );
    }
    return this.imports.importAccounts(id, body, { ...query, source: 'upload' });
  }

  @Get(':id/account-imports')
  @RequirePermission('access.read')
  listImports(
    @Param('id', uuidPipe) id: string,
    @Query() query: PageQuery,
  ): Promise<Page<unknown>> {
    return this.imports.listImports(id, query);
  }
}

@ApiTags('access')
@Controller('access-grants')
export class GrantsController {
  constructor(private readonly grants: GrantsService) {}

  @Get()
  @RequirePermission('access.read')
  list(@Query() query: GrantListQuery): Promise<Page<GrantView>> {
    return this.grants.list(query);
  }

  @Get(':id')
  @RequirePermission('access.read')
  get(@Param('id', uuidPipe) id: string): Promise<GrantView> {
    return this.grants.get(id);
  }

  @Post()
  @RequirePermission('access.request')
  @ApiOperation({ summary: 'Request access to a system; the owner is notified' })
  request(@Body() body: CreateGrantDto): Promise<GrantView> {
    return this.grants.request(body);
  }

  @Post(':id/approve')
  @HttpCode(200)
  @RequirePermission('access.approve')
  @ApiOperation({
    summary: 'Approve as system owner or security approver (never the requester or holder)',
  })
  approve(@Param('id', uuidPipe) id: string, @Body() body: ApproveGrantDto): Promise<GrantView> {
    return this.grants.approve(id, body);
  }

  @Post(':id/reject')
  @HttpCode(200)
  @RequirePermission('access.approve')
  reject(@Param('id', uuidPipe) id: string, @Body() body: DecideGrantDto): Promise<GrantView> {
    return this.grants.reject(id, body);
  }

  @Post(':id/provision')
  @HttpCode(200)
  @RequirePermission('access.provision')
  @ApiOperation({ summary: 'Record that approved access was set up, with evidence' })
  provision(
    @Param('id', uuidPipe) id: string,
    @Body() body: ProvisionGrantDto,
  ): Promise<GrantView> {
    return this.grants.provision(id, body);
  }

  @Post(':id/revoke')
  @HttpCode(200)
  @RequirePermission('access.revoke')
  @ApiOperation({ summary: 'Revoke a grant; opens a de-provisioning task for its account' })
  revoke(@Param('id', uuidPipe) id: string, @Body() body: DecideGrantDto): Promise<GrantView> {
    return this.grants.revoke(id, body);
  }
}

@ApiTags('access')
@Controller()
export class AccessFindingsController {
  constructor(
    private readonly findings: AccessFindingsService,
    private readonly tasks: DeprovisioningTasksService,
  ) {}

  @Get('access-findings')
  @RequirePermission('access.read')
  @ApiOperation({ summary: 'Access findings across the organisation, with filters' })
  list(@Query() query: FindingListQuery): Promise<Page<AccessFindingView>> {
    return this.findings.list(query);
  }

  @Post('access-findings/:id/accept-risk')
  @HttpCode(200)
  @RequirePermission('access.findings.accept')
  @ApiOperation({ summary: 'Accept the risk of a finding until an expiry, with a reason' })
  acceptRisk(
    @Param('id', uuidPipe) id: string,
    @Body() body: AcceptRiskDto,
  ): Promise<AccessFindingView> {
    return this.findings.acceptRisk(id, body);
  }

  @Get('deprovisioning-tasks')
  @RequirePermission('access.read')
  listTasks(@Query() query: TaskListQuery): Promise<Page<DeprovisioningTaskView>> {
    return this.tasks.list(query);
  }
}
