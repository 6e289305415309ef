import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A third-party provider (vendor) of remote-management or deployment software. */
@Entity({ name: 'providers' })
export class Provider {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ type: 'varchar', length: 500, nullable: true })
  website!: string | null;

  @Column({ type: 'text', nullable: true })
  description!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;

  /** Optimistic-concurrency counter, raised by one on every change. */
  @Column({ type: 'integer' })
  version!: number;
}
