import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One append-only audit record; `seq`, `prevHash` and `hash` are set by the database trigger. */
@Entity({ name: 'audit_events' })
export class AuditEvent {
  @PrimaryColumn({ type: 'bigint' })
  seq!: string;

  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt!: Date;

  @Column({ type: 'varchar' })
  actor!: string;

  @Column({ type: 'varchar' })
  channel!: string;

  @Column({ type: 'varchar' })
  action!: string;

  @Column({ name: 'entity_type', type: 'varchar' })
  entityType!: string;

  @Column({ name: 'entity_id', type: 'varchar' })
  entityId!: string;

  @Column({ type: 'jsonb', nullable: true })
  before!: unknown;

  @Column({ type: 'jsonb', nullable: true })
  after!: unknown;

  @Column({ name: 'request_id', type: 'varchar', nullable: true })
  requestId!: string | null;

  @Column({ name: 'client_address', type: 'varchar', nullable: true })
  clientAddress!: string | null;

  @Column({ name: 'prev_hash', type: 'bytea', select: false })
  prevHash!: Buffer;

  @Column({ type: 'bytea', select: false })
  hash!: Buffer;
}
