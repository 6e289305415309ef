import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import {
  ConflictError,
  DomainError,
  InvalidInputError,
  NotFoundError,
  RuleViolationError,
  StaleVersionError,
} from '../common/errors';
import { Page, toPage } from '../common/pagination';
import { Transactions } from '../common/transactions';
import { isUniqueViolation } from '../common/unique-violation';
import { requireSignedInUser } from '../common/request-context';
import { NotificationsService, PublishedEvent } from '../notifications/notifications.service';
import { approverRecipients, requestNotice } from './approval-notices';
import type {
  AnswerDto,
  CreateRequestDto,
  RequestListQuery,
  UpdateRequestDto,
} from './approvals.dto';
import { EVALUATION_ITEMS } from './evaluation';
import type { EvaluationItem, EvaluationItemDefinition } from './evaluation';
import {
  loadAnswers,
  loadRequest,
  judge,
  OPEN_STATUSES,
  REVIEWABLE_STATUSES,
  RequestRecord,
  RequestView,
  requestView,
} from './request-reader';
import { systemApproval } from './system-approval';

const MAX_DETAIL_KEYS = 20;
const MAX_DETAIL_LENGTH = 500;

export interface SystemApprovalView {
  systemId: string;
  approved: boolean;
  requestId: string | null;
  approvedUntil: Date | null;
  status: RequestView['effectiveStatus'] | 'never-approved';
}

/**
 * The tool request lifecycle up to review: draft, edit, evaluate, submit, withdraw. Decisions are
 * in {@link ApprovalDecisionsService}. Every change and its audit event share one transaction.
 */
@Injectable()
export class ToolRequestsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(NotificationsService) private readonly notifications: NotificationsService,
  ) {}

  async list(query: RequestListQuery): Promise<Page<RequestView>> {
    const conditions: string[] = [];
    const parameters: unknown[] = [];
    const add = (sql: string, value: unknown): void => {
      parameters.push(value);
      conditions.push(sql.replaceAll('?', `$${parameters.length}`));
    };
    if (query.status) add('r.status = ?', query.status);
    if (query.systemId) add('r.system_id = ?', query.systemId);
    if (query.awaitingMe) {
      add(
        `r.status IN ('submitted', 'in_review') AND r.requester_id <> ? AND NOT EXISTS (
           SELECT 1 FROM approval_decisions d
            WHERE d.request_id = r.id AND d.round = r.round AND d.approver_id = ?)`,
        requireSignedInUser().id,
      );
    }
    parameters.push(query.limit + 1, query.offset);
    const rows = await this.dataSource.query<{ id: string }[]>(
      `SELECT r.id FROM tool_requests r
        ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''}
        ORDER BY r.created_at ${query.order === 'desc' ? 'DESC' : 'ASC'}, r.id
        LIMIT $${parameters.length - 1} OFFSET $${parameters.length}`,
      parameters,
    );
    const now = this.clock.now();
    const views = await Promise.all(
      rows.map((row) => requestView(this.dataSource.manager, row.id, now)),
    );
    return toPage(views, query);
  }

  get(id: string): Promise<RequestView> {
    return requestView(this.dataSource.manager, id, this.clock.now());
  }

  async systemStatus(systemId: string): Promise<SystemApprovalView> {
    const manager = this.dataSource.manager;
    const [system] = await manager.query<{ id: string }[]>(`SELECT id FROM systems WHERE id = $1`, [
      systemId,
    ]);
    if (!system) throw new NotFoundError('System', systemId);
    const now = this.clock.now();
    const approval = await systemApproval(manager, systemId, now);
    const status = approval.requestId
      ? (await requestView(manager, approval.requestId, now)).effectiveStatus
      : 'never-approved';
    return { systemId, ...approval, status };
  }

  async create(input: CreateRequestDto): Promise<RequestView> {
    const user = requireSignedInUser();
    return this.transactions.run(async (manager) => {
      const [system] = await manager.query<{ lifecycle_status: string }[]>(
        `SELECT lifecycle_status FROM systems WHERE id = $1 FOR SHARE`,
        [input.systemId],
      );
      if (!system) {
        throw new DomainError(404, 'SYSTEM.NOT_FOUND', `System ${input.systemId} was not found`, {
          field: 'systemId',
        });
      }
      if (system.lifecycle_status === 'retired') {
        throw new RuleViolationError(
          'APPROVAL.SYSTEM_RETIRED',
          `System ${input.systemId} is retired; a retired system cannot be approved`,
          { systemId: input.systemId },
        );
      }

      const now = this.clock.now();
      let id: string;
      try {
        [{ id }] = await manager.query<{ id: string }[]>(
          `INSERT INTO tool_requests (system_id, requester_id, status, justification, signing_host,
              signing_host_remote_access, created_at, updated_at)
           VALUES ($1, $2, 'draft', $3, $4, $5, $6, $6) RETURNING id`,
          [
            input.systemId,
            user.id,
            input.justification,
            input.signingHost ?? null,
            input.signingHostRemoteAccess ?? null,
            now,
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error, 'tool_requests_open_key')) {
          const [open] = await this.dataSource.query<{ id: string }[]>(
            `SELECT id FROM tool_requests WHERE system_id = $1
               AND status IN ('draft', 'submitted', 'in_review', 'changes_requested')`,
            [input.systemId],
          );
          throw new ConflictError(
            'APPROVAL.REQUEST_OPEN',
            `System ${input.systemId} already has a tool request in progress; continue that one`,
            { systemId: input.systemId, requestId: open?.id ?? null },
          );
        }
        throw error;
      }

      const view = await requestView(manager, id, now);
      await this.audit.record(manager, {
        action: 'tool_request.created',
        entityType: 'tool_request',
        entityId: id,
        before: null,
        after: view,
      });
      return view;
    });
  }

  /**
   * Edits a request. Who may act is decided from the request as edited: slots and mandatory items
   * are computed from the current values at every decision, and an edit while approvers are at
   * work resets their approvals to a new round.
   */
  async update(id: string, input: UpdateRequestDto): Promise<RequestView> {
    return this.change(id, input.version, 'tool_request.updated', async (manager, request) => {
      await manager.query(
        `UPDATE tool_requests SET justification = coalesce($2, justification),
            signing_host = coalesce($3, signing_host),
            signing_host_remote_access = coalesce($4, signing_host_remote_access)
          WHERE id = $1`,
        [
          request.id,
          input.justification ?? null,
          input.signingHost ?? null,
          input.signingHostRemoteAccess ?? null,
        ],
      );
    });
  }

  async answer(id: string, item: string, input: AnswerDto): Promise<RequestView> {
    if (!(item in EVALUATION_ITEMS)) {
      throw new InvalidInputError('Unknown evaluation item', [
        {
          field: 'item',
          problems: [`item must be one of ${Object.keys(EVALUATION_ITEMS).join(', ')}`],
        },
      ]);
    }
    const details = checkedDetails(input.details);
    const definition: EvaluationItemDefinition = EVALUATION_ITEMS[item as EvaluationItem];
    const missing = definition.requiredDetails.filter((key) => !details[key]);
    if (input.answer === 'yes' && missing.length > 0) {
      // A "yes" without its facts could never pass review, so it is rejected here, not at approval.
      throw new InvalidInputError(
        `A yes to ${item} needs ${missing.join(' and ')}`,
        missing.map((key) => ({
          field: `details.${key}`,
          problems: [`details.${key} is required when ${item} is answered yes`],
        })),
      );
    }
    return this.change(
      id,
      input.version,
      'tool_request.evaluation_answered',
      async (manager, request, user) => {
        if (input.evidenceSha256) {
          const [file] = await manager.query<{ sha256: string }[]>(
            `SELECT sha256 FROM evidence_files WHERE sha256 = $1`,
            [input.evidenceSha256],
          );
          if (!file) {
            throw new InvalidInputError('Unknown evidence file', [
              {
                field: 'evidenceSha256',
                problems: ['no uploaded evidence file has this SHA-256; upload it first'],
              },
            ]);
          }
        }
        await manager.query(
          `INSERT INTO evaluation_answers (request_id, item, answer, evidence_text, evidence_url,
              evidence_sha256, details, answered_by, answered_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (request_id, item) DO UPDATE SET answer = EXCLUDED.answer,
              evidence_text = EXCLUDED.evidence_text, evidence_url = EXCLUDED.evidence_url,
              evidence_sha256 = EXCLUDED.evidence_sha256, details = EXCLUDED.details,
              answered_by = EXCLUDED.answered_by, answered_at = EXCLUDED.answered_at`,
          [
            request.id,
            item as EvaluationItem,
            input.answer,
            input.evidenceText ?? null,
            input.evidenceUrl ?? null,
            input.evidenceSha256 ?? null,
            JSON.stringify(details),
            user.id,
            this.clock.now(),
          ],
        );
      },
      // Security approvers evaluate; the owner attests facts of their own system.
      (request, user) => user.roles.includes('security-approver') || request.ownerId === user.id,
    );
  }

  async submit(id: string, version: number | undefined): Promise<RequestView> {
    const published: (PublishedEvent | null)[] = [];
    const view = await this.transactions.run(async (manager) => {
      const request = await loadRequest(manager, id, true);
      const user = requireSignedInUser();
      assertRequesterSide(request, user);
      assertVersion(request, version);
      if (request.status !== 'draft' && request.status !== 'changes_requested') {
        throw new ConflictError(
          'APPROVAL.NOT_SUBMITTABLE',
          `Tool request ${id} is ${request.status}; only a draft or a request with changes requested can be submitted`,
          { status: request.status },
        );
      }
      if (!request.policy) {
        throw new RuleViolationError(
          'APPROVAL.NO_POLICY',
          `No approval policy is in force for system ${request.systemId}; a platform admin must publish one`,
        );
      }
      const judgement = judge(request, await loadAnswers(manager, id));
      if (!judgement.complete) {
        const missing = judgement.items.filter((i) => i.mandatory && i.answer === null);
        throw new RuleViolationError(
          'APPROVAL.EVALUATION_INCOMPLETE',
          `The security evaluation lacks mandatory items: ${missing.map((i) => i.item).join(', ')}`,
          { items: missing.map((i) => i.item) },
        );
      }

      const before = await requestView(manager, id, this.clock.now(), request);
      const now = this.clock.now();
      const resubmission = request.status === 'changes_requested';
      // The policy version in force at the first submission keeps judging the request.
      await manager.query(
        `UPDATE tool_requests SET status = 'submitted', policy_id = coalesce(policy_id, $2),
            submitted_at = $3, round = round + $4, updated_at = $3, version = version + 1
          WHERE id = $1`,
        [id, request.policy.id, now, resubmission ? 1 : 0],
      );
      const after = await requestView(manager, id, now);
      await this.audit.record(manager, {
        action: resubmission ? 'tool_request.resubmitted' : 'tool_request.submitted',
        entityType: 'tool_request',
        entityId: id,
        before,
        after,
      });
      const submitted = await loadRequest(manager, id);
      published.push(
        await this.notifications.publishIn(
          manager,
          requestNotice(submitted, 'submitted', await approverRecipients(manager, submitted)),
        ),
      );
      return after;
    });
    await this.notifications.queueDeliveries(published);
    return view;
  }

  async withdraw(id: string, version: number | undefined): Promise<RequestView> {
    return this.transactions.run(async (manager) => {
      const request = await loadRequest(manager, id, true);
      const user = requireSignedInUser();
      assertRequesterSide(request, user);
      assertVersion(request, version);
      if (!OPEN_STATUSES.includes(request.status)) {
        throw new ConflictError(
          'APPROVAL.NOT_WITHDRAWABLE',
          `Tool request ${id} is ${request.status}; only a request in progress can be withdrawn`,
          { status: request.status },
        );
      }
      const now = this.clock.now();
      const before = await requestView(manager, id, now, request);
      await manager.query(
        `UPDATE tool_requests SET status = 'withdrawn', decided_at = $2, updated_at = $2,
            version = version + 1 WHERE id = $1`,
        [id, now],
      );
      const after = await requestView(manager, id, now);
      await this.audit.record(manager, {
        action: 'tool_request.withdrawn',
        entityType: 'tool_request',
        entityId: id,
        before,
        after,
      });
      return after;
    });
  }

  /**
   * Applies an edit to an open request. An edit during review opens a new round, so approvals
   * given to the old content no longer count; the audit event contains the request before and after.
   */
  private async change(
    id: string,
    version: number | undefined,
    action: string,
    apply: (
      manager: EntityManager,
      request: RequestRecord,
      user: { id: string; roles: string[] },
    ) => Promise<void>,
    mayAlsoEdit: (request: RequestRecord, user: { id: string; roles: string[] }) => boolean = () =>
      false,
  ): Promise<RequestView> {
    return this.transactions.run(async (manager) => {
      const request = await loadRequest(manager, id, true);
      const user = requireSignedInUser();
      if (!mayAlsoEdit(request, user)) assertRequesterSide(request, user);
      assertVersion(request, version);
      if (!OPEN_STATUSES.includes(request.status)) {
        throw new ConflictError(
          'APPROVAL.NOT_EDITABLE',
          `Tool request ${id} is ${request.status} and can no longer be edited`,
          { status: request.status },
        );
      }

      const now = this.clock.now();
      const before = await requestView(manager, id, now, request);
      await apply(manager, request, user);
      const [{ decided }] = await manager.query<{ decided: number }[]>(
        `SELECT count(*)::int AS decided FROM approval_decisions WHERE request_id = $1 AND round = $2`,
        [id, request.round],
      );
      const reset = REVIEWABLE_STATUSES.includes(request.status) && decided > 0;
      await manager.query(
        `UPDATE tool_requests SET updated_at = $2, version = version + 1,
            round = round + $3, status = CASE WHEN $3 = 1 THEN 'submitted' ELSE status END
          WHERE id = $1`,
        [id, now, reset ? 1 : 0],
      );
      const after = await requestView(manager, id, now);
      await this.audit.record(manager, {
        action: reset ? `${action}.approvals_reset` : action,
        entityType: 'tool_request',
        entityId: id,
        before,
        after,
      });
      return after;
    });
  }
}

/** Raises 403 unless the caller is the requester or a platform admin acting for them. */
function assertRequesterSide(request: RequestRecord, user: { id: string; roles: string[] }): void {
  if (user.id === request.requesterId || user.roles.includes('platform-admin')) return;
  throw new DomainError(
    403,
    'APPROVAL.NOT_REQUESTER',
    `Only the requester of tool request ${request.id} may change it`,
    { requestId: request.id },
  );
}

function assertVersion(request: RequestRecord, version: number | undefined): void {
  if (version !== undefined && version !== request.version) {
    throw new StaleVersionError('tool_request', request.id, version, request.version);
  }
}

function checkedDetails(details: Record<string, unknown> | undefined): Record<string, string> {
  const entries = Object.entries(details ?? {});
  const problems = entries
    .filter(([, value]) => typeof value !== 'string' || value.length > MAX_DETAIL_LENGTH)
    .map(([key]) => ({
      field: `details.${key}`,
      problems: [`details.${key} must be a string of at most ${MAX_DETAIL_LENGTH} characters`],
    }));
  if (entries.length > MAX_DETAIL_KEYS) {
    problems.push({
      field: 'details',
      problems: [`details takes at most ${MAX_DETAIL_KEYS} keys`],
    });
  }
  if (problems.length > 0) throw new InvalidInputError('Invalid evaluation details', problems);
  return Object.fromEntries(entries) as Record<string, string>;
}
