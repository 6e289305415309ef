import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';

import { ThirdPartySystem } from './system.entity';

export type SystemChangeHook = (manager: EntityManager, system: ThirdPartySystem) => Promise<void>;

/**
 * Lets other modules react to a system being created or changed inside the same transaction
 * (vulnerability matching, for one) without the catalog depending on them.
 */
@Injectable()
export class SystemHooks {
  private readonly hooks: SystemChangeHook[] = [];

  register(hook: SystemChangeHook): void {
    this.hooks.push(hook);
  }

  async run(manager: EntityManager, system: ThirdPartySystem): Promise<void> {
    for (const hook of this.hooks) {
      await hook(manager, system);
    }
  }
}
