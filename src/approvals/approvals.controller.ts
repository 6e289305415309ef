import {
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  Param,
  Patch,
  Post,
  Put,
  Query,
  Res,
} from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';

import { RequirePermission } from '../common/access';
import { DomainError, InvalidInputError } from '../common/errors';
import type { Page } from '../common/pagination';
import { uuidPipe } from '../common/uuid';
import { ApprovalDecisionsService } from './approval-decisions.service';
import type { BulkDecisionResult } from './approval-decisions.service';
import { ApprovalPoliciesService } from './approval-policies.service';
import {
  AnswerDto,
  BulkDecideDto,
  CreatePolicyDto,
  CreateRequestDto,
  DecideDto,
  OverrideDto,
  PolicyListQuery,
  RequestListQuery,
  UpdateRequestDto,
  VersionDto,
} from './approvals.dto';
import { EvidenceService } from './evidence.service';
import type { EvidenceFileView } from './evidence.service';
import type { PolicyView, RequestView } from './request-reader';
import { ToolRequestsService } from './tool-requests.service';
import type { SystemApprovalView } from './tool-requests.service';

@ApiTags('approvals')
@Controller('approval-policies')
export class ApprovalPoliciesController {
  constructor(private readonly policies: ApprovalPoliciesService) {}

  @Get()
  @RequirePermission('approvals.read')
  @ApiOperation({ summary: 'List the approval policies in force (or every version with history)' })
  list(@Query() query: PolicyListQuery): Promise<PolicyView[]> {
    return this.policies.list(query);
  }

  @Post()
  @RequirePermission('approvals.policy.write')
  @ApiOperation({
    summary: 'Publish a new version of the policy for a criticality (and category)',
    description: 'Requests already submitted keep the version they were submitted under.',
  })
  publish(@Body() body: CreatePolicyDto): Promise<PolicyView> {
    return this.policies.publish(body);
  }
}

@ApiTags('approvals')
@Controller('tool-requests')
export class ToolRequestsController {
  constructor(
    private readonly requests: ToolRequestsService,
    private readonly decisions: ApprovalDecisionsService,
  ) {}

  @Get()
  @RequirePermission('approvals.read')
  list(@Query() query: RequestListQuery): Promise<Page<RequestView>> {
    return this.requests.list(query);
  }

  @Get(':id')
  @RequirePermission('approvals.read')
  get(@Param('id', uuidPipe) id: string): Promise<RequestView> {
    return this.requests.get(id);
  }

  @Post()
  @RequirePermission('approvals.request')
  @ApiOperation({ summary: 'Draft a request to bring a third-party system into use' })
  create(@Body() body: CreateRequestDto): Promise<RequestView> {
    return this.requests.create(body);
  }

  @Patch(':id')
  @RequirePermission('approvals.request')
  @ApiOperation({ summary: 'Edit a request; an edit during review resets its approvals' })
  update(@Param('id', uuidPipe) id: string, @Body() body: UpdateRequestDto): Promise<RequestView> {
    return this.requests.update(id, body);
  }

  @Put(':id/evaluation/:item')
  @RequirePermission('approvals.evaluate')
  @ApiOperation({ summary: 'Answer one item of the security evaluation, with evidence' })
  answer(
    @Param('id', uuidPipe) id: string,
    @Param('item') item: string,
    @Body() body: AnswerDto,
  ): Promise<RequestView> {
    return this.requests.answer(id, item, body);
  }

  @Post(':id/submit')
  @HttpCode(200)
  @RequirePermission('approvals.request')
  submit(@Param('id', uuidPipe) id: string, @Body() body: VersionDto): Promise<RequestView> {
    return this.requests.submit(id, body.version);
  }

  @Post(':id/withdraw')
  @HttpCode(200)
  @RequirePermission('approvals.request')
  withdraw(@Param('id', uuidPipe) id: string, @Body() body: VersionDto): Promise<RequestView> {
    return this.requests.withdraw(id, body.version);
  }

  @Post('decisions')
  @HttpCode(200)
  @RequirePermission('approvals.decide')
  @ApiOperation({
    summary: 'Decide on several requests; each is judged on its own and reported per item',
  })
  decideMany(@Body() body: BulkDecideDto): Promise<{ results: BulkDecisionResult[] }> {
    return this.decisions.decideMany(body);
  }

  @Post(':id/decisions')
  @HttpCode(200)
  @RequirePermission('approvals.decide')
  @ApiOperation({ summary: 'Approve, reject or ask for changes' })
  decide(@Param('id', uuidPipe) id: string, @Body() body: DecideDto): Promise<RequestView> {
    return this.decisions.decide(id, body);
  }

  @Post(':id/override')
  @HttpCode(200)
  @RequirePermission('approvals.override')
  @ApiOperation({
    summary: 'Approve while setting the policy aside; needs a reason, audited as such',
  })
  override(@Param('id', uuidPipe) id: string, @Body() body: OverrideDto): Promise<RequestView> {
    return this.decisions.override(id, body);
  }
}

@ApiTags('approvals')
@Controller('systems')
export class SystemApprovalController {
  constructor(private readonly requests: ToolRequestsService) {}

  @Get(':id/approval')
  @RequirePermission('approvals.read')
  @ApiOperation({
    summary: 'Whether the system is approved now, through which request, until when',
  })
  status(@Param('id', uuidPipe) id: string): Promise<SystemApprovalView> {
    return this.requests.systemStatus(id);
  }
}

const SHA256 = /^[0-9a-f]{64}$/;

@ApiTags('approvals')
@Controller('evidence')
export class EvidenceController {
  constructor(private readonly evidence: EvidenceService) {}

  @Post()
  @RequirePermission('approvals.evaluate')
  @ApiOperation({
    summary: 'Upload an evidence file as the raw body; it is kept by its SHA-256',
    description:
      'Send the bytes with their own Content-Type; the size limit is EVIDENCE_MAX_BYTES.',
  })
  @ApiConsumes('application/octet-stream', 'application/pdf', 'image/png', 'text/plain')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiQuery({ name: 'fileName', required: false })
  upload(
    @Body() body: unknown,
    @Headers('content-type') contentType: string | undefined,
    @Query('fileName') fileName: unknown,
  ): Promise<EvidenceFileView> {
    if (fileName !== undefined && (typeof fileName !== 'string' || fileName.length > 300)) {
      throw new InvalidInputError('Invalid file name', [
        { field: 'fileName', problems: ['fileName must be one string of at most 300 characters'] },
      ]);
    }
    const content = Buffer.isBuffer(body)
      ? body
      : typeof body === 'string'
        ? Buffer.from(body, 'utf8')
        : null;
    if (
      content === null ||
      contentType === undefined ||
      /^application\/json\b/i.test(contentType)
    ) {
      throw new DomainError(
        415,
        'REQUEST.UNSUPPORTED_MEDIA_TYPE',
        'Send the evidence file as the raw body with its own Content-Type, not as JSON',
      );
    }
    return this.evidence.upload(content, contentType.split(';')[0].trim(), fileName);
  }

  @Get(':sha256')
  @RequirePermission('approvals.read')
  async download(@Param('sha256') sha256: string, @Res() reply: FastifyReply): Promise<void> {
    if (!SHA256.test(sha256)) {
      throw new InvalidInputError('Invalid evidence address', [
        { field: 'sha256', problems: ['sha256 must be 64 lowercase hexadecimal digits'] },
      ]);
    }
    const file = await this.evidence.content(sha256);
    await reply
      .header('content-type', file.mediaType)
      .header('content-disposition', contentDisposition(file.fileName, sha256))
      .header('x-content-type-options', 'nosniff')
      .send(file.content);
  }

  @Get(':sha256/metadata')
  @RequirePermission('approvals.read')
  describe(@Param('sha256') sha256: string): Promise<EvidenceFileView> {
    if (!SHA256.test(sha256)) {
      throw new InvalidInputError('Invalid evidence address', [
        { field: 'sha256', problems: ['sha256 must be 64 lowercase hexadecimal digits'] },
      ]);
    }
    return this.evidence.describe(sha256);
  }
}

/**
 * Builds an attachment header with the uploaded file name: an ASCII fallback with quotes and
 * control characters replaced, and the exact name UTF-8 percent-encoded in `filename*`.
 */
function contentDisposition(fileName: string | null, sha256: string): string {
  const name = fileName ?? sha256;
  const fallback = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
