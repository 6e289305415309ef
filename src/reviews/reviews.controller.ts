import { Body, Controller, Get, HttpCode, Param, Post, Put, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';

import { RequirePermission } from '../common/access';
import type { Page } from '../common/pagination';
import { uuidPipe } from '../common/uuid';
import { CampaignsService } from './campaigns.service';
import type { CampaignView, ItemView, ReviewPolicyView } from './campaigns.service';
import { ReviewItemsService } from './review-items.service';
import type { BulkItemResult } from './review-items.service';
import {
  BulkDecideItemsDto,
  CampaignListQuery,
  DecideItemDto,
  ItemListQuery,
  OpenCampaignDto,
  ReassignItemDto,
  ReviewPolicyDto,
} from './reviews.dto';

@ApiTags('reviews')
@Controller('systems')
export class ReviewPoliciesController {
  constructor(private readonly campaigns: CampaignsService) {}

  @Get(':id/review-policy')
  @RequirePermission('reviews.read')
  get(@Param('id', uuidPipe) id: string): Promise<ReviewPolicyView> {
    return this.campaigns.getPolicy(id);
  }

  @Put(':id/review-policy')
  @RequirePermission('reviews.policy.write')
  @ApiOperation({
    summary: 'Set the access review policy of a system (cadence, reviewers, close action)',
  })
  put(@Param('id', uuidPipe) id: string, @Body() body: ReviewPolicyDto): Promise<ReviewPolicyView> {
    return this.campaigns.putPolicy(id, body);
  }
}

@ApiTags('reviews')
@Controller('review-campaigns')
export class CampaignsController {
  constructor(
    private readonly campaigns: CampaignsService,
    private readonly items: ReviewItemsService,
  ) {}

  @Get()
  @RequirePermission('reviews.read')
  list(@Query() query: CampaignListQuery): Promise<Page<CampaignView>> {
    return this.campaigns.list(query);
  }

  @Post()
  @RequirePermission('reviews.campaign.open')
  @ApiOperation({
    summary: 'Open a campaign now; a second opening on the same day returns the first (200)',
  })
  async open(
    @Body() body: OpenCampaignDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<CampaignView> {
    const result = await this.campaigns.openOnDemand(body.systemId, body.scope ?? 'all');
    reply.status(result.created ? 201 : 200);
    return result.campaign;
  }

  @Get(':id')
  @RequirePermission('reviews.read')
  get(@Param('id', uuidPipe) id: string): Promise<CampaignView> {
    return this.campaigns.get(id);
  }

  @Get(':id/progress')
  @RequirePermission('reviews.read')
  @ApiOperation({ summary: 'Decided and undecided items per reviewer' })
  progress(@Param('id', uuidPipe) id: string): Promise<unknown> {
    return this.campaigns.progressByReviewer(id);
  }

  @Get(':id/items')
  @RequirePermission('reviews.read')
  itemList(
    @Param('id', uuidPipe) id: string,
    @Query() query: ItemListQuery,
  ): Promise<Page<ItemView>> {
    return this.campaigns.items(id, query);
  }

  @Post(':id/decisions')
  @HttpCode(200)
  @RequirePermission('reviews.decide')
  @ApiOperation({
    summary:
      'Decide listed items, or every item matching a filter; results and skip reasons per item',
  })
  decideMany(
    @Param('id', uuidPipe) id: string,
    @Body() body: BulkDecideItemsDto,
  ): Promise<{ results: BulkItemResult[] }> {
    return this.items.decideMany(id, body);
  }
}

@ApiTags('reviews')
@Controller('review-items')
export class ReviewItemsController {
  constructor(private readonly items: ReviewItemsService) {}

  @Get(':id')
  @RequirePermission('reviews.read')
  get(@Param('id', uuidPipe) id: string): Promise<ItemView> {
    return this.items.get(id);
  }

  @Post(':id/decision')
  @HttpCode(200)
  @RequirePermission('reviews.decide')
  @ApiOperation({ summary: 'Certify or revoke; the version read must still be current' })
  decide(@Param('id', uuidPipe) id: string, @Body() body: DecideItemDto): Promise<ItemView> {
    return this.items.decide(id, body);
  }

  @Post(':id/reassign')
  @HttpCode(200)
  @RequirePermission('reviews.decide')
  @ApiOperation({
    summary: 'Give the item to another reviewer; never the holder, due date unchanged',
  })
  reassign(@Param('id', uuidPipe) id: string, @Body() body: ReassignItemDto): Promise<ItemView> {
    return this.items.reassign(id, body);
  }
}
