import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { Clock } from '../common/clock';
import { currentContext } from '../common/request-context';

export interface AuditEntry {
  action: string;
  entityType: string;
  entityId: string;
  before: object | null;
  after: object | null;
}

/** Result of recomputing the chain; `firstBrokenSeq` is the earliest event whose link or hash fails. */
export interface ChainVerification {
  valid: boolean;
  events: number;
  headSeq: string | null;
  firstBrokenSeq: string | null;
}

/**
 * Appends audit events inside the caller's transaction, so the change and its record commit or roll
 * back together. The actor, request id and client address come from the request context.
 */
@Injectable()
export class AuditService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
  ) {}

  async record(manager: EntityManager, entry: AuditEntry): Promise<void> {
    await this.insert(manager, entry, '$8');
  }

  /**
   * Appends an event like record(), with `after` merged (jsonb `||`) with the object that the SQL
   * expression `afterQuery` returns, so a large part of the event can be built by PostgreSQL from
   * tables of the caller's transaction. The expression takes no parameters and must return a
   * jsonb object.
   */
  async recordWithAfterQuery(
    manager: EntityManager,
    entry: AuditEntry,
    afterQuery: string,
  ): Promise<void> {
    await this.insert(manager, entry, `COALESCE($8::jsonb, '{}') || (${afterQuery})`);
  }

  /** Inserts one event; `afterSql` is the SQL for the `after` column, reading `entry.after` as `$8`. */
  private async insert(manager: EntityManager, entry: AuditEntry, afterSql: string): Promise<void> {
    const context = currentContext();
    await manager.query(
      `INSERT INTO audit_events
         (occurred_at, actor, channel, action, entity_type, entity_id, before, after, request_id, client_address)
       VALUES ($1, $2, $3, $4, $5, $6, $7, ${afterSql}, $9, $10)`,
      [
        this.clock.now(),
        context?.actor ?? 'system',
        context?.channel ?? 'system',
        entry.action,
        entry.entityType,
        entry.entityId,
        toJson(entry.before),
        toJson(entry.after),
        context?.requestId ?? null,
        context?.clientAddress ?? null,
      ],
    );
  }

  /** Recomputes every link from the first event to the head in one pass inside PostgreSQL. */
  async verify(): Promise<ChainVerification> {
    const [summary] = await this.dataSource.query<{ events: number; head: string | null }[]>(
      `SELECT count(*)::int AS events, max(seq)::text AS head FROM audit_events`,
    );
    const [broken] = await this.dataSource.query<{ seq: string }[]>(`
      SELECT seq::text AS seq FROM (
        SELECT e.seq, e.hash, e.prev_hash,
               lag(e.hash) OVER (ORDER BY e.seq) AS prior_hash,
               lag(e.seq) OVER (ORDER BY e.seq) AS prior_seq,
               sha256(e.prev_hash || convert_to(audit_canonical(e), 'UTF8')) AS expected
        FROM audit_events e
      ) chain
      WHERE hash <> expected
         OR prev_hash <> COALESCE(prior_hash, '\\x${'00'.repeat(32)}'::bytea)
         OR seq <> COALESCE(prior_seq, 0) + 1
      ORDER BY seq
      LIMIT 1`);
    return {
      valid: broken === undefined,
      events: summary.events,
      headSeq: summary.head,
      firstBrokenSeq: broken?.seq ?? null,
    };
  }
}

function toJson(value: object | null): string | null {
  return value === null ? null : JSON.stringify(value);
}
