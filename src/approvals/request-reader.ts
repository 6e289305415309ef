import { EntityManager } from 'typeorm';

import { NotFoundError } from '../common/errors';
import { judgeEvaluation } from './evaluation';
import type { Answer, EvaluationJudgement } from './evaluation';
import type { RequestStatus } from './approvals.dto';
import { slotsOf } from './slots';
import type { FilledSlot, SlotPolicy } from './slots';

/** Statuses in which a request still moves through review and may be edited. */
export const OPEN_STATUSES: RequestStatus[] = [
  'draft',
  'submitted',
  'in_review',
  'changes_requested',
];
/** Statuses in which approvers may decide. */
export const REVIEWABLE_STATUSES: RequestStatus[] = ['submitted', 'in_review'];

export interface PolicyView {
  id: string;
  criticality: string;
  category: string | null;
  version: number;
  requiredApprovals: number;
  requiredRoles: string[];
  validityDays: number;
  reapprovalNoticeDays: number;
  mandatoryItems: string[];
  defaultMaxAdmins: number;
  createdAt: Date;
  createdBy: string | null;
  supersededAt: Date | null;
}

/** One request row with the system and policy facts the rules need. */
export interface RequestRecord {
  id: string;
  systemId: string;
  systemName: string;
  systemStatus: string;
  deploysSoftware: boolean;
  systemHosts: string[];
  ownerId: string | null;
  ownerManagerId: string | null;
  requesterId: string;
  status: RequestStatus;
  justification: string;
  signingHost: string | null;
  signingHostRemoteAccess: string | null;
  /** The policy the request is judged by: fixed at first submission, the one in force before. */
  policy: PolicyView | null;
  policyFixed: boolean;
  round: number;
  submittedAt: Date | null;
  decidedAt: Date | null;
  approvedUntil: Date | null;
  reapprovalDueAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

export interface AnswerView {
  item: string;
  answer: Answer;
  evidenceText: string | null;
  evidenceUrl: string | null;
  evidenceSha256: string | null;
  details: Record<string, unknown>;
  answeredBy: string | null;
  answeredAt: Date;
}

export interface DecisionView {
  id: string;
  round: number;
  approverId: string;
  decision: string;
  slot: string | null;
  onBehalfOfOwner: boolean;
  overrideReason: string | null;
  comment: string | null;
  decidedAt: Date;
}

export interface RequestView extends Omit<RequestRecord, 'systemHosts' | 'systemStatus'> {
  /** The status as of now: an approval past its end reads `expired` whether or not a job ran. */
  effectiveStatus: RequestStatus | 'expired';
  evaluation: EvaluationJudgement & { answers: AnswerView[] };
  approvals: {
    required: number;
    received: number;
    slots: { slot: string; approverId: string | null; onBehalfOfOwner: boolean }[];
    /** A platform admin approved this round by override, setting the policy aside. */
    overridden: boolean;
  };
  decisions: DecisionView[];
}

const POLICY_COLUMNS = `id, criticality, category, version, required_approvals AS "requiredApprovals",
  required_roles AS "requiredRoles", validity_days AS "validityDays",
  reapproval_notice_days AS "reapprovalNoticeDays", mandatory_items AS "mandatoryItems",
  default_max_admins AS "defaultMaxAdmins", created_at AS "createdAt", created_by AS "createdBy",
  superseded_at AS "supersededAt"`;

export function policyColumns(alias: string): string {
  return POLICY_COLUMNS.replace(/(^|,\s*)(\w+)/g, `$1${alias}.$2`);
}

/** Returns the policy in force for a system; one for its category wins over one for its criticality. */
export async function policyInForce(
  manager: EntityManager,
  criticality: string,
  category: string,
): Promise<PolicyView | null> {
  const [policy] = await manager.query<PolicyView[]>(
    `SELECT ${POLICY_COLUMNS} FROM approval_policies
      WHERE criticality = $1 AND superseded_at IS NULL AND (category IS NULL OR category = $2)
      ORDER BY category NULLS LAST LIMIT 1`,
    [criticality, category],
  );
  return policy ?? null;
}

export async function policyById(manager: EntityManager, id: string): Promise<PolicyView> {
  const [policy] = await manager.query<PolicyView[]>(
    `SELECT ${POLICY_COLUMNS} FROM approval_policies WHERE id = $1`,
    [id],
  );
  return policy;
}

/** Reads a request with its system facts; `lock` takes the row for the rest of the transaction. */
export async function loadRequest(
  manager: EntityManager,
  id: string,
  lock = false,
): Promise<RequestRecord> {
  const [row] = await manager.query<
    (Omit<RequestRecord, 'policy' | 'policyFixed' | 'systemHosts'> & {
      policyId: string | null;
      hosts: { hostname: string; address?: string }[];
      criticality: string;
      category: string;
    })[]
  >(
    `SELECT r.id, r.system_id AS "systemId", s.name AS "systemName",
            s.lifecycle_status AS "systemStatus", s.deploys_software AS "deploysSoftware",
            s.hosts, s.criticality, s.category, s.owner_id AS "ownerId",
            o.manager_id AS "ownerManagerId", r.requester_id AS "requesterId", r.status,
            r.justification, r.signing_host AS "signingHost",
            r.signing_host_remote_access AS "signingHostRemoteAccess", r.policy_id AS "policyId",
            r.round, r.submitted_at AS "submittedAt", r.decided_at AS "decidedAt",
            r.approved_until AS "approvedUntil", r.reapproval_due_at AS "reapprovalDueAt",
            r.created_at AS "createdAt", r.updated_at AS "updatedAt", r.version
       FROM tool_requests r
       JOIN systems s ON s.id = r.system_id
       LEFT JOIN users o ON o.id = s.owner_id
      WHERE r.id = $1 ${lock ? 'FOR UPDATE OF r' : ''}`,
    [id],
  );
  if (!row) throw new NotFoundError('Tool request', id);

  const { policyId, hosts, criticality, category, ...rest } = row;
  const policy = policyId
    ? await policyById(manager, policyId)
    : await policyInForce(manager, criticality, category);
  return {
    ...rest,
    systemHosts: hosts.flatMap((host) => [host.hostname, host.address ?? []].flat()),
    policy,
    policyFixed: policyId !== null,
  };
}

export function slotPolicyOf(request: RequestRecord): SlotPolicy {
  return {
    requiredApprovals: request.policy?.requiredApprovals ?? 1,
    requiredRoles: request.policy?.requiredRoles ?? [],
    requesterId: request.requesterId,
    ownerId: request.ownerId,
    ownerManagerId: request.ownerManagerId,
  };
}

export async function loadAnswers(
  manager: EntityManager,
  requestId: string,
): Promise<AnswerView[]> {
  return manager.query<AnswerView[]>(
    `SELECT item, answer, evidence_text AS "evidenceText", evidence_url AS "evidenceUrl",
            evidence_sha256 AS "evidenceSha256", details, answered_by AS "answeredBy",
            answered_at AS "answeredAt"
       FROM evaluation_answers WHERE request_id = $1 ORDER BY item`,
    [requestId],
  );
}

export async function loadDecisions(
  manager: EntityManager,
  requestId: string,
): Promise<DecisionView[]> {
  return manager.query<DecisionView[]>(
    `SELECT id, round, approver_id AS "approverId", decision, slot,
            on_behalf_of_owner AS "onBehalfOfOwner", override_reason AS "overrideReason", comment,
            decided_at AS "decidedAt"
       FROM approval_decisions WHERE request_id = $1 ORDER BY decided_at, id`,
    [requestId],
  );
}

export function judge(request: RequestRecord, answers: AnswerView[]): EvaluationJudgement {
  return judgeEvaluation(
    {
      deploysSoftware: request.deploysSoftware,
      systemHosts: request.systemHosts,
      signingHost: request.signingHost,
      mandatoryItems: request.policy?.mandatoryItems ?? [],
    },
    answers,
  );
}

export function approvalsOfRound(decisions: DecisionView[], round: number): FilledSlot[] {
  return decisions
    .filter((d) => d.round === round && d.decision === 'approve' && d.slot !== null)
    .map((d) => ({ approverId: d.approverId, slot: d.slot as string }));
}

export function effectiveStatus(request: RequestRecord, now: Date): RequestView['effectiveStatus'] {
  const approved = request.status === 'approved' || request.status === 'reapproval_due';
  if (approved && request.approvedUntil && request.approvedUntil <= now) return 'expired';
  if (request.status === 'approved' && request.reapprovalDueAt && request.reapprovalDueAt <= now) {
    return 'reapproval_due';
  }
  return request.status;
}

/** Builds the whole request as of now, which is also the state each audit event of a request records. */
export async function requestView(
  manager: EntityManager,
  id: string,
  now: Date,
  loaded?: RequestRecord,
): Promise<RequestView> {
  const request = loaded ?? (await loadRequest(manager, id));
  const [answers, decisions] = await Promise.all([
    loadAnswers(manager, id),
    loadDecisions(manager, id),
  ]);
  const { systemHosts: _hosts, systemStatus: _status, ...fields } = request;

  const filled = approvalsOfRound(decisions, request.round);
  const remaining = [...filled];
  const slots = slotsOf(slotPolicyOf(request)).map((slot) => {
    const index = remaining.findIndex((f) => f.slot === slot);
    const taken = index >= 0 ? remaining.splice(index, 1)[0] : null;
    const decision = taken
      ? decisions.find((d) => d.round === request.round && d.approverId === taken.approverId)
      : undefined;
    return {
      slot,
      approverId: taken?.approverId ?? null,
      onBehalfOfOwner: decision?.onBehalfOfOwner ?? false,
    };
  });
  return {
    ...fields,
    effectiveStatus: effectiveStatus(request, now),
    evaluation: { ...judge(request, answers), answers },
    approvals: {
      required: request.policy?.requiredApprovals ?? 1,
      received: filled.length,
      slots,
      overridden: decisions.some((d) => d.round === request.round && d.overrideReason !== null),
    },
    decisions,
  };
}
