import { EntityManager } from 'typeorm';

import type { NotificationEvent } from '../notifications/notifications.service';
import type { RequestRecord } from './request-reader';

/** Active holders of the roles that review tool requests, and the owner's side of the system. */
export async function approverRecipients(
  manager: EntityManager,
  request: RequestRecord,
): Promise<string[]> {
  const rows = await manager.query<{ id: string }[]>(
    `SELECT DISTINCT u.id FROM users u JOIN user_roles r ON r.user_id = u.id
      WHERE u.active AND r.role = 'security-approver'`,
  );
  const ids = new Set(rows.map((row) => row.id));
  if (request.ownerId) ids.add(request.ownerId);
  if (request.ownerId === request.requesterId && request.ownerManagerId) {
    ids.add(request.ownerManagerId);
  }
  ids.delete(request.requesterId);
  return [...ids];
}

export function requestNotice(
  request: RequestRecord,
  step: 'submitted' | 'approved' | 'rejected' | 'changes-requested' | 'reapproval-due',
  recipients: (string | null)[],
  extra: Record<string, unknown> = {},
): NotificationEvent {
  const titles = {
    submitted: `Tool request for ${request.systemName} awaits approval`,
    approved: `Tool request for ${request.systemName} was approved`,
    rejected: `Tool request for ${request.systemName} was rejected`,
    'changes-requested': `Changes requested on the tool request for ${request.systemName}`,
    'reapproval-due': `Approval of ${request.systemName} needs re-approval`,
  };
  const bodies = {
    submitted: `Round ${request.round} of the request is open for review.`,
    approved: `The approval is valid until ${request.approvedUntil?.toISOString()}.`,
    rejected: 'A required approver rejected the request.',
    'changes-requested': 'An approver asked for changes; edit the request and resubmit it.',
    'reapproval-due': `The approval ends at ${request.approvedUntil?.toISOString()}; file a re-approval request before then.`,
  };
  return {
    type: `tool-request.${step}`,
    dedupeKey: `tool-request.${step}.${request.id}.${request.round}`,
    title: titles[step],
    body: bodies[step],
    payload: { requestId: request.id, systemId: request.systemId, round: request.round, ...extra },
    recipients: [...new Set(recipients.filter((id): id is string => id !== null))],
  };
}
