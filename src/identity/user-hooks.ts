import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';

export type UserDeactivatedHook = (manager: EntityManager, userId: string) => Promise<void>;

/**
 * Lets other modules react to a user's deactivation inside the same transaction (access reviews
 * move the user's open items to another reviewer) without identity depending on them.
 */
@Injectable()
export class UserHooks {
  private readonly deactivated: UserDeactivatedHook[] = [];

  onDeactivated(hook: UserDeactivatedHook): void {
    this.deactivated.push(hook);
  }

  async runDeactivated(manager: EntityManager, userId: string): Promise<void> {
    for (const hook of this.deactivated) await hook(manager, userId);
  }
}
