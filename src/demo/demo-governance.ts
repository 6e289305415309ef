import { EntityManager } from 'typeorm';

import { policyInForce, requestView } from '../approvals/request-reader';
import { EVALUATION_ITEM_KEYS } from '../approvals/evaluation';
import { mayFill, slotsOf } from '../approvals/slots';
import type { AuditService } from '../audit/audit.service';

const DAY_MS = 86_400_000;

/** Demo systems approved through the workflow; the rest are left never approved. */
const APPROVED_SYSTEMS = 10;
/** The system after the approved ones has a request waiting for the security approver. */
const PENDING_SYSTEM = APPROVED_SYSTEMS;
/** Systems whose accounts and review policy the demo seeds. */
const SYSTEMS_WITH_ACCOUNTS = 2;

export interface DemoPeople {
  admin: string;
  requester: string;
  owner: string;
  security: string;
  manager: string;
}

export interface DemoSystemRef {
  id: string;
  providerId: string;
  criticality: string;
  category: string;
  deploysSoftware: boolean;
}

/**
 * Seeds the governance side of the demo: tool requests approved through the policy in force (one
 * still in review), accounts on the first systems and a review policy for them. Every row gets
 * its audit event, as the workflows would write it.
 */
export async function seedDemoGovernance(
  manager: EntityManager,
  audit: AuditService,
  now: Date,
  people: DemoPeople,
  systems: DemoSystemRef[],
): Promise<{ approved: number; accounts: number; reviewPolicies: number }> {
  let approved = 0;
  for (const [index, system] of systems.entries()) {
    if (index > PENDING_SYSTEM) break;
    const policy = await policyInForce(manager, system.criticality, system.category);
    if (!policy) continue;
    const isApproved = index < APPROVED_SYSTEMS;
    const approvedUntil = new Date(now.getTime() + policy.validityDays * DAY_MS);
    const [{ id }] = await manager.query<{ id: string }[]>(
      `INSERT INTO tool_requests (system_id, requester_id, status, justification, signing_host,
          signing_host_remote_access, policy_id, submitted_at, decided_at, approved_until,
          reapproval_due_at, created_at, updated_at)
       VALUES ($1, $2, $3, 'Needed by the service desk and operations teams', $4, $5, $6, $7,
               $8, $9, $10, $7, $7)
       RETURNING id`,
      [
        system.id,
        people.requester,
        isApproved ? 'approved' : 'submitted',
        system.deploysSoftware ? 'codesign01.vault.demo.example' : null,
        system.deploysSoftware
          ? 'Console access only, from the privileged access workstation'
          : null,
        policy.id,
        now,
        isApproved ? now : null,
        isApproved ? approvedUntil : null,
        isApproved
          ? new Date(approvedUntil.getTime() - policy.reapprovalNoticeDays * DAY_MS)
          : null,
      ],
    );
    for (const item of EVALUATION_ITEM_KEYS) {
      await manager.query(
        `INSERT INTO evaluation_answers (request_id, item, answer, evidence_text, details,
            answered_by, answered_at)
         VALUES ($1, $2, 'yes', 'Checked during the demo evaluation', $3, $4, $5)`,
        [id, item, JSON.stringify(demoDetails(item)), people.security, now],
      );
    }
    if (isApproved) {
      const slotPolicy = {
        requiredApprovals: policy.requiredApprovals,
        requiredRoles: policy.requiredRoles,
        requesterId: people.requester,
        ownerId: people.owner,
        ownerManagerId: people.manager,
      };
      const candidates = [
        { id: people.security, roles: ['security-approver'] },
        { id: people.owner, roles: ['system-owner'] },
        { id: people.admin, roles: ['platform-admin'] },
      ];
      const used = new Set<string>();
      for (const slot of slotsOf(slotPolicy)) {
        const approver = candidates.find(
          (candidate) => !used.has(candidate.id) && mayFill(slotPolicy, candidate, slot),
        );
        if (!approver) throw new Error(`no demo user can fill the ${slot} slot`);
        used.add(approver.id);
        await manager.query(
          `INSERT INTO approval_decisions (request_id, round, approver_id, decision, slot, decided_at)
           VALUES ($1, 1, $2, 'approve', $3, $4)`,
          [id, approver.id, slot, now],
        );
      }
      approved += 1;
    }
    await audit.record(manager, {
      action: isApproved ? 'tool_request.approved' : 'tool_request.submitted',
      entityType: 'tool_request',
      entityId: id,
      before: null,
      after: await requestView(manager, id, now),
    });
  }

  let accounts = 0;
  for (const system of systems.slice(0, SYSTEMS_WITH_ACCOUNTS)) {
    const rows: [string, string, string | null, string | null, string, string, string][] = [
      ['olive.admin', 'Olive Owner (admin)', people.owner, null, 'admin', 'admin', 'enabled'],
      ['riley', 'Riley Requester', people.requester, null, 'standard', 'everyday', 'enabled'],
      [
        'vendor-support',
        'Vendor support',
        null,
        system.providerId,
        'privileged',
        'admin',
        'unknown',
      ],
    ];
    for (const [externalId, name, holder, provider, privilege, purpose, mfa] of rows) {
      const [account] = await manager.query<Record<string, unknown>[]>(
        `INSERT INTO accounts (system_id, external_id, name, holder_type, holder_user_id,
            provider_id, sponsor_user_id, privilege, purpose, mfa_state, status, origin,
            created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', 'granted', $11, $11)
         RETURNING id, system_id, external_id, holder_type, privilege, purpose, mfa_state, status`,
        [
          system.id,
          provider ? `${externalId}-${system.id.slice(0, 8)}` : externalId,
          name,
          provider ? 'provider' : 'user',
          holder,
          provider,
          provider ? people.owner : null,
          privilege,
          purpose,
          mfa,
          now,
        ],
      );
      await audit.record(manager, {
        action: 'account.created',
        entityType: 'account',
        entityId: String(account.id),
        before: null,
        after: account,
      });
      accounts += 1;
    }

    const [policy] = await manager.query<Record<string, unknown>[]>(
      `INSERT INTO review_policies (system_id, admin_cadence_days, standard_cadence_days,
          reviewer_rule, fallback_reviewer_id, duration_days, grace_days, undecided_action,
          created_at, updated_at)
       VALUES ($1, 90, 180, 'holder-manager', $2, 14, 3, 'revoke', $3, $3) RETURNING *`,
      [system.id, people.security, now],
    );
    await audit.record(manager, {
      action: 'review_policy.created',
      entityType: 'review_policy',
      entityId: String(policy.id),
      before: null,
      after: policy,
    });
  }
  return { approved, accounts, reviewPolicies: Math.min(SYSTEMS_WITH_ACCOUNTS, systems.length) };
}

function demoDetails(item: string): Record<string, string> {
  if (item === 'provider-assessment')
    return { reportType: 'SOC 2 Type II', reportDate: '2026-06-30' };
  if (item === 'supported-version') return { patchCadence: 'monthly' };
  return {};
}
