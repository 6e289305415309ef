import { Inject, Injectable, Logger } from '@nestjs/common';
import { EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import {
  ConflictError,
  DomainError,
  InvalidInputError,
  RuleViolationError,
} from '../common/errors';
import type { CurrentUser } from '../common/request-context';
import { Transactions } from '../common/transactions';
import { isUniqueViolation } from '../common/unique-violation';
import { requireSignedInUser } from '../common/request-context';
import { NotificationsService, PublishedEvent } from '../notifications/notifications.service';
import { requestNotice } from './approval-notices';
import type { BulkDecideDto, DecideDto, OverrideDto } from './approvals.dto';
import {
  approvalsOfRound,
  judge,
  loadAnswers,
  loadDecisions,
  loadRequest,
  RequestRecord,
  RequestView,
  requestView,
  REVIEWABLE_STATUSES,
  slotPolicyOf,
} from './request-reader';
import { assignSlot, isSatisfied, mayFill, rejectionIsBinding, slotsOf } from './slots';
import type { SlotRefusal } from './slots';

const DAY_MS = 86_400_000;

export interface BulkDecisionResult {
  requestId: string;
  statusCode: number;
  code: string | null;
  message: string | null;
  status: RequestView['effectiveStatus'] | null;
}

const REFUSALS: Record<SlotRefusal, (id: string) => DomainError> = {
  SELF_APPROVAL: (id) =>
    new DomainError(403, 'APPROVAL.SELF_APPROVAL', `The requester of ${id} cannot decide on it`, {
      requestId: id,
    }),
  ALREADY_DECIDED: (id) =>
    new ConflictError(
      'APPROVAL.ALREADY_DECIDED',
      `You have already decided on tool request ${id} in this round`,
      { requestId: id },
    ),
  NOT_ELIGIBLE: (id) =>
    new DomainError(
      403,
      'APPROVAL.NOT_ELIGIBLE',
      `You hold no approval slot of the policy that governs tool request ${id}`,
      { requestId: id },
    ),
  NO_OPEN_SLOT: (id) =>
    new ConflictError(
      'APPROVAL.NO_OPEN_SLOT',
      `Every approval slot you could fill on tool request ${id} is taken`,
      { requestId: id },
    ),
};

/**
 * Approver decisions on tool requests. The request row is locked for each decision, so two
 * approvals arriving together are counted one after the other and the request is approved once.
 */
@Injectable()
export class ApprovalDecisionsService {
  private readonly logger = new Logger('ApprovalDecisions');

  constructor(
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(NotificationsService) private readonly notifications: NotificationsService,
  ) {}

  async decide(id: string, input: DecideDto): Promise<RequestView> {
    const user = requireSignedInUser();
    const published: (PublishedEvent | null)[] = [];
    const view = await this.transactions.run((manager) =>
      this.decideWithin(manager, id, input, user, published),
    );
    await this.notifications.queueDeliveries(published);
    return view;
  }

  /** Decides each listed request on its own, with the same rules as the single route. */
  async decideMany(input: BulkDecideDto): Promise<{ results: BulkDecisionResult[] }> {
    const results: BulkDecisionResult[] = [];
    for (const item of input.items) {
      try {
        const view = await this.decide(item.requestId, item);
        results.push({
          requestId: item.requestId,
          statusCode: 200,
          code: null,
          message: null,
          status: view.effectiveStatus,
        });
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        results.push({
          requestId: item.requestId,
          statusCode: error.status,
          code: error.code,
          message: error.message,
          status: null,
        });
      }
    }
    return { results };
  }

  /**
   * Approves a request outside the policy's slots, for emergencies. It needs its own permission
   * and a reason, never serves the requester, and its audit event records that the policy was set aside.
   */
  async override(id: string, input: OverrideDto): Promise<RequestView> {
    const user = requireSignedInUser();
    const published: (PublishedEvent | null)[] = [];
    const view = await this.transactions.run(async (manager) => {
      const request = await loadRequest(manager, id, true);
      if (request.requesterId === user.id) throw REFUSALS.SELF_APPROVAL(id);
      assertReviewable(request, ['submitted', 'in_review', 'changes_requested']);
      const now = this.clock.now();
      const before = await requestView(manager, id, now, request);

      await manager.query(
        `INSERT INTO approval_decisions (request_id, round, approver_id, decision, slot,
            override_reason, decided_at)
         VALUES ($1, $2, $3, 'approve', NULL, $4, $5)
         ON CONFLICT (request_id, round, approver_id) DO UPDATE
           SET decision = 'approve', override_reason = EXCLUDED.override_reason,
               decided_at = EXCLUDED.decided_at`,
        [id, request.round, user.id, input.reason, now],
      );
      await this.markApproved(manager, request, now);
      const after = await requestView(manager, id, now);
      await this.audit.record(manager, {
        action: 'tool_request.approved_by_override',
        entityType: 'tool_request',
        entityId: id,
        before,
        after: {
          ...after,
          policyOverridden: true,
          overrideReason: input.reason,
          failingEvaluationItems: after.evaluation.items
            .filter((item) => item.problem !== null)
            .map((item) => item.item),
        },
      });
      const approved = await loadRequest(manager, id);
      published.push(
        await this.notifications.publishIn(
          manager,
          requestNotice(approved, 'approved', [approved.requesterId, approved.ownerId], {
            override: true,
          }),
        ),
      );
      return after;
    });
    await this.notifications.queueDeliveries(published);
    return view;
  }

  /**
   * Moves approvals whose re-approval date has come to `reapproval_due` and notifies the owner.
   * A job scheduler runs it. Reads compute the same status, so a late run changes nothing a
   * reader sees.
   */
  async markReapprovalDue(): Promise<{ marked: number }> {
    const now = this.clock.now();
    const published: (PublishedEvent | null)[] = [];
    const marked = await this.transactions.run(async (manager) => {
      const due = await manager.query<{ id: string }[]>(
        `SELECT id FROM tool_requests
          WHERE status = 'approved' AND reapproval_due_at <= $1
          ORDER BY reapproval_due_at FOR UPDATE SKIP LOCKED`,
        [now],
      );
      for (const { id } of due) {
        const request = await loadRequest(manager, id);
        const before = await requestView(manager, id, now, request);
        await manager.query(
          `UPDATE tool_requests SET status = 'reapproval_due', updated_at = $2,
              version = version + 1 WHERE id = $1`,
          [id, now],
        );
        await this.audit.record(manager, {
          action: 'tool_request.reapproval_due',
          entityType: 'tool_request',
          entityId: id,
          before,
          after: await requestView(manager, id, now),
        });
        published.push(
          await this.notifications.publishIn(
            manager,
            requestNotice(request, 'reapproval-due', [request.ownerId, request.requesterId]),
          ),
        );
      }
      return due.length;
    });
    await this.notifications.queueDeliveries(published);
    if (marked > 0) this.logger.log({ marked }, 'Approvals moved to re-approval due');
    return { marked };
  }

  private async decideWithin(
    manager: EntityManager,
    id: string,
    input: DecideDto,
    user: CurrentUser,
    published: (PublishedEvent | null)[],
  ): Promise<RequestView> {
    if (input.decision !== 'approve' && !input.comment) {
      throw new InvalidInputError('A comment is required', [
        {
          field: 'comment',
          problems: [`comment must tell the requester why when the decision is ${input.decision}`],
        },
      ]);
    }
    const request = await loadRequest(manager, id, true);
    if (request.requesterId === user.id) throw REFUSALS.SELF_APPROVAL(id);
    assertReviewable(request, REVIEWABLE_STATUSES);
    const now = this.clock.now();
    const policy = slotPolicyOf(request);
    const approver = { id: user.id, roles: user.roles };
    const decisions = await loadDecisions(manager, id);
    const filled = approvalsOfRound(decisions, request.round);
    if (decisions.some((d) => d.round === request.round && d.approverId === user.id)) {
      throw REFUSALS.ALREADY_DECIDED(id);
    }

    let slot: string | null = null;
    let onBehalfOfOwner = false;
    if (input.decision === 'approve') {
      const assignment = assignSlot(policy, filled, approver);
      if (!assignment.ok) throw REFUSALS[assignment.refusal](id);
      const judgement = judge(request, await loadAnswers(manager, id));
      if (!judgement.passing) {
        const failing = judgement.items.filter((item) => item.problem !== null);
        throw new RuleViolationError(
          'APPROVAL.EVALUATION_FAILED',
          `The security evaluation does not pass: ${failing.map((i) => `${i.item} (${i.problem})`).join('; ')}`,
          { items: failing.map((i) => ({ item: i.item, problem: i.problem })) },
        );
      }
      slot = assignment.slot;
      onBehalfOfOwner = assignment.onBehalfOfOwner;
    } else if (!slotsOf(policy).some((s) => mayFill(policy, approver, s))) {
      throw REFUSALS.NOT_ELIGIBLE(id);
    }

    const before = await requestView(manager, id, now, request);
    try {
      await manager.query(
        `INSERT INTO approval_decisions (request_id, round, approver_id, decision, slot,
            on_behalf_of_owner, comment, decided_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          id,
          request.round,
          user.id,
          input.decision,
          slot,
          onBehalfOfOwner,
          input.comment ?? null,
          now,
        ],
      );
    } catch (error) {
      if (isUniqueViolation(error, 'approval_decisions_request_id_round_approver_id_key')) {
        throw REFUSALS.ALREADY_DECIDED(id);
      }
      throw error;
    }

    let outcome: 'approved' | 'rejected' | 'changes-requested' | null = null;
    if (input.decision === 'approve') {
      const nowFilled = [...filled, { approverId: user.id, slot: slot as string }];
      if (isSatisfied(policy, nowFilled)) {
        await this.markApproved(manager, request, now);
        outcome = 'approved';
      } else {
        await this.setStatus(manager, id, 'in_review', now, false);
      }
    } else if (input.decision === 'reject' && rejectionIsBinding(policy, approver)) {
      await this.setStatus(manager, id, 'rejected', now, true);
      outcome = 'rejected';
    } else if (input.decision === 'request-changes') {
      await this.setStatus(manager, id, 'changes_requested', now, false);
      outcome = 'changes-requested';
    } else {
      await this.setStatus(manager, id, 'in_review', now, false);
    }

    const after = await requestView(manager, id, now);
    await this.audit.record(manager, {
      action: `tool_request.${input.decision === 'approve' ? 'approval' : input.decision === 'reject' ? 'rejection' : 'changes_request'}_recorded`,
      entityType: 'tool_request',
      entityId: id,
      before,
      after,
    });
    if (outcome) {
      const current = await loadRequest(manager, id);
      published.push(
        await this.notifications.publishIn(
          manager,
          requestNotice(current, outcome, [current.requesterId, current.ownerId]),
        ),
      );
    }
    return after;
  }

  private async markApproved(
    manager: EntityManager,
    request: RequestRecord,
    now: Date,
  ): Promise<void> {
    const validityDays = request.policy?.validityDays ?? 365;
    const noticeDays = request.policy?.reapprovalNoticeDays ?? 0;
    const approvedUntil = new Date(now.getTime() + validityDays * DAY_MS);
    const reapprovalDueAt = new Date(approvedUntil.getTime() - noticeDays * DAY_MS);
    await manager.query(
      `UPDATE tool_requests SET status = 'approved', decided_at = $2, approved_until = $3,
          reapproval_due_at = $4, updated_at = $2, version = version + 1
        WHERE id = $1`,
      [request.id, now, approvedUntil, reapprovalDueAt],
    );
  }

  private async setStatus(
    manager: EntityManager,
    id: string,
    status: string,
    now: Date,
    final: boolean,
  ): Promise<void> {
    await manager.query(
      `UPDATE tool_requests SET status = $2, decided_at = CASE WHEN $3 THEN $4 ELSE decided_at END,
          updated_at = $4, version = version + 1 WHERE id = $1`,
      [id, status, final, now],
    );
  }
}

function assertReviewable(request: RequestRecord, allowed: string[]): void {
  if (allowed.includes(request.status)) return;
  const decided = ['approved', 'reapproval_due', 'rejected', 'withdrawn'].includes(request.status);
  throw new ConflictError(
    decided ? 'APPROVAL.ALREADY_FINAL' : 'APPROVAL.NOT_IN_REVIEW',
    `Tool request ${request.id} is ${request.status}; decisions are taken only while it is submitted or in review`,
    { status: request.status },
  );
}
