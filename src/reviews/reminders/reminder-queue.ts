import { Injectable, Logger } from '@nestjs/common';
import { Job, Queue } from 'bullmq';

import { Clock } from '../../common/clock';
import { SchedulerService } from '../../scheduling/scheduler.service';
import { DesiredJob, isReminderJobId, REVIEW_REMINDERS_QUEUE } from './reminder-jobs';

/** Jobs per addBulk call and per pipelined existence check. */
const CHUNK = 1000;
/** Ids named in one log line about jobs kept as they were. */
const LOGGED_IDS = 5;
/** Maximum wait for the worker to finish one promoted job in runDue(), in milliseconds. */
const RUN_DUE_WAIT_MS = 15_000;

/**
 * The Redis side of reminders: adds missing jobs in bulk, removes stale ones and lists what is
 * queued. BullMQ drops an add whose id exists, so every add is preceded by an existence check and
 * every job that would have been dropped is logged with its state.
 */
@Injectable()
export class ReminderQueue {
  private readonly logger = new Logger('ReviewReminders');

  constructor(
    private readonly scheduler: SchedulerService,
    private readonly clock: Clock,
  ) {}

  private queue(): Queue {
    return this.scheduler.queue(REVIEW_REMINDERS_QUEUE);
  }

  /**
   * Adds every job not in Redis yet. A job still waiting or delayed is kept. A job that already
   * finished (completed or failed, and kept by BullMQ) would make a new add a silent no-op, so it
   * is logged, removed and added again. Its processor then re-checks PostgreSQL's unique rows.
   */
  async ensure(jobs: DesiredJob[]): Promise<{ created: number; kept: number }> {
    const queue = this.queue();
    let created = 0;
    let kept = 0;
    const keptIds: string[] = [];
    for (let start = 0; start < jobs.length; start += CHUNK) {
      const chunk = jobs.slice(start, start + CHUNK);
      const states = await this.finishedStates(chunk.map((job) => job.id));
      const toAdd: DesiredJob[] = [];
      for (const [index, job] of chunk.entries()) {
        const state = states[index];
        if (state === 'missing') {
          toAdd.push(job);
        } else if (state === 'completed' || state === 'failed') {
          this.logger.warn(
            { jobId: job.id, state },
            'Reminder job id already used by a finished job, which BullMQ would keep instead of the new one; replacing it',
          );
          await queue.remove(job.id);
          toAdd.push(job);
        } else {
          kept += 1;
          if (keptIds.length < LOGGED_IDS) keptIds.push(job.id);
        }
      }
      await queue.addBulk(
        toAdd.map((job) => ({
          name: job.name,
          data: job.data,
          opts: {
            jobId: job.id,
            delay: Math.max(0, Date.parse(job.data.runAt) - this.clock.now().getTime()),
            removeOnComplete: { age: 30 * 86_400 },
            removeOnFail: { age: 30 * 86_400 },
            attempts: 5,
            backoff: { type: 'exponential', delay: 60_000 },
          },
        })),
      );
      created += toAdd.length;
    }
    if (kept > 0) {
      this.logger.log(
        { kept, sample: keptIds },
        'Reminder jobs already queued under the same ids; kept them instead of adding duplicates',
      );
    }
    return { created, kept };
  }

  /** Removes the jobs among `ids` that exist and are not running; returns how many went. */
  async remove(ids: string[]): Promise<number> {
    const queue = this.queue();
    let removed = 0;
    for (let start = 0; start < ids.length; start += CHUNK) {
      const chunk = ids.slice(start, start + CHUNK);
      const states = await this.finishedStates(chunk);
      const present = chunk.filter((_, index) => states[index] === 'queued');
      const results = await Promise.all(present.map((id) => queue.remove(id)));
      removed += results.filter((result) => result === 1).length;
    }
    return removed;
  }

  /** Ids of reminder jobs that are delayed, waiting or prioritized (not running or finished). */
  async queuedIds(): Promise<string[]> {
    const queue = this.queue();
    const redis = this.scheduler.connection();
    const [delayed, waiting, paused, prioritized] = await Promise.all([
      redis.zrange(queue.toKey('delayed'), 0, -1),
      redis.lrange(queue.toKey('wait'), 0, -1),
      redis.lrange(queue.toKey('paused'), 0, -1),
      redis.zrange(queue.toKey('prioritized'), 0, -1),
    ]);
    return [...delayed, ...waiting, ...paused, ...prioritized].filter(isReminderJobId);
  }

  /**
   * Promotes every delayed reminder job whose `runAt` has come by the injected clock, and waits
   * for this process's worker to finish each one. BullMQ's own delays follow the wall clock, so
   * tests and operators on a moved clock use this to fire what is due. Needs the worker role.
   */
  async runDue(): Promise<string[]> {
    const queue = this.queue();
    const redis = this.scheduler.connection();
    const now = this.clock.now().getTime();
    const ids = (await redis.zrange(queue.toKey('delayed'), 0, -1)).filter(isReminderJobId);
    const due: { job: Job; runAt: number }[] = [];
    for (const id of ids) {
      const job = await Job.fromId(queue, id);
      const runAt = Date.parse((job?.data as { runAt?: string } | undefined)?.runAt ?? '');
      if (job && runAt <= now) due.push({ job, runAt });
    }
    due.sort((a, b) => a.runAt - b.runAt);
    for (const { job } of due) {
      await job.promote();
      await this.waitUntilFinished(queue, job.id!);
    }
    return due.map(({ job }) => job.id!);
  }

  private async waitUntilFinished(queue: Queue, id: string): Promise<void> {
    const deadline = Date.now() + RUN_DUE_WAIT_MS;
    while (Date.now() < deadline) {
      const state = await queue.getJobState(id);
      if (state === 'completed' || state === 'failed' || state === 'unknown') return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(
      `Job ${id} did not finish within ${RUN_DUE_WAIT_MS} ms; is a worker running (PROCESS_ROLE)?`,
    );
  }

  /** For each id: missing, queued (delayed, waiting or running), completed or failed. */
  private async finishedStates(
    ids: string[],
  ): Promise<('missing' | 'queued' | 'completed' | 'failed')[]> {
    if (ids.length === 0) return [];
    const queue = this.queue();
    const pipeline = this.scheduler.connection().pipeline();
    for (const id of ids) {
      pipeline.exists(queue.toKey(id));
      pipeline.zscore(queue.toKey('completed'), id);
      pipeline.zscore(queue.toKey('failed'), id);
    }
    const replies = (await pipeline.exec()) ?? [];
    return ids.map((_, index) => {
      const [existsReply, completedReply, failedReply] = replies.slice(index * 3, index * 3 + 3);
      for (const [error] of [existsReply, completedReply, failedReply]) {
        if (error) throw error;
      }
      if (existsReply[1] === 0) return 'missing';
      if (completedReply[1] !== null) return 'completed';
      if (failedReply[1] !== null) return 'failed';
      return 'queued';
    });
  }
}
