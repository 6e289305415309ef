import { DataSource } from 'typeorm';

import { AuditService } from '../../src/audit/audit.service';
import { Provider } from '../../src/catalog/provider.entity';
import { providerDescription } from './setup';

/** Client-side times of one change, in ms from performance.now(). */
export interface ChangeTiming {
  /** From the start of the transaction to the return of COMMIT. */
  totalMs: number;
  /** The audit INSERT, including any wait for the chain's advisory lock. */
  appendMs: number;
  /** From the return of the audit INSERT to the return of COMMIT. */
  commitMs: number;
}

/**
 * Runs one change the way ProvidersService.update() does, without its check of the caller's
 * version, in one READ COMMITTED transaction. It locks the provider row, raises its version, saves
 * it and appends a `provider.updated` event with the row before and after through
 * AuditService.record().
 */
export async function changeProvider(
  dataSource: DataSource,
  audit: AuditService,
  providerId: string,
  label: string,
): Promise<ChangeTiming> {
  const startedAt = performance.now();
  let appendStartedAt = 0;
  let appendedAt = 0;
  await dataSource.transaction('READ COMMITTED', async (manager) => {
    const provider = await manager.findOne(Provider, {
      where: { id: providerId },
      lock: { mode: 'pessimistic_write' },
    });
    if (provider === null) throw new Error(`Provider ${providerId} not found`);
    const before = { ...provider };
    provider.description = providerDescription(label);
    provider.updatedAt = new Date();
    provider.version += 1;
    await manager.save(provider);

    appendStartedAt = performance.now();
    await audit.record(manager, {
      action: 'provider.updated',
      entityType: 'provider',
      entityId: providerId,
      before,
      after: provider,
    });
    appendedAt = performance.now();
  });
  const committedAt = performance.now();
  return {
    totalMs: committedAt - startedAt,
    appendMs: appendedAt - appendStartedAt,
    commitMs: committedAt - appendedAt,
  };
}

/** Settings of one closed-loop run of concurrent writers. */
export interface WriterOptions {
  writers: number;
  changesPerWriter: number;
  /** A writer starts no new change after this time (performance.now() ms). */
  deadline: number;
  /** Distinguishes the descriptions of different runs. */
  runLabel: string;
}

/**
 * Runs `writers` concurrent loops, each doing up to `changesPerWriter` changes one after another.
 * Writer w updates only the providers at indexes w, w + writers, w + 2·writers … (modulo their
 * count), so when the count is a multiple of `writers`, no two writers ever wait for the same row. The first failed change stops every loop
 * before its next change, and the promise rejects with that error.
 */
export async function runWriters(
  dataSource: DataSource,
  audit: AuditService,
  providerIds: string[],
  options: WriterOptions,
): Promise<ChangeTiming[]> {
  if (providerIds.length % options.writers !== 0) {
    throw new Error(
      `${providerIds.length} providers cannot be split evenly among ${options.writers} writers`,
    );
  }
  const timings: ChangeTiming[] = [];
  let failure: { error: unknown } | undefined;
  const writer = async (index: number): Promise<void> => {
    for (let change = 0; change < options.changesPerWriter; change++) {
      if (failure !== undefined || performance.now() > options.deadline) return;
      const providerId = providerIds[(index + change * options.writers) % providerIds.length];
      const label = `${options.runLabel} writer ${index} change ${change}`;
      try {
        timings.push(await changeProvider(dataSource, audit, providerId, label));
      } catch (error) {
        failure ??= { error };
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: options.writers }, (_, index) => writer(index)));
  if (failure !== undefined) throw failure.error;
  return timings;
}
