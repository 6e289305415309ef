import { DataSource } from 'typeorm';

import { AuditEvent } from '../src/audit/audit-event.entity';
import { AuditService } from '../src/audit/audit.service';
import { ManualClock } from '../src/common/clock';
import { dataSourceOptions } from '../src/database/data-source';
import { createTestDatabase, superuserQuery } from './support/database';

describe('audit hash chain', () => {
  let dataSource: DataSource;
  let audit: AuditService;
  let databaseUrl: string;

  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    const options = dataSourceOptions(databaseUrl);
    dataSource = new DataSource({
      ...options,
      entities: [AuditEvent],
      extra: { ...(options.extra as object), max: 30 },
    });
    await dataSource.initialize();
    audit = new AuditService(dataSource, new ManualClock());
  });

  afterAll(async () => {
    await dataSource.destroy();
  });

  it('stays valid under 25 concurrent writers with rollbacks', async () => {
    const writers = 25;
    const appendsPerWriter = 20;
    let committed = 0;

    await Promise.all(
      Array.from({ length: writers }, async (_, writer) => {
        for (let index = 0; index < appendsPerWriter; index += 1) {
          const number = writer * appendsPerWriter + index;
          const rollsBack = number % 7 === 3;
          const longTransaction = number % 5 === 0;
          try {
            await dataSource.transaction(async (manager) => {
              await audit.record(manager, {
                action: 'test.appended',
                entityType: 'test',
                entityId: String(number),
                before: null,
                after: { writer, index },
              });
              // Hold the chain lock a little longer, as a business transaction would.
              if (longTransaction) await manager.query('SELECT pg_sleep(0.005)');
              if (rollsBack) throw new Error('rolled back on purpose');
            });
            committed += 1;
          } catch (error) {
            if (!rollsBack) throw error;
          }
        }
      }),
    );

    const result = await audit.verify();
    const total = writers * appendsPerWriter;
    const rollbacks = Array.from({ length: total }, (_, n) => n).filter((n) => n % 7 === 3).length;
    expect(committed).toBe(total - rollbacks);
    expect(result).toEqual({
      valid: true,
      events: committed,
      headSeq: String(committed),
      firstBrokenSeq: null,
    });

    const [links] = await superuserQuery<{ predecessors: string; rows: string }>(
      databaseUrl,
      `SELECT count(DISTINCT prev_hash) AS predecessors, count(*) AS rows FROM audit_events`,
    );
    expect(links.predecessors).toBe(links.rows);
    const rolledBack = await superuserQuery(
      databaseUrl,
      `SELECT 1 FROM audit_events WHERE (entity_id::int % 7) = 3`,
    );
    expect(rolledBack).toHaveLength(0);
  });

  it('hashes what PostgreSQL stores and finds a changed character', async () => {
    // Written as raw JSON text: 9007199254740993 is beyond 2^53 and 1.50 keeps its scale in jsonb.
    await superuserQuery(
      databaseUrl,
      `INSERT INTO audit_events (occurred_at, actor, channel, action, entity_type, entity_id, before, after)
       VALUES (now(), 'tester', 'system', 'test.precision', 'test', 'precise', NULL,
               '{"zeta": {"b": 2, "a": [3, null, {"y": 1, "x": 0}]}, "amount": 1.50, "big": 9007199254740993, "none": null}')`,
    );
    const stored = await dataSource
      .getRepository(AuditEvent)
      .findOneByOrFail({ entityId: 'precise' });
    expect(stored.occurredAt).toBeInstanceOf(Date);
    expect(await audit.verify()).toMatchObject({ valid: true });

    const [{ text }] = await superuserQuery<{ text: string }>(
      databaseUrl,
      `SELECT after::text AS text FROM audit_events WHERE seq = ${Number(stored.seq)}`,
    );
    expect(text).toContain('"amount": 1.50');
    expect(text).toContain('9007199254740993');

    await superuserQuery(
      databaseUrl,
      `ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
       UPDATE audit_events SET after = replace(after::text, '1.50', '1.51')::jsonb WHERE seq = ${Number(stored.seq)};
       ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;`,
    );
    expect(await audit.verify()).toMatchObject({ valid: false, firstBrokenSeq: stored.seq });
  });

  it('keeps the JavaScript undefined out of the stored state', async () => {
    await dataSource.transaction((manager) =>
      audit.record(manager, {
        action: 'test.undefined',
        entityType: 'test',
        entityId: 'undefined-field',
        before: null,
        after: { kept: 1, dropped: undefined },
      }),
    );
    const [row] = await superuserQuery<{ after: Record<string, unknown> }>(
      databaseUrl,
      `SELECT after FROM audit_events WHERE entity_id = 'undefined-field'`,
    );
    expect(row.after).toEqual({ kept: 1 });
  });
});
