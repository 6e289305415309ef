import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { Page, toPage } from '../common/pagination';
import { TaskListQuery } from './access.dto';
import { DEPROVISIONING_SLA_DAYS } from './access.types';

export interface DeprovisioningTaskView {
  id: string;
  accountId: string;
  systemId: string;
  trigger: string;
  triggerRefId: string | null;
  openedAt: Date;
  assigneeId: string | null;
  status: string;
  dueAt: Date;
  executedAt: Date | null;
  verifiedAt: Date | null;
  version: number;
}

/**
 * Opens a de-provisioning task for an account, assigned to the system owner and due after the
 * SLA. Returns the new task id, or null when a task for the same account and trigger is already
 * open (the partial unique index makes a repeat a no-op).
 */
export async function openDeprovisioningTask(
  manager: EntityManager,
  task: { accountId: string; trigger: string; triggerRefId: string | null },
  now: Date,
): Promise<string | null> {
  const dueAt = new Date(now.getTime() + DEPROVISIONING_SLA_DAYS * 86_400_000);
  const rows = await manager.query<{ id: string }[]>(
    `INSERT INTO deprovisioning_tasks
       (account_id, system_id, trigger, trigger_ref_id, opened_at, assignee_id, status, due_at, updated_at)
     SELECT a.id, a.system_id, $2, $3, $4, s.owner_id, 'open', $5, $4
       FROM accounts a JOIN systems s ON s.id = a.system_id
      WHERE a.id = $1
     ON CONFLICT (account_id, trigger) WHERE status = 'open' DO NOTHING
     RETURNING id`,
    [task.accountId, task.trigger, task.triggerRefId, now, dueAt],
  );
  return rows[0]?.id ?? null;
}

/** Lists de-provisioning tasks; their execution and verification belong to another workflow. */
@Injectable()
export class DeprovisioningTasksService {
  constructor(private readonly dataSource: DataSource) {}

  async list(query: TaskListQuery): Promise<Page<DeprovisioningTaskView>> {
    const conditions: string[] = [];
    const parameters: unknown[] = [];
    const add = (column: string, value: unknown): void => {
      parameters.push(value);
      conditions.push(`${column} = $${parameters.length}`);
    };
    if (query.systemId) add('system_id', query.systemId);
    if (query.accountId) add('account_id', query.accountId);
    if (query.status) add('status', query.status);
    if (query.trigger) add('trigger', query.trigger);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const direction = query.order === 'desc' ? 'DESC' : 'ASC';
    const rows = await this.dataSource.query<Record<string, unknown>[]>(
      `SELECT * FROM deprovisioning_tasks ${where}
        ORDER BY opened_at ${direction}, id OFFSET ${query.offset} LIMIT ${query.limit + 1}`,
      parameters,
    );
    return toPage(
      rows.map((row) => ({
        id: row.id as string,
        accountId: row.account_id as string,
        systemId: row.system_id as string,
        trigger: row.trigger as string,
        triggerRefId: row.trigger_ref_id as string | null,
        openedAt: row.opened_at as Date,
        assigneeId: row.assignee_id as string | null,
        status: row.status as string,
        dueAt: row.due_at as Date,
        executedAt: row.executed_at as Date | null,
        verifiedAt: row.verified_at as Date | null,
        version: row.version as number,
      })),
      query,
    );
  }
}
