import { superuserQuery } from './database';

/**
 * Arranges an approved system for suites whose subject is not the approval workflow: writes an
 * approved tool request directly. The approval suite itself drives the real workflow.
 */
export async function markSystemApproved(
  databaseUrl: string,
  systemId: string,
  requesterId: string,
  approvedUntil: Date,
): Promise<string> {
  const rows = await superuserQuery<{ id: string }>(
    databaseUrl,
    `INSERT INTO tool_requests (system_id, requester_id, status, justification, submitted_at,
        decided_at, approved_until, created_at, updated_at)
     VALUES ($1, $2, 'approved', 'arranged by a test', now(), now(), $3, now(), now())
     RETURNING id`,
    [systemId, requesterId, approvedUntil],
  );
  return rows[0].id;
}
