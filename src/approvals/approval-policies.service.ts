import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { InvalidInputError } from '../common/errors';
import { Transactions } from '../common/transactions';
import { requireSignedInUser } from '../common/request-context';
import type { CreatePolicyDto, PolicyListQuery } from './approvals.dto';
import { PolicyView, policyById } from './request-reader';

/**
 * Approval policies are versioned: publishing one for a criticality (and category) supersedes the
 * version in force, which stays readable because submitted requests are judged by it.
 */
@Injectable()
export class ApprovalPoliciesService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  list(query: PolicyListQuery): Promise<PolicyView[]> {
    return this.dataSource
      .query<PolicyView[]>(
        `SELECT id FROM approval_policies ${query.history ? '' : 'WHERE superseded_at IS NULL'}
        ORDER BY array_position(ARRAY['critical','high','medium','low']::varchar[], criticality),
                 category NULLS FIRST, version DESC`,
      )
      .then((rows) =>
        Promise.all(rows.map((row: { id: string }) => policyById(this.dataSource.manager, row.id))),
      );
  }

  async publish(input: CreatePolicyDto): Promise<PolicyView> {
    if (input.requiredRoles.length > input.requiredApprovals) {
      throw new InvalidInputError('Invalid approval policy', [
        {
          field: 'requiredRoles',
          problems: [
            `requiredRoles lists ${input.requiredRoles.length} roles but requiredApprovals is ${input.requiredApprovals}; each required role fills one approval`,
          ],
        },
      ]);
    }
    if (input.reapprovalNoticeDays >= input.validityDays) {
      throw new InvalidInputError('Invalid approval policy', [
        {
          field: 'reapprovalNoticeDays',
          problems: ['reapprovalNoticeDays must be shorter than validityDays'],
        },
      ]);
    }
    const user = requireSignedInUser();

    return this.transactions.run(async (manager) => {
      const now = this.clock.now();
      // Serialises publishers of the same policy key so versions never collide.
      await manager.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [
        `approval-policy:${input.criticality}:${input.category ?? ''}`,
      ]);
      const [current] = await manager.query<{ id: string; version: number }[]>(
        `SELECT id, version FROM approval_policies
          WHERE criticality = $1 AND coalesce(category, '') = $2
          ORDER BY version DESC LIMIT 1`,
        [input.criticality, input.category ?? ''],
      );
      const previous = current ? await policyById(manager, current.id) : null;
      if (current) {
        await manager.query(
          `UPDATE approval_policies SET superseded_at = $2 WHERE id = $1 AND superseded_at IS NULL`,
          [current.id, now],
        );
      }
      const [{ id }] = await manager.query<{ id: string }[]>(
        `INSERT INTO approval_policies (criticality, category, version, required_approvals,
            required_roles, validity_days, reapproval_notice_days, mandatory_items,
            default_max_admins, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
        [
          input.criticality,
          input.category ?? null,
          (current?.version ?? 0) + 1,
          input.requiredApprovals,
          input.requiredRoles,
          input.validityDays,
          input.reapprovalNoticeDays,
          [...new Set(input.mandatoryItems)],
          input.defaultMaxAdmins,
          now,
          user.id,
        ],
      );
      const policy = await policyById(manager, id);
      await this.audit.record(manager, {
        action: 'approval_policy.published',
        entityType: 'approval_policy',
        entityId: id,
        before: previous,
        after: policy,
      });
      return policy;
    });
  }
}
