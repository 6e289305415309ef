import { EntityManager } from 'typeorm';

import { RuleViolationError } from '../common/errors';

/** Admin cap used when neither the system nor a policy in force names one. */
export const FALLBACK_MAX_ADMINS = 2;

export interface SystemApproval {
  approved: boolean;
  requestId: string | null;
  approvedUntil: Date | null;
}

/**
 * Reads whether a system is approved at `now`. Only an approval reached through the tool approval
 * workflow counts, and an approval past its expiry fails here whether or not a job moved it.
 */
export async function systemApproval(
  manager: EntityManager,
  systemId: string,
  now: Date,
): Promise<SystemApproval> {
  const [row] = await manager.query<{ id: string; approved_until: Date }[]>(
    `SELECT id, approved_until FROM tool_requests
      WHERE system_id = $1 AND status IN ('approved', 'reapproval_due')
      ORDER BY approved_until DESC LIMIT 1`,
    [systemId],
  );
  if (!row) return { approved: false, requestId: null, approvedUntil: null };
  return {
    approved: row.approved_until.getTime() > now.getTime(),
    requestId: row.id,
    approvedUntil: row.approved_until,
  };
}

/** Refuses with 422 `APPROVAL.SYSTEM_NOT_APPROVED` unless the system is approved at `now`. */
export async function assertSystemApproved(
  manager: EntityManager,
  systemId: string,
  now: Date,
): Promise<void> {
  const approval = await systemApproval(manager, systemId, now);
  if (!approval.approved) {
    throw new RuleViolationError(
      'APPROVAL.SYSTEM_NOT_APPROVED',
      approval.requestId
        ? `system ${systemId} has an approval that expired at ${approval.approvedUntil?.toISOString()}`
        : `system ${systemId} has not been approved through the tool approval workflow`,
      { systemId, approvedUntil: approval.approvedUntil },
    );
  }
}

/**
 * Returns the admin cap of a system: its own `max_admins`, else the default of the approval policy
 * in force for its criticality (a category-specific policy wins), else {@link FALLBACK_MAX_ADMINS}.
 */
export async function effectiveMaxAdmins(
  manager: EntityManager,
  systemId: string,
): Promise<number> {
  const [row] = await manager.query<{ cap: number }[]>(
    `SELECT coalesce(s.max_admins, (
              SELECT p.default_max_admins FROM approval_policies p
               WHERE p.criticality = s.criticality AND p.superseded_at IS NULL
                 AND (p.category IS NULL OR p.category = s.category)
               ORDER BY p.category NULLS LAST LIMIT 1), $2)::int AS cap
       FROM systems s WHERE s.id = $1`,
    [systemId, FALLBACK_MAX_ADMINS],
  );
  return row?.cap ?? FALLBACK_MAX_ADMINS;
}
