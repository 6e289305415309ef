import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

/**
 * Runs work in one READ COMMITTED transaction. Services open transactions here, never in
 * controllers, and write the state change and its audit event through the same manager.
 */
@Injectable()
export class Transactions {
  constructor(private readonly dataSource: DataSource) {}

  run<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction('READ COMMITTED', work);
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
