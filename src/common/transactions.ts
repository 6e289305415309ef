import { Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

/**
 * Runs work in one READ COMMITTED transaction. Services open transactions here, never in
 * controllers, and write the state change and its audit event through the same manager.
 */
@Injectable()
export class Transactions {
  private readonly logger = new Logger('Transactions');
  /** Work to start once a transaction opened by run() has committed, by its manager. */
  private readonly pending = new WeakMap<EntityManager, (() => Promise<void>)[]>();

  constructor(private readonly dataSource: DataSource) {}

  async run<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const callbacks: (() => Promise<void>)[] = [];
    const result = await this.dataSource.transaction('READ COMMITTED', (manager) => {
      this.pending.set(manager, callbacks);
      return work(manager);
    });
    for (const callback of callbacks) {
      try {
        await callback();
      } catch (error) {
        // The change has committed; work after it keeps derived state that can be rebuilt.
        this.logger.warn({ err: error }, 'Work after a commit failed');
      }
    }
    return result;
  }

  /**
   * Runs `callback` after the transaction of `manager` commits, for work that must see the
   * committed state (such as rescheduling jobs). Returns false when `manager` was not opened by
   * run(), so the caller knows nothing was registered.
   */
  afterCommit(manager: EntityManager, callback: () => Promise<void>): boolean {
    const callbacks = this.pending.get(manager);
    if (!callbacks) return false;
    callbacks.push(callback);
    return true;
  }
}

/**
 * Returns the RETURNING rows of a raw query. TypeORM's PostgreSQL driver gives INSERT rows as an
 * array but UPDATE and DELETE as a [rows, affectedCount] pair.
 */
export function returnedRows<T>(result: T[] | [T[], number]): T[] {
  if (result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0];
  }
  return result as T[];
}
