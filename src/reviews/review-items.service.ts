import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { ConflictError, DomainError, InvalidInputError, NotFoundError } from '../common/errors';
import { requireSignedInUser } from '../common/request-context';
import type { CurrentUser } from '../common/request-context';
import { returnedRows, Transactions } from '../common/transactions';
import { allows } from '../identity/permissions';
import type { Role } from '../identity/permissions';
import { UserHooks } from '../identity/user-hooks';
import { CampaignsService, ItemView, withEffectiveOutcome } from './campaigns.service';
import { ReviewEvents } from './review-events';
import { ITEM_COLUMNS, itemConditions } from './review-sql';
import type {
  BulkDecideItemsDto,
  DecideItemDto,
  ReassignItemDto,
  ReviewDecision,
} from './reviews.dto';

export interface BulkItemResult {
  itemId: string;
  result: 'decided' | 'skipped';
  code: string | null;
  reason: string | null;
}

interface ItemContext extends Omit<ItemView, 'effectiveOutcome'> {
  campaignStatus: string;
  closesAt: Date;
  undecidedAction: string;
  systemId: string;
  ownerId: string | null;
}

/** Reviews and changes the reviewer cannot make to an item they hold. */
function selfReview(itemId: string): DomainError {
  return new DomainError(
    403,
    'REVIEW.SELF_REVIEW',
    `You hold the account of review item ${itemId}; another person must review it`,
    { itemId },
  );
}

/**
 * Decisions on review items: certify or revoke with optimistic concurrency, bulk decisions
 * resolved on the server, reassignment, and moving a deactivated reviewer's open items.
 */
@Injectable()
export class ReviewItemsService implements OnModuleInit {
  private readonly logger = new Logger('ReviewItems');

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly events: ReviewEvents,
    private readonly campaigns: CampaignsService,
    private readonly userHooks: UserHooks,
  ) {}

  onModuleInit(): void {
    this.userHooks.onDeactivated((manager, userId) => this.moveFromInactive(manager, userId));
  }

  async get(id: string): Promise<ItemView> {
    const item = await this.load(this.dataSource.manager, id);
    return this.view(item);
  }

  async decide(id: string, input: DecideItemDto): Promise<ItemView> {
    const user = requireSignedInUser();
    const item = await this.transactions.run((manager) =>
      this.decideWithin(manager, id, input.decision, input.justification, input.version, user),
    );
    await this.events.itemsChanged(item.campaignId, [item.reviewerId]);
    return item;
  }

  /**
   * Decides an explicit list of items, or every item of the campaign matching a filter (resolved
   * here, never limited to one page). Each item is decided on its own; refusals are reported per
   * item with their reason.
   */
  async decideMany(
    campaignId: string,
    input: BulkDecideItemsDto,
  ): Promise<{ results: BulkItemResult[] }> {
    const user = requireSignedInUser();
    const targets = await this.bulkTargets(campaignId, input);
    const results: BulkItemResult[] = [];
    const reviewers = new Set<string | null>();

    for (const target of targets) {
      try {
        const item = await this.transactions.run(async (manager) => {
          const current = await this.load(manager, target.itemId);
          if (current.campaignId !== campaignId) {
            throw new DomainError(
              404,
              'REVIEW_ITEM.NOT_IN_CAMPAIGN',
              'The item belongs to another campaign',
            );
          }
          return this.decideWithin(
            manager,
            target.itemId,
            target.decision,
            target.justification,
            target.version ?? current.version,
            user,
          );
        });
        reviewers.add(item.reviewerId);
        results.push({ itemId: target.itemId, result: 'decided', code: null, reason: null });
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        results.push({
          itemId: target.itemId,
          result: 'skipped',
          code: error.code,
          reason: error.message,
        });
      }
    }
    await this.events.itemsChanged(campaignId, [...reviewers]);
    return { results };
  }

  /** Hands an item to another reviewer; never to the account's holder, and the due date stays. */
  async reassign(id: string, input: ReassignItemDto): Promise<ItemView> {
    const user = requireSignedInUser();
    const { item, previousReviewer } = await this.transactions.run(async (manager) => {
      const current = await this.load(manager, id);
      assertOpen(current, this.clock.now());
      // The holder may not choose who reviews their own account, whatever roles they hold.
      if (current.holderUserId === user.id) throw selfReview(id);
      const privileged = user.roles.some((role) =>
        ['platform-admin', 'security-approver'].includes(role),
      );
      if (current.reviewerId !== user.id && current.ownerId !== user.id && !privileged) {
        throw new DomainError(
          403,
          'REVIEW.NOT_REVIEWER',
          `Only the reviewer of item ${id}, the system owner or a platform admin may reassign it`,
          { itemId: id },
        );
      }
      if (input.reviewerId === current.holderUserId) {
        throw new InvalidInputError('The holder cannot review their own account', [
          {
            field: 'reviewerId',
            problems: ['reviewerId is the holder of the account under review'],
          },
        ]);
      }
      const [reviewer] = await manager.query<{ active: boolean; roles: Role[] }[]>(
        `SELECT u.active, coalesce(array_agg(r.role) FILTER (WHERE r.role IS NOT NULL), '{}') AS roles
           FROM users u LEFT JOIN user_roles r ON r.user_id = u.id
          WHERE u.id = $1 GROUP BY u.id`,
        [input.reviewerId],
      );
      if (!reviewer || !reviewer.active) {
        throw new InvalidInputError('Unknown or inactive reviewer', [
          { field: 'reviewerId', problems: ['reviewerId must name an active user'] },
        ]);
      }
      if (!allows('reviews.decide', reviewer.roles)) {
        throw new InvalidInputError('The reviewer cannot decide review items', [
          {
            field: 'reviewerId',
            problems: ['reviewerId must name a user whose roles include deciding review items'],
          },
        ]);
      }

      const before = this.view(current);
      const updated = returnedRows(
        await manager.query<{ id: string }[]>(
          `UPDATE review_items SET reviewer_id = $3, assigned_reason = $4, updated_at = $5,
              version = version + 1
            WHERE id = $1 AND version = $2 RETURNING id`,
          [id, input.version, input.reviewerId, `reassigned: ${input.reason}`, this.clock.now()],
        ),
      );
      if (updated.length !== 1) throw staleItem(await this.load(manager, id), input.version);
      const after = this.view(await this.load(manager, id));
      await this.audit.record(manager, {
        action: 'review_item.reassigned',
        entityType: 'review_item',
        entityId: id,
        before,
        after: { ...after, reason: input.reason },
      });
      return { item: after, previousReviewer: current.reviewerId };
    });
    await this.events.itemsChanged(item.campaignId, [previousReviewer, item.reviewerId]);
    return item;
  }

  /**
   * Moves a deactivated reviewer's undecided items in open campaigns to the policy's fallback
   * reviewer, or the system owner, with the reason "reviewer inactive". Runs inside the
   * deactivation's transaction.
   * Reminder jobs follow once the deactivation commits.
   */
  private async moveFromInactive(manager: EntityManager, userId: string): Promise<void> {
    const moved = await manager.query<
      { id: string; campaign_id: string; reviewer_id: string | null }[]
    >(
      `UPDATE review_items i
          SET reviewer_id = (
                SELECT c2.id FROM (VALUES (p.fallback_reviewer_id, 1), (s.owner_id, 2)) AS c2 (id, ord)
                  JOIN users u ON u.id = c2.id AND u.active
                 WHERE c2.id IS DISTINCT FROM i.holder_user_id AND c2.id <> $1
                 ORDER BY c2.ord LIMIT 1),
              assigned_reason = 'reviewer inactive', updated_at = $2, version = i.version + 1
         FROM review_campaigns c
         JOIN review_policies p ON p.id = c.policy_id
         JOIN systems s ON s.id = c.system_id
        WHERE c.id = i.campaign_id AND c.status = 'open' AND c.closes_at > $2
          AND i.reviewer_id = $1 AND i.decision IS NULL
        RETURNING i.id, i.campaign_id, i.reviewer_id`,
      [userId, this.clock.now()],
    );
    for (const item of returnedRows(moved)) {
      await this.audit.record(manager, {
        action: 'review_item.reassigned',
        entityType: 'review_item',
        entityId: item.id,
        before: { reviewerId: userId },
        after: this.view(await this.load(manager, item.id)),
      });
    }
    const byCampaign = new Map<string, (string | null)[]>();
    for (const item of returnedRows(moved)) {
      byCampaign.set(item.campaign_id, [
        ...(byCampaign.get(item.campaign_id) ?? [userId]),
        item.reviewer_id,
      ]);
    }
    for (const [campaignId, reviewers] of byCampaign) {
      const registered = this.transactions.afterCommit(manager, () =>
        this.events.itemsChanged(campaignId, reviewers),
      );
      if (!registered) {
        this.logger.warn(
          { userId, campaignId },
          'Reminders of moved review items wait for the next reconciliation',
        );
      }
    }
    if (returnedRows(moved).length > 0) {
      this.logger.log(
        { userId, items: returnedRows(moved).length },
        'Open review items of a deactivated reviewer moved',
      );
    }
  }

  private async decideWithin(
    manager: EntityManager,
    id: string,
    decision: ReviewDecision,
    justification: string | undefined,
    version: number,
    user: CurrentUser,
  ): Promise<ItemView> {
    const current = await this.load(manager, id);
    assertOpen(current, this.clock.now());
    if (current.holderUserId === user.id) throw selfReview(id);
    if (current.reviewerId !== user.id && !user.roles.includes('platform-admin')) {
      throw new DomainError(
        403,
        'REVIEW.NOT_REVIEWER',
        `Review item ${id} is assigned to another reviewer`,
        { itemId: id },
      );
    }
    const snapshot = current.snapshot as {
      privilege?: string;
      purpose?: string;
      holderType?: string;
    };
    const needsJustification =
      decision === 'revoke' ||
      snapshot.privilege === 'admin' ||
      snapshot.privilege === 'privileged' ||
      snapshot.purpose === 'admin' ||
      snapshot.holderType === 'provider';
    if (needsJustification && !justification) {
      throw new InvalidInputError('A justification is required', [
        {
          field: 'justification',
          problems: [
            decision === 'revoke'
              ? 'justification must give the reason for the revoke'
              : 'justification is required to certify an admin or provider account',
          ],
        },
      ]);
    }

    const before = this.view(current);
    // The version check is part of the UPDATE, so of two decisions on one version only one lands.
    const updated = returnedRows(
      await manager.query<{ id: string }[]>(
        `UPDATE review_items SET decision = $3, justification = $4, decided_by = $5,
            decided_at = $6, updated_at = $6, version = version + 1
          WHERE id = $1 AND version = $2 RETURNING id`,
        [id, version, decision, justification ?? null, user.id, this.clock.now()],
      ),
    );
    if (updated.length !== 1) throw staleItem(await this.load(manager, id), version);

    const after = this.view(await this.load(manager, id));
    await this.audit.record(manager, {
      action: decision === 'certify' ? 'review_item.certified' : 'review_item.revoked',
      entityType: 'review_item',
      entityId: id,
      before,
      after,
    });
    return after;
  }

  private async bulkTargets(
    campaignId: string,
    input: BulkDecideItemsDto,
  ): Promise<
    { itemId: string; decision: ReviewDecision; justification?: string; version?: number }[]
  > {
    if ((input.items === undefined) === (input.filter === undefined)) {
      throw new InvalidInputError('Give either items or filter', [
        { field: 'items', problems: ['send exactly one of items and filter'] },
      ]);
    }
    await this.campaigns.get(campaignId);
    if (input.items) return input.items;

    if (!input.decision) {
      throw new InvalidInputError('A decision is required with a filter', [
        { field: 'decision', problems: ['decision is required when items are chosen by filter'] },
      ]);
    }
    const filter = input.filter ?? {};
    // A bulk filter selects only undecided items unless undecidedOnly is false.
    const { conditions, parameters } = itemConditions(campaignId, {
      ...filter,
      decided: filter.undecidedOnly === false ? undefined : false,
    });
    const rows = await this.dataSource.query<{ id: string }[]>(
      `SELECT i.id FROM review_items i WHERE ${conditions.join(' AND ')} ORDER BY i.id`,
      parameters,
    );
    return rows.map((row) => ({
      itemId: row.id,
      decision: input.decision as ReviewDecision,
      justification: input.justification,
    }));
  }

  private async load(manager: EntityManager, id: string): Promise<ItemContext> {
    const [item] = await manager.query<ItemContext[]>(
      `SELECT ${ITEM_COLUMNS}, c.status AS "campaignStatus", c.closes_at AS "closesAt",
              c.system_id AS "systemId", s.owner_id AS "ownerId", c.undecided_action AS "undecidedAction"
         FROM review_items i
         JOIN review_campaigns c ON c.id = i.campaign_id
         JOIN systems s ON s.id = c.system_id
        WHERE i.id = $1`,
      [id],
    );
    if (!item) throw new NotFoundError('Review item', id);
    return item;
  }

  private view(item: ItemContext): ItemView {
    const { campaignStatus, closesAt, systemId: _system, ownerId: _owner, ...row } = item;
    const closed = campaignStatus === 'closed' || closesAt <= this.clock.now();
    const undecidedAction = (item as unknown as { undecidedAction: string }).undecidedAction;
    const { undecidedAction: _action, ...fields } = row as typeof row & {
      undecidedAction?: string;
    };
    return withEffectiveOutcome(fields, {
      effectiveStatus: closed ? 'closed' : 'open',
      undecidedAction,
    });
  }
}

function assertOpen(item: ItemContext, now: Date): void {
  if (item.campaignStatus === 'closed' || item.closesAt <= now) {
    throw new ConflictError(
      'REVIEW.CAMPAIGN_CLOSED',
      `The campaign of review item ${item.id} has closed; its decisions are frozen`,
      { itemId: item.id, campaignId: item.campaignId },
    );
  }
}

function staleItem(current: ItemContext, expected: number): ConflictError {
  return new ConflictError(
    'REVIEW_ITEM.STALE_VERSION',
    `Review item ${current.id} is at version ${current.version}, not ${expected}; reload it to see the current decision`,
    {
      itemId: current.id,
      expectedVersion: expected,
      currentVersion: current.version,
      currentDecision: current.decision,
      decidedBy: current.decidedBy,
    },
  );
}
