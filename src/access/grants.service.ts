import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { assertSystemApproved, effectiveMaxAdmins } from '../approvals/system-approval';
import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import type { Settings } from '../config/settings';
import {
  ConflictError,
  DomainError,
  InvalidInputError,
  NotFoundError,
  RuleViolationError,
} from '../common/errors';
import { assertMayActOnSystem } from '../common/ownership';
import { Page, toPage } from '../common/pagination';
import { CurrentUser, requireSignedInUser } from '../common/request-context';
import { returnedRows, Transactions } from '../common/transactions';
import { KEYS, SETTINGS } from '../config/runtime';
import type { Keys } from '../config/keys';
import { requireUser } from '../identity/users.service';
import { NotificationsService } from '../notifications/notifications.service';
import {
  ApproveGrantDto,
  CreateGrantDto,
  DecideGrantDto,
  GrantListQuery,
  ProvisionGrantDto,
} from './access.dto';
import {
  assertOneCredentialForm,
  effectiveGrantStatus,
  providerConflictFrom,
  recordCredential,
} from './accounts.service';
import {
  ACCESS_QUEUE,
  EXPIRY_SWEEP_CRON,
  EXPIRY_SWEEP_JOB,
  EXPIRY_SWEEP_SCHEDULER,
  GRANT_EXPIRY_JOB,
  GrantExpiryQueue,
} from './grant-expiry';
import { SchedulerService } from '../scheduling/scheduler.service';
import { openDeprovisioningTask } from './deprovisioning-tasks';
import type { MfaState } from './access.types';

interface GrantRow {
  id: string;
  system_id: string;
  account_id: string | null;
  account_external_id: string;
  account_name: string;
  holder_type: 'user' | 'provider';
  holder_user_id: string | null;
  provider_id: string | null;
  sponsor_user_id: string | null;
  privilege: string;
  purpose: string;
  declared_mfa_state: MfaState;
  justification: string;
  ends_at: Date | null;
  status: string;
  requester_id: string;
  needs_security_approval: boolean;
  owner_approved_by: string | null;
  owner_approved_at: Date | null;
  security_approved_by: string | null;
  security_approved_at: Date | null;
  approved_at: Date | null;
  decided_by: string | null;
  decided_at: Date | null;
  decision_reason: string | null;
  provisioned_by: string | null;
  provisioned_at: Date | null;
  provisioning_evidence: string | null;
  ended_at: Date | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

export interface GrantView {
  id: string;
  systemId: string;
  accountId: string | null;
  accountExternalId: string;
  accountName: string;
  holderType: 'user' | 'provider';
  holderUserId: string | null;
  providerId: string | null;
  sponsorUserId: string | null;
  privilege: string;
  purpose: string;
  declaredMfaState: string;
  justification: string;
  endsAt: Date | null;
  /** Status as of now: an approved or active grant past its end date is expired. */
  status: string;
  requesterId: string;
  needsSecurityApproval: boolean;
  ownerApprovedBy: string | null;
  ownerApprovedAt: Date | null;
  securityApprovedBy: string | null;
  securityApprovedAt: Date | null;
  approvedAt: Date | null;
  decidedBy: string | null;
  decidedAt: Date | null;
  decisionReason: string | null;
  provisionedBy: string | null;
  provisionedAt: Date | null;
  provisioningEvidence: string | null;
  endedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

interface SystemRow {
  id: string;
  owner_id: string | null;
  criticality: string;
}

/**
 * The grant workflow: request, approval by the system owner (and, for admin access to a critical
 * system, a security approver), provisioning with evidence, then expiry or revocation.
 *
 * Lock order is system row, then grant row, everywhere: the admin cap is counted under the system
 * lock, so concurrent approvals on one system take their slots one at a time.
 */
@Injectable()
export class GrantsService implements OnModuleInit {
  private readonly logger = new Logger('AccessGrants');

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly notifications: NotificationsService,
    private readonly expiryQueue: GrantExpiryQueue,
    private readonly scheduler: SchedulerService,
    @Inject(KEYS) private readonly keys: Keys,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  onModuleInit(): void {
    // Both handlers re-read PostgreSQL through expireDue, so a late or repeated job is harmless.
    this.scheduler.handle(ACCESS_QUEUE, GRANT_EXPIRY_JOB, async (job) => {
      const data = job.data as { grantId?: unknown };
      if (typeof data.grantId !== 'string') throw new Error('grant-expiry job has no grantId');
      return { expired: await this.expireDue(data.grantId) };
    });
    this.scheduler.handle(ACCESS_QUEUE, EXPIRY_SWEEP_JOB, async () => ({
      expired: await this.expireDue(),
    }));
    this.scheduler.scheduleRecurring({
      queue: ACCESS_QUEUE,
      schedulerId: EXPIRY_SWEEP_SCHEDULER,
      cron: EXPIRY_SWEEP_CRON,
      jobName: EXPIRY_SWEEP_JOB,
      data: {},
    });
  }

  async list(query: GrantListQuery): Promise<Page<GrantView>> {
    const conditions: string[] = [];
    const parameters: unknown[] = [this.clock.now()];
    const add = (sql: string, value: unknown): void => {
      parameters.push(value);
      conditions.push(`${sql} = $${parameters.length}`);
    };
    if (query.systemId) add('g.system_id', query.systemId);
    if (query.accountId) add('g.account_id', query.accountId);
    if (query.status) add(effectiveGrantStatus('g', '$1'), query.status);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const direction = query.order === 'desc' ? 'DESC' : 'ASC';
    const rows = await this.dataSource.query<GrantRow[]>(
      `SELECT g.*, ${effectiveGrantStatus('g', '$1')} AS status FROM access_grants g ${where}
        ORDER BY g.created_at ${direction}, g.id OFFSET ${query.offset} LIMIT ${query.limit + 1}`,
      parameters,
    );
    return toPage(rows.map(toView), query);
  }

  async get(id: string): Promise<GrantView> {
    return readGrant(this.dataSource.manager, id, this.clock.now());
  }

  async request(input: CreateGrantDto): Promise<GrantView> {
    const now = this.clock.now();
    assertRequestShape(input, now, this.settings.grantMaxDays);
    const requester = requireSignedInUser();

    const grant = await this.transactions.run(async (manager) => {
      // The system row lock serialises requests for one system, so two identical requests sent
      // together cannot both pass the open-grant check further down.
      const system = await findSystem(manager, input.systemId, true);
      await assertSystemApproved(manager, system.id, now);
      if (input.holderUserId) await requireUser(manager, input.holderUserId, 'holderUserId');
      if (input.sponsorUserId) await requireUser(manager, input.sponsorUserId, 'sponsorUserId');
      if (input.providerId) await requireProvider(manager, input.providerId);

      const account = await findAccount(manager, system.id, input.accountExternalId);
      assertPurposeAllowsPrivilege(input.privilege, account?.purpose ?? input.purpose);
      await assertNoProviderConflict(manager, {
        systemId: system.id,
        externalId: input.accountExternalId,
        holderType: input.providerId ? 'provider' : 'user',
        providerId: input.providerId ?? null,
      });

      const [open] = await manager.query<{ id: string; status: string }[]>(
        `SELECT id, status FROM access_grants
          WHERE system_id = $1 AND lower(account_external_id) = lower($2)
            AND (status IN ('pending', 'approved')
                 OR (status = 'active' AND (ends_at IS NULL OR ends_at > $3)))
          LIMIT 1`,
        [system.id, input.accountExternalId, now],
      );
      if (open) {
        throw new ConflictError(
          'ACCESS.GRANT_EXISTS',
          `Account ${input.accountExternalId} on system ${system.id} already has a ${open.status} grant; change or revoke that one`,
          { grantId: open.id, status: open.status },
        );
      }

      const needsSecurity = input.privilege === 'admin' && system.criticality === 'critical';
      const [row] = await manager.query<GrantRow[]>(
        `INSERT INTO access_grants
           (system_id, account_id, account_external_id, account_name, holder_type, holder_user_id,
            provider_id, sponsor_user_id, privilege, purpose, declared_mfa_state, justification,
            ends_at, status, requester_id, needs_security_approval, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', $14, $15, $16, $16)
         RETURNING *`,
        [
          system.id,
          account?.id ?? null,
          input.accountExternalId,
          input.accountName ?? input.accountExternalId,
          input.providerId ? 'provider' : 'user',
          input.holderUserId ?? null,
          input.providerId ?? null,
          input.sponsorUserId ?? null,
          input.privilege,
          input.purpose,
          input.mfa ?? 'unknown',
          input.justification,
          input.endsAt ? new Date(input.endsAt) : null,
          requester.id,
          needsSecurity,
          now,
        ],
      );
      const view = toView(row);
      await this.audit.record(manager, {
        action: 'access_grant.requested',
        entityType: 'access_grant',
        entityId: row.id,
        before: null,
        after: view,
      });
      return { view, ownerId: system.owner_id };
    });

    await this.notifyOwner(grant.view, grant.ownerId);
    return grant.view;
  }

  /**
   * Fills one approval slot with the caller. The requester and the account holder fill none; one
   * person fills at most one. The last slot makes the grant approved, after the governance checks
   * and the admin cap count, all under the system lock.
   */
  async approve(id: string, input: ApproveGrantDto): Promise<GrantView> {
    const caller = requireSignedInUser();
    const result = await this.transactions.run(async (manager) => {
      const now = this.clock.now();
      const { system, grant } = await this.lockGrant(manager, id);
      assertPending(grant, now);
      if (caller.id === grant.requester_id || caller.id === grant.holder_user_id) {
        throw new DomainError(
          403,
          'ACCESS.SELF_APPROVAL',
          'The requester or holder of a grant cannot approve it; another approver must',
          { id },
        );
      }
      const slot = await this.chooseSlot(manager, caller, system, grant);
      const before = toView(grant);

      const ownerFilled = slot === 'owner' || grant.owner_approved_by !== null;
      const securityFilled =
        !grant.needs_security_approval ||
        slot === 'security' ||
        grant.security_approved_by !== null;
      const complete = ownerFilled && securityFilled;
      if (complete) await this.assertMayBecomeApproved(manager, grant, now);

      const [row] = returnedRows<GrantRow>(
        await manager.query(
          `UPDATE access_grants
              SET owner_approved_by = CASE WHEN $2 = 'owner' THEN $3::uuid ELSE owner_approved_by END,
                  owner_approved_at = CASE WHEN $2 = 'owner' THEN $4 ELSE owner_approved_at END,
                  security_approved_by = CASE WHEN $2 = 'security' THEN $3::uuid ELSE security_approved_by END,
                  security_approved_at = CASE WHEN $2 = 'security' THEN $4 ELSE security_approved_at END,
                  status = CASE WHEN $5 THEN 'approved' ELSE status END,
                  approved_at = CASE WHEN $5 THEN $4 ELSE approved_at END,
                  updated_at = $4, version = version + 1
            WHERE id = $1 AND status = 'pending' RETURNING *`,
          [id, slot, caller.id, now, complete],
        ),
      );
      const after = toView(row);
      await this.audit.record(manager, {
        action: complete ? 'access_grant.approved' : 'access_grant.slot_approved',
        entityType: 'access_grant',
        entityId: id,
        before,
        after: { ...after, approvalSlot: slot, comment: input.comment ?? null },
      });
      return after;
    });

    // Queued after the commit: a rolled-back approval never leaves a job behind, and a lost job is
    // covered by the periodic sweep.
    if (result.status === 'approved' && result.endsAt) {
      await this.expiryQueue.schedule(result.id, result.endsAt);
    }
    return result;
  }

  async reject(id: string, input: DecideGrantDto): Promise<GrantView> {
    const caller = requireSignedInUser();
    return this.transactions.run(async (manager) => {
      const now = this.clock.now();
      const { system, grant } = await this.lockGrant(manager, id);
      assertPending(grant, now);
      if (caller.id === grant.requester_id) {
        throw new DomainError(403, 'ACCESS.SELF_APPROVAL', 'The requester cannot decide a grant', {
          id,
        });
      }
      await this.chooseSlot(manager, caller, system, grant);
      return this.finish(manager, grant, 'rejected', caller.id, input.reason, now);
    });
  }

  /** Records that the approved access was set up on the system, with evidence, and makes it active. */
  async provision(id: string, input: ProvisionGrantDto): Promise<GrantView> {
    assertOneCredentialForm(input.credentialSecret, input.credentialCannotBeChecked);
    const caller = requireSignedInUser();
    return this.transactions.run(async (manager) => {
      const now = this.clock.now();
      const { system, grant } = await this.lockGrant(manager, id);
      assertMayActOnSystem(system.id, system.owner_id, ['platform-admin']);
      const status = statusAt(grant, now);
      if (status !== 'approved') {
        throw new ConflictError(
          'ACCESS.GRANT_NOT_APPROVED',
          `Grant ${id} is ${status}; only an approved grant can be provisioned`,
          { id, status },
        );
      }
      await assertSystemApproved(manager, system.id, now);
      const existing = await findAccount(manager, system.id, grant.account_external_id);
      const mfa = input.mfa ?? existing?.mfa_state ?? grant.declared_mfa_state;
      if (grant.privilege === 'admin') assertAdminMfa(mfa);
      assertPurposeAllowsPrivilege(grant.privilege, existing?.purpose ?? grant.purpose);
      await assertNoProviderConflict(manager, {
        systemId: system.id,
        externalId: grant.account_external_id,
        holderType: grant.holder_type,
        providerId: grant.provider_id,
        accountId: existing?.id,
      });

      const accountId = await this.upsertAccount(manager, grant, existing?.id ?? null, mfa, now);
      if (input.credentialSecret !== undefined || input.credentialCannotBeChecked === true) {
        await recordCredential(
          manager,
          this.keys.fingerprintKey,
          accountId,
          { secret: input.credentialSecret, cannotBeChecked: input.credentialCannotBeChecked },
          now,
        );
      }
      const before = toView(grant);
      const [row] = returnedRows<GrantRow>(
        await manager.query(
          `UPDATE access_grants
              SET status = 'active', account_id = $2, provisioned_by = $3, provisioned_at = $4,
                  provisioning_evidence = $5, updated_at = $4, version = version + 1
            WHERE id = $1 RETURNING *`,
          [id, accountId, caller.id, now, input.evidence],
        ),
      );
      // A granted account is no longer unapproved access.
      await manager.query(
        `UPDATE access_findings SET status = 'resolved', resolved_at = $2, version = version + 1
          WHERE account_id = $1 AND type = 'unapproved-access' AND status <> 'resolved'`,
        [accountId, now],
      );
      const after = toView(row);
      await this.audit.record(manager, {
        action: 'access_grant.provisioned',
        entityType: 'access_grant',
        entityId: id,
        before,
        after,
      });
      return after;
    });
  }

  /** Ends an approved or active grant early and opens a de-provisioning task for its account. */
  async revoke(id: string, input: DecideGrantDto): Promise<GrantView> {
    const caller = requireSignedInUser();
    return this.transactions.run(async (manager) => {
      const now = this.clock.now();
      const { system, grant } = await this.lockGrant(manager, id);
      assertMayActOnSystem(system.id, system.owner_id, ['platform-admin', 'security-approver']);
      const status = statusAt(grant, now);
      if (status !== 'approved' && status !== 'active') {
        throw new ConflictError(
          'ACCESS.GRANT_NOT_REVOCABLE',
          `Grant ${id} is ${status}; only an approved or active grant can be revoked`,
          { id, status },
        );
      }
      const view = await this.finish(manager, grant, 'revoked', caller.id, input.reason, now);
      if (grant.account_id) {
        await openDeprovisioningTask(
          manager,
          { accountId: grant.account_id, trigger: 'grant-revoked', triggerRefId: grant.id },
          now,
        );
      }
      return view;
    });
  }

  /**
   * Moves every approved or active grant past its end date to expired and opens a de-provisioning
   * task for its account; `grantId` limits the pass to one grant. Safe to repeat: a grant already
   * expired is skipped, and the task's unique key keeps one open task per account and trigger.
   */
  async expireDue(grantId?: string): Promise<number> {
    return this.transactions.run(async (manager) => {
      const now = this.clock.now();
      const due = await manager.query<GrantRow[]>(
        `SELECT * FROM access_grants
          WHERE status IN ('approved', 'active') AND ends_at <= $1 AND ($2::uuid IS NULL OR id = $2)
          ORDER BY ends_at, id FOR UPDATE SKIP LOCKED`,
        [now, grantId ?? null],
      );
      for (const grant of due) {
        const [row] = returnedRows<GrantRow>(
          await manager.query(
            `UPDATE access_grants SET status = 'expired', ended_at = ends_at, updated_at = $2,
                    version = version + 1 WHERE id = $1 RETURNING *`,
            [grant.id, now],
          ),
        );
        let taskId: string | null = null;
        if (grant.account_id) {
          taskId = await openDeprovisioningTask(
            manager,
            { accountId: grant.account_id, trigger: 'grant-expired', triggerRefId: grant.id },
            now,
          );
        }
        await this.audit.record(manager, {
          action: 'access_grant.expired',
          entityType: 'access_grant',
          entityId: grant.id,
          before: toView(grant),
          after: { ...toView(row), deprovisioningTaskId: taskId },
        });
      }
      if (due.length > 0) this.logger.log({ expired: due.length }, 'Expired access grants');
      return due.length;
    });
  }

  private async lockGrant(
    manager: EntityManager,
    id: string,
  ): Promise<{ system: SystemRow; grant: GrantRow }> {
    const [located] = await manager.query<{ system_id: string }[]>(
      `SELECT system_id FROM access_grants WHERE id = $1`,
      [id],
    );
    if (!located) throw new NotFoundError('Access grant', id);
    const system = await findSystem(manager, located.system_id, true);
    const [grant] = await manager.query<GrantRow[]>(
      `SELECT * FROM access_grants WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return { system, grant };
  }

  /** Picks the slot the caller may fill, or explains with 403 or 409 why none. */
  private async chooseSlot(
    manager: EntityManager,
    caller: CurrentUser,
    system: SystemRow,
    grant: GrantRow,
  ): Promise<'owner' | 'security'> {
    const mayFillOwner = await this.mayFillOwnerSlot(manager, caller, system, grant);
    const mayFillSecurity =
      grant.needs_security_approval && caller.roles.includes('security-approver');
    const filledByCaller =
      grant.owner_approved_by === caller.id || grant.security_approved_by === caller.id;
    if (filledByCaller) {
      throw new ConflictError(
        'ACCESS.ALREADY_APPROVED',
        `You already approved grant ${grant.id}; another approver must fill the remaining slot`,
        { id: grant.id },
      );
    }
    if (mayFillOwner && grant.owner_approved_by === null) return 'owner';
    if (mayFillSecurity && grant.security_approved_by === null) return 'security';
    if (mayFillOwner || mayFillSecurity) {
      throw new ConflictError(
        'ACCESS.SLOT_FILLED',
        `The approval slot you may fill on grant ${grant.id} is already filled`,
        { id: grant.id },
      );
    }
    throw new DomainError(
      403,
      'ACCESS.NOT_AN_APPROVER',
      `Grant ${grant.id} is approved by the owner of system ${system.id}` +
        (grant.needs_security_approval ? ' and a security approver' : ''),
      { id: grant.id },
    );
  }

  /**
   * The owner slot belongs to the system owner. When the owner requested the grant, or the system
   * has no owner, the owner's manager or a platform admin fills it instead.
   */
  private async mayFillOwnerSlot(
    manager: EntityManager,
    caller: CurrentUser,
    system: SystemRow,
    grant: GrantRow,
  ): Promise<boolean> {
    const ownerUnavailable = system.owner_id === null || system.owner_id === grant.requester_id;
    if (!ownerUnavailable) return caller.id === system.owner_id;
    if (caller.roles.includes('platform-admin')) return true;
    if (system.owner_id === null) return false;
    const [owner] = await manager.query<{ manager_id: string | null }[]>(
      `SELECT manager_id FROM users WHERE id = $1`,
      [system.owner_id],
    );
    return owner?.manager_id === caller.id;
  }

  /** Checks the rules that hold when a grant becomes approved; the cap is counted under lock. */
  private async assertMayBecomeApproved(
    manager: EntityManager,
    grant: GrantRow,
    now: Date,
  ): Promise<void> {
    await assertSystemApproved(manager, grant.system_id, now);
    const account = await findAccount(manager, grant.system_id, grant.account_external_id);
    if (grant.privilege === 'admin') assertAdminMfa(account?.mfa_state ?? grant.declared_mfa_state);
    assertPurposeAllowsPrivilege(grant.privilege, account?.purpose ?? grant.purpose);
    if (grant.privilege !== 'admin') return;

    // The caller holds the system row lock, so no other approval counts or inserts meanwhile.
    const cap = await effectiveMaxAdmins(manager, grant.system_id);
    const [{ held }] = await manager.query<{ held: number }[]>(
      `SELECT count(*)::int AS held FROM access_grants
        WHERE system_id = $1 AND privilege = 'admin' AND status IN ('approved', 'active')
          AND (ends_at IS NULL OR ends_at > $2)`,
      [grant.system_id, now],
    );
    if (held >= cap) {
      throw new ConflictError(
        'ACCESS.ADMIN_CAP_REACHED',
        `Admin limit reached: system ${grant.system_id} allows ${cap} admin(s) and ${held} hold a ` +
          'slot; revoke one or raise the system maxAdmins first',
        { systemId: grant.system_id, maxAdmins: cap, held },
      );
    }
  }

  private async finish(
    manager: EntityManager,
    grant: GrantRow,
    status: 'rejected' | 'revoked',
    deciderId: string,
    reason: string,
    now: Date,
  ): Promise<GrantView> {
    const [row] = returnedRows<GrantRow>(
      await manager.query(
        `UPDATE access_grants
            SET status = $2::varchar, decided_by = $3, decided_at = $4, decision_reason = $5,
                ended_at = CASE WHEN $2::varchar = 'revoked' THEN $4 ELSE ended_at END,
                updated_at = $4, version = version + 1
          WHERE id = $1 RETURNING *`,
        [grant.id, status, deciderId, now, reason],
      ),
    );
    const after = toView(row);
    await this.audit.record(manager, {
      action: `access_grant.${status}`,
      entityType: 'access_grant',
      entityId: grant.id,
      before: toView(grant),
      after,
    });
    return after;
  }

  private async upsertAccount(
    manager: EntityManager,
    grant: GrantRow,
    existingId: string | null,
    mfa: MfaState,
    now: Date,
  ): Promise<string> {
    try {
      if (existingId) {
        await manager.query(
          `UPDATE accounts
              SET holder_type = $2, holder_user_id = $3, provider_id = $4, sponsor_user_id = $5,
                  privilege = $6, mfa_state = $7, status = 'active', removed_at = NULL,
                  updated_at = $8, version = version + 1
            WHERE id = $1`,
          [
            existingId,
            grant.holder_type,
            grant.holder_user_id,
            grant.provider_id,
            grant.sponsor_user_id,
            grant.privilege,
            mfa,
            now,
          ],
        );
        return existingId;
      }
      const [{ id }] = await manager.query<{ id: string }[]>(
        `INSERT INTO accounts (system_id, external_id, name, holder_type, holder_user_id,
            provider_id, sponsor_user_id, privilege, purpose, mfa_state, status, origin,
            created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', 'granted', $11, $11)
         RETURNING id`,
        [
          grant.system_id,
          grant.account_external_id,
          grant.account_name,
          grant.holder_type,
          grant.holder_user_id,
          grant.provider_id,
          grant.sponsor_user_id,
          grant.privilege,
          grant.purpose,
          mfa,
          now,
        ],
      );
      return id;
    } catch (error) {
      throw providerConflictFrom(error, grant.account_external_id);
    }
  }

  private async notifyOwner(grant: GrantView, ownerId: string | null): Promise<void> {
    if (ownerId === null) return;
    try {
      await this.notifications.publish({
        type: 'access.grant-requested',
        dedupeKey: `access-grant-requested-${grant.id}`,
        title: `Access request: ${grant.privilege} on ${grant.accountExternalId}`,
        body: `A ${grant.privilege} grant for account ${grant.accountExternalId} waits for your approval.`,
        payload: { grantId: grant.id, systemId: grant.systemId },
        recipients: [ownerId],
      });
    } catch (error) {
      // The request is committed; a missed notice must not turn it into an error response.
      this.logger.warn({ err: error, grantId: grant.id }, 'Grant request notification failed');
    }
  }
}

export async function readGrant(manager: EntityManager, id: string, now: Date): Promise<GrantView> {
  const [row] = await manager.query<GrantRow[]>(
    `SELECT g.*, ${effectiveGrantStatus('g', '$1')} AS status FROM access_grants g WHERE g.id = $2`,
    [now, id],
  );
  if (!row) throw new NotFoundError('Access grant', id);
  return toView(row);
}

/** Checks the parts of a request that need no database: one holder form and a future end date. */
function assertRequestShape(input: CreateGrantDto, now: Date, maxDays: number): void {
  const problems: { field: string; problems: string[] }[] = [];
  if ((input.holderUserId === undefined) === (input.providerId === undefined)) {
    problems.push({
      field: 'holderUserId',
      problems: ['give exactly one of holderUserId (a person) and providerId (a provider)'],
    });
  }
  if (input.providerId !== undefined && input.sponsorUserId === undefined) {
    problems.push({ field: 'sponsorUserId', problems: ['a provider account needs a sponsor'] });
  }
  if (input.providerId === undefined && input.sponsorUserId !== undefined) {
    problems.push({
      field: 'sponsorUserId',
      problems: ['sponsorUserId is only for provider accounts'],
    });
  }
  const needsEnd = input.providerId !== undefined || input.privilege === 'admin';
  if (needsEnd && input.endsAt === undefined) {
    problems.push({
      field: 'endsAt',
      problems: ['endsAt is required for provider accounts and admin grants'],
    });
  }
  if (input.endsAt !== undefined && new Date(input.endsAt).getTime() <= now.getTime()) {
    problems.push({ field: 'endsAt', problems: [`endsAt must be after ${now.toISOString()}`] });
  }
  const latestEnd = new Date(now.getTime() + maxDays * 86_400_000);
  if (needsEnd && input.endsAt !== undefined && new Date(input.endsAt) > latestEnd) {
    // An end date far ahead would make the required end date a formality.
    problems.push({
      field: 'endsAt',
      problems: [
        `endsAt of an admin grant or provider account must be at most ${maxDays} days ahead (by ${latestEnd.toISOString()}); GRANT_MAX_DAYS sets the limit`,
      ],
    });
  }
  if (problems.length > 0) {
    const names = [...new Set(problems.map((problem) => problem.field))].join(', ');
    throw new InvalidInputError(`Invalid request: check ${names}`, problems);
  }
}

function assertPending(grant: GrantRow, now: Date): void {
  const status = statusAt(grant, now);
  if (status !== 'pending') {
    throw new ConflictError('ACCESS.GRANT_ALREADY_DECIDED', `Grant ${grant.id} is ${status}`, {
      id: grant.id,
      status,
    });
  }
}

function statusAt(grant: GrantRow, now: Date): string {
  const lapsed = grant.ends_at !== null && grant.ends_at.getTime() <= now.getTime();
  return lapsed && (grant.status === 'approved' || grant.status === 'active')
    ? 'expired'
    : grant.status;
}

function assertAdminMfa(mfa: MfaState): void {
  if (mfa !== 'enabled') {
    throw new RuleViolationError(
      'ACCESS.ADMIN_REQUIRES_MFA',
      `Admin access needs MFA enabled on the account (it is ${mfa}); enable MFA, then retry`,
      { mfaState: mfa },
    );
  }
}

function assertPurposeAllowsPrivilege(privilege: string, purpose: string): void {
  if (privilege === 'admin' && purpose !== 'admin') {
    throw new RuleViolationError(
      'ACCESS.ADMIN_ON_EVERYDAY_ACCOUNT',
      'Admin privilege goes only to an admin-purpose account, separate from everyday accounts',
      { field: 'purpose' },
    );
  }
}

async function findSystem(manager: EntityManager, id: string, lock: boolean): Promise<SystemRow> {
  const [system] = await manager.query<SystemRow[]>(
    `SELECT id, owner_id, criticality FROM systems WHERE id = $1 ${lock ? 'FOR UPDATE' : ''}`,
    [id],
  );
  if (!system) throw new NotFoundError('System', id);
  return system;
}

async function requireProvider(manager: EntityManager, id: string): Promise<void> {
  const [row] = await manager.query<{ id: string }[]>(`SELECT id FROM providers WHERE id = $1`, [
    id,
  ]);
  if (!row) {
    throw new DomainError(404, 'PROVIDER.NOT_FOUND', `Provider ${id} was not found`, {
      field: 'providerId',
    });
  }
}

interface ExistingAccount {
  id: string;
  purpose: string;
  mfa_state: MfaState;
}

async function findAccount(
  manager: EntityManager,
  systemId: string,
  externalId: string,
): Promise<ExistingAccount | undefined> {
  const [row] = await manager.query<ExistingAccount[]>(
    `SELECT id, purpose, mfa_state FROM accounts WHERE system_id = $1 AND lower(external_id) = lower($2)`,
    [systemId, externalId],
  );
  return row;
}

/**
 * A provider account's identity belongs to one provider on one system. It may not be held by a
 * person or another provider here, nor appear as a provider account on another system.
 */
async function assertNoProviderConflict(
  manager: EntityManager,
  subject: {
    systemId: string;
    externalId: string;
    holderType: 'user' | 'provider';
    providerId: string | null;
    accountId?: string;
  },
): Promise<void> {
  const [conflict] = await manager.query<{ id: string; system_id: string }[]>(
    `SELECT id, system_id FROM accounts
      WHERE lower(external_id) = lower($1) AND holder_type = 'provider'
        AND ($4::uuid IS NULL OR id <> $4)
        AND (system_id <> $2 OR provider_id IS DISTINCT FROM $3 OR $5 <> 'provider')
      LIMIT 1`,
    [
      subject.externalId,
      subject.systemId,
      subject.providerId,
      subject.accountId ?? null,
      subject.holderType,
    ],
  );
  const sameSystemOther =
    subject.holderType === 'provider'
      ? await manager.query<{ id: string }[]>(
          `SELECT id FROM accounts WHERE system_id = $1 AND lower(external_id) = lower($2)
              AND holder_type = 'user'`,
          [subject.systemId, subject.externalId],
        )
      : [];
  if (conflict || sameSystemOther.length > 0) {
    throw new RuleViolationError(
      'ACCESS.PROVIDER_ACCOUNT_CONFLICT',
      `Account "${subject.externalId}" is already a provider account elsewhere or held by someone ` +
        'else; a provider account belongs to one provider on one system (use the transfer route)',
      { field: 'accountExternalId', accountId: conflict?.id ?? sameSystemOther[0]?.id },
    );
  }
}

function toView(row: GrantRow): GrantView {
  return {
    id: row.id,
    systemId: row.system_id,
    accountId: row.account_id,
    accountExternalId: row.account_external_id,
    accountName: row.account_name,
    holderType: row.holder_type,
    holderUserId: row.holder_user_id,
    providerId: row.provider_id,
    sponsorUserId: row.sponsor_user_id,
    privilege: row.privilege,
    purpose: row.purpose,
    declaredMfaState: row.declared_mfa_state,
    justification: row.justification,
    endsAt: row.ends_at,
    status: row.status,
    requesterId: row.requester_id,
    needsSecurityApproval: row.needs_security_approval,
    ownerApprovedBy: row.owner_approved_by,
    ownerApprovedAt: row.owner_approved_at,
    securityApprovedBy: row.security_approved_by,
    securityApprovedAt: row.security_approved_at,
    approvedAt: row.approved_at,
    decidedBy: row.decided_by,
    decidedAt: row.decided_at,
    decisionReason: row.decision_reason,
    provisionedBy: row.provisioned_by,
    provisionedAt: row.provisioned_at,
    provisioningEvidence: row.provisioning_evidence,
    endedAt: row.ended_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    version: row.version,
  };
}
