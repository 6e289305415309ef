/** SQL shared by the campaign and item services. */

/** Accounts an admin-scope campaign reviews; a standard-scope campaign reviews the others. */
export const ADMIN_ACCOUNT = `(a.privilege IN ('admin', 'privileged') OR a.purpose = 'admin')`;

export function scopeCondition(scope: string): string {
  if (scope === 'admin') return ADMIN_ACCOUNT;
  if (scope === 'standard') return `NOT ${ADMIN_ACCOUNT}`;
  return 'true';
}

/**
 * Picks the reviewer of each account in this order: the rule's reviewer, the holder's manager
 * (when the rule's reviewer is the holder), the fallback reviewer, the system owner. Only active
 * users qualify, and never the holder. Parameters: $1 reviewer rule, $2 fallback reviewer id.
 */
export const REVIEWER_PICK = `
  CROSS JOIN LATERAL (
    SELECT CASE WHEN $1 = 'system-owner' OR a.holder_type IS DISTINCT FROM 'user'
                THEN s.owner_id ELSE h.manager_id END AS id
  ) rule
  LEFT JOIN LATERAL (
    SELECT c.id, c.ord
      FROM (VALUES (rule.id, 1),
                   (CASE WHEN rule.id = a.holder_user_id THEN h.manager_id END, 2),
                   ($2::uuid, 3),
                   (s.owner_id, 4)) AS c (id, ord)
      JOIN users u ON u.id = c.id AND u.active
     WHERE c.id IS DISTINCT FROM a.holder_user_id
     ORDER BY c.ord
     LIMIT 1
  ) pick ON true`;

export const ASSIGNED_REASON = `
  CASE WHEN pick.ord = 1 THEN NULL
       WHEN pick.id IS NULL THEN 'no eligible reviewer'
       WHEN rule.id IS NULL THEN 'no reviewer by rule'
       WHEN rule.id = a.holder_user_id THEN 'holder is the reviewer'
       ELSE 'reviewer inactive' END`;

/** The facts a reviewer needs, frozen into the item when the campaign opens. */
export const ACCOUNT_SNAPSHOT = `
  jsonb_build_object(
    'externalId', a.external_id, 'name', a.name, 'holderType', a.holder_type,
    'holderUserId', a.holder_user_id, 'providerId', a.provider_id,
    'sponsorUserId', a.sponsor_user_id, 'privilege', a.privilege, 'purpose', a.purpose,
    'mfaState', a.mfa_state, 'status', a.status, 'origin', a.origin,
    'lastUsedAt', a.last_used_at,
    'openFindings', coalesce((SELECT jsonb_agg(f.type ORDER BY f.type) FROM access_findings f
                               WHERE f.account_id = a.id AND f.status = 'open'), '[]'::jsonb))`;

export const ITEM_COLUMNS = `i.id, i.campaign_id AS "campaignId", i.account_id AS "accountId",
  i.holder_user_id AS "holderUserId", i.reviewer_id AS "reviewerId",
  i.assigned_reason AS "assignedReason", i.snapshot, i.decision, i.justification,
  i.decided_by AS "decidedBy", i.decided_at AS "decidedAt", i.outcome,
  i.updated_at AS "updatedAt", i.version`;

/** Returns an item's outcome once its campaign closes with the given undecided action. */
export function outcomeOf(decision: string | null, undecidedAction: string): string {
  if (decision === 'certify') return 'certified';
  if (decision === 'revoke') return 'revoked';
  if (undecidedAction === 'revoke') return 'revoked';
  if (undecidedAction === 'keep-and-flag') return 'kept-flagged';
  return 'escalated';
}

/** Item filters shared by the item list and bulk decisions. */
export interface ItemFilter {
  reviewerId?: string;
  privilege?: string;
  holderType?: string;
  /** true: only decided items; false: only undecided ones; undefined: both. */
  decided?: boolean;
}

/**
 * Builds the WHERE conditions on `review_items i` for one campaign and a filter. The campaign id
 * is `$1`; filter values follow in `parameters`.
 */
export function itemConditions(
  campaignId: string,
  filter: ItemFilter,
): { conditions: string[]; parameters: unknown[] } {
  const parameters: unknown[] = [campaignId];
  const conditions = ['i.campaign_id = $1'];
  const add = (sql: string, value: unknown): void => {
    parameters.push(value);
    conditions.push(`${sql} = $${parameters.length}`);
  };
  if (filter.reviewerId) add('i.reviewer_id', filter.reviewerId);
  if (filter.privilege) add(`i.snapshot->>'privilege'`, filter.privilege);
  if (filter.holderType) add(`i.snapshot->>'holderType'`, filter.holderType);
  if (filter.decided !== undefined) {
    conditions.push(filter.decided ? 'i.decision IS NOT NULL' : 'i.decision IS NULL');
  }
  return { conditions, parameters };
}
