import { Column, Entity, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';

import type { Criticality, LifecycleStatus, SystemCategory, SystemHost } from './catalog.types';
import { Provider } from './provider.entity';

/** A provider's product as deployed here: the unit every control is judged on. */
@Entity({ name: 'systems' })
export class ThirdPartySystem {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'provider_id', type: 'uuid' })
  providerId!: string;

  @ManyToOne(() => Provider, { nullable: false })
  @JoinColumn({ name: 'provider_id' })
  provider?: Provider;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ type: 'varchar', length: 200 })
  product!: string;

  @Column({ name: 'product_version', type: 'varchar', length: 100, nullable: true })
  productVersion!: string | null;

  @Column({ type: 'varchar', length: 40 })
  category!: SystemCategory;

  @Column({ type: 'varchar', length: 20 })
  criticality!: Criticality;

  /** The owning user; owners may edit their own systems and decide their findings. */
  @Column({ name: 'owner_id', type: 'uuid', nullable: true })
  ownerId!: string | null;

  /** Contact address of the owning team, for owners who are not (yet) users. */
  @Column({ name: 'owner_email', type: 'varchar', length: 320, nullable: true })
  ownerEmail!: string | null;

  /** Hosts the system runs on; later checks compare them with the signing-certificate host. */
  @Column({ type: 'jsonb' })
  hosts!: SystemHost[];

  @Column({ name: 'network_zone', type: 'varchar', length: 100, nullable: true })
  networkZone!: string | null;

  @Column({ name: 'deploys_software', type: 'boolean' })
  deploysSoftware!: boolean;

  @Column({ name: 'lifecycle_status', type: 'varchar', length: 20 })
  lifecycleStatus!: LifecycleStatus;

  @Column({ name: 'retired_at', type: 'timestamptz', nullable: true })
  retiredAt!: Date | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;

  @Column({ type: 'integer' })
  version!: number;
}
