import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { returnedRows } from '../common/transactions';

/** Candidate (system, entry) pairs: names equal after normalisation (`name`) or linked by an alias. */
const CANDIDATES_SQL = `
  SELECT s.id AS system_id, k.cve_id, 'name' AS matched_by
    FROM systems s
    JOIN providers p ON p.id = s.provider_id
    JOIN kev_entries k ON k.vendor_key = p.match_key AND k.product_key = s.product_key
   WHERE s.lifecycle_status <> 'retired' AND k.withdrawn_at IS NULL
  UNION ALL
  SELECT s.id, k.cve_id, 'alias'
    FROM systems s
    JOIN providers p ON p.id = s.provider_id
    JOIN product_aliases a ON a.provider_key = p.match_key AND a.product_key = s.product_key
    JOIN kev_entries k ON k.vendor_key = a.kev_vendor_key AND k.product_key = a.kev_product_key
   WHERE s.lifecycle_status <> 'retired' AND k.withdrawn_at IS NULL`;

/**
 * Matches systems to KEV entries and records each new pair as a pending finding. Existing findings
 * are never overwritten, so a confirmation or dismissal survives every later import.
 */
@Injectable()
export class MatchingService {
  constructor(
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /** Adds findings for every new match, optionally only for one system; returns how many. */
  async matchNew(manager: EntityManager, systemId?: string): Promise<number> {
    const now = this.clock.now();
    const rows = await manager.query<Record<string, unknown>[]>(
      `INSERT INTO vulnerability_findings
         (system_id, source, cve_id, matched_by, match_state, first_seen_at, created_at, updated_at)
       SELECT DISTINCT ON (c.system_id, c.cve_id) c.system_id, 'kev', c.cve_id, c.matched_by, 'pending', $1, $1, $1
         FROM (${CANDIDATES_SQL}) c
        WHERE ($2::uuid IS NULL OR c.system_id = $2::uuid)
        ORDER BY c.system_id, c.cve_id, c.matched_by DESC
       ON CONFLICT (system_id, cve_id) DO NOTHING
       RETURNING *`,
      [now, systemId ?? null],
    );
    // One event per finding with its stored state, so the finding's history starts at its match.
    for (const row of rows) {
      await this.audit.record(manager, {
        action: 'finding.matched',
        entityType: 'finding',
        entityId: String(row.id),
        before: null,
        after: row,
      });
    }
    return rows.length;
  }

  /**
   * Removes pending KEV findings of a system that no longer match (its product or provider was
   * renamed); decided and fixed findings stay as evidence.
   */
  async pruneStale(manager: EntityManager, systemId: string): Promise<number> {
    const rows = returnedRows<{ id: string; cve_id: string }>(
      await manager.query(
        `DELETE FROM vulnerability_findings f
        WHERE f.system_id = $1 AND f.source = 'kev' AND f.match_state = 'pending' AND f.fixed_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM (${CANDIDATES_SQL}) c WHERE c.system_id = f.system_id AND c.cve_id = f.cve_id)
        RETURNING f.id, f.cve_id`,
        [systemId],
      ),
    );
    if (rows.length > 0) {
      await this.audit.record(manager, {
        action: 'findings.unmatched',
        entityType: 'system',
        entityId: systemId,
        before: { findings: rows.map((row) => ({ findingId: row.id, cveId: row.cve_id })) },
        after: null,
      });
    }
    return rows.length;
  }
}
