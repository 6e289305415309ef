import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  BeforeApplicationShutdown,
} from '@nestjs/common';
import { Job, JobsOptions, Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

import { runsWorker } from '../config/settings';
import type { Settings } from '../config/settings';
import { SETTINGS } from '../config/runtime';
import { runWithContext } from '../common/request-context';
import { createRedis, describeRedis } from './redis';

/** Handles one job; `token` is the worker's lock token, needed to move the job back to delayed. */
/** Maximum wait for running jobs at shutdown, in milliseconds. */
const SHUTDOWN_WAIT_MS = 15_000;

/** Resolves true when `work` settles within `ms`, false otherwise. */
async function withinTime(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const result = await Promise.race([
    work.then(
      () => true as const,
      () => true as const,
    ),
    timeout,
  ]);
  clearTimeout(timer);
  return result;
}

export type JobHandler = (job: Job, token: string | undefined) => Promise<unknown>;

interface RecurringJob {
  queue: string;
  schedulerId: string;
  cron: string;
  jobName: string;
  data: object;
}

/**
 * Owns every BullMQ queue and worker. Feature modules register handlers and recurring jobs during
 * module init. On bootstrap the worker starts (in the worker role) and recurring jobs are upserted
 * as job schedulers. The upsert repeats on every reconnect, because a Redis without persistence may
 * have lost them. PostgreSQL stays the source of truth, and handlers re-read it before acting.
 */
@Injectable()
export class SchedulerService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Scheduler');
  private readonly producer: IORedis;
  private readonly queues = new Map<string, Queue>();
  private readonly handlers = new Map<string, Map<string, JobHandler>>();
  private readonly recurring: RecurringJob[] = [];
  private readonly retired: { queue: string; schedulerId: string }[] = [];
  private readonly workers: { worker: Worker; connection: IORedis }[] = [];
  private readonly readyCallbacks: { name: string; callback: () => Promise<void> }[] = [];
  private lastErrorLog = 0;
  /** Set once every module has registered its jobs; Redis may connect before that. */
  private bootstrapped = false;

  constructor(@Inject(SETTINGS) private readonly settings: Settings) {
    this.producer = createRedis(settings.redisUrl, { failFast: true, name: 'gov-producer' });
    this.producer.on('error', (error) => this.logRedisError(error));
    this.producer.on('ready', () => void this.onRedisReady());
  }

  /** Registers the handler of one job name; a second handler for the same name is a start-up error. */
  handle(queueName: string, jobName: string, handler: JobHandler): void {
    const byName = this.handlers.get(queueName) ?? new Map<string, JobHandler>();
    if (byName.has(jobName)) {
      throw new Error(`Job "${jobName}" on queue "${queueName}" has two handlers`);
    }
    byName.set(jobName, handler);
    this.handlers.set(queueName, byName);
  }

  /** Declares a recurring job; its scheduler id is fixed, so every instance upserts the same schedule. */
  scheduleRecurring(job: RecurringJob): void {
    this.recurring.push(job);
  }

  /** Removes a schedule that an older configuration created, once Redis is reachable. */
  removeRecurring(queue: string, schedulerId: string): void {
    this.retired.push({ queue, schedulerId });
  }

  /**
   * Runs `callback` each time Redis becomes ready after bootstrap, once recurring jobs are
   * registered. A Redis without persistence may have lost its jobs, so rebuilders hook in here.
   */
  onReady(name: string, callback: () => Promise<void>): void {
    this.readyCallbacks.push({ name, callback });
  }

  /** The producer connection, for reads BullMQ has no method for (such as listing job ids). */
  connection(): IORedis {
    return this.producer;
  }

  /**
   * Reads Redis's maxmemory-policy. Returns null when the server rejects CONFIG (managed Redis
   * services often disable it), so callers can tell "unknown" from a real policy.
   */
  async maxmemoryPolicy(): Promise<string | null> {
    try {
      const reply = (await this.producer.config('GET', 'maxmemory-policy')) as string[];
      return reply[1] ?? null;
    } catch (error) {
      this.logger.log(
        { err: error },
        'Could not read Redis maxmemory-policy (CONFIG may be disabled); eviction not checked',
      );
      return null;
    }
  }

  /** Adds a job with a deterministic id; BullMQ ignores a second add with the same id while it is kept. */
  async add(
    queueName: string,
    jobName: string,
    data: object,
    options: JobsOptions & { jobId: string },
  ): Promise<void> {
    if (options.jobId.includes(':')) {
      throw new Error(`Job id "${options.jobId}" contains ":", which BullMQ rejects`);
    }
    await this.queue(queueName).add(jobName, data, options);
  }

  queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.producer, prefix: this.settings.queuePrefix });
      queue.on('error', (error) => this.logRedisError(error));
      this.queues.set(name, queue);
    }
    return queue;
  }

  async onApplicationBootstrap(): Promise<void> {
    for (const job of this.recurring) {
      if (!this.handlers.get(job.queue)?.has(job.jobName)) {
        throw new Error(`Recurring job "${job.jobName}" on queue "${job.queue}" has no handler`);
      }
    }
    if (runsWorker(this.settings)) {
      for (const queueName of this.handlers.keys()) {
        this.workers.push(this.startWorker(queueName));
      }
    }
    this.logger.log(`Scheduling through Redis at ${describeRedis(this.settings.redisUrl)}`);
    this.bootstrapped = true;
    if (this.producer.status === 'ready') await this.onRedisReady();
  }

  /**
   * Closes workers after their active jobs finish, then the queues and the connection. This runs
   * before any module's onApplicationShutdown, so running jobs still have their database pool.
   */
  async beforeApplicationShutdown(): Promise<void> {
    // A worker waits for Redis to acknowledge its jobs, which never happens while Redis is gone.
    // The wait is bounded, so such a job is left to BullMQ's stalled-job check and the sweep.
    const closed = await withinTime(
      Promise.all(this.workers.map(({ worker }) => worker.close())),
      SHUTDOWN_WAIT_MS,
    );
    if (!closed) {
      this.logger.warn(
        `Workers did not finish within ${SHUTDOWN_WAIT_MS} ms (is Redis down?); stopping anyway`,
      );
      await withinTime(Promise.all(this.workers.map(({ worker }) => worker.close(true))), 2000);
    }
    // BullMQ leaves connections it was given open; they are this service's to close.
    for (const { connection } of this.workers) connection.disconnect();
    await withinTime(Promise.all([...this.queues.values()].map((queue) => queue.close())), 2000);
    this.producer.disconnect();
  }

  private startWorker(queueName: string): { worker: Worker; connection: IORedis } {
    const handlers = this.handlers.get(queueName)!;
    const connection = createRedis(this.settings.redisUrl, {
      failFast: false,
      name: `gov-worker-${queueName}`,
    });
    const worker = new Worker(
      queueName,
      async (job, token) => {
        const handler = handlers.get(job.name);
        if (!handler) throw new Error(`No handler for job "${job.name}" on queue "${queueName}"`);
        return runWithContext(
          {
            requestId: `job-${job.id ?? 'unknown'}`,
            clientAddress: undefined,
            actor: 'system',
            channel: 'job',
          },
          () => handler(job, token),
        );
      },
      {
        connection,
        prefix: this.settings.queuePrefix,
        concurrency: 2,
      },
    );
    worker.on('error', (error) => this.logRedisError(error));
    worker.on('completed', (job) =>
      this.logger.log({ queue: queueName, job: job.name, jobId: job.id }, 'Job completed'),
    );
    worker.on('failed', (job, error) =>
      this.logger.warn(
        { queue: queueName, job: job?.name, jobId: job?.id, err: error },
        'Job failed',
      ),
    );
    return { worker, connection };
  }

  private async onRedisReady(): Promise<void> {
    if (!this.bootstrapped) return;
    try {
      await this.warnUnlessNoEviction();
      for (const job of this.retired) {
        await this.queue(job.queue).removeJobScheduler(job.schedulerId);
      }
      for (const job of this.recurring) {
        await this.queue(job.queue).upsertJobScheduler(
          job.schedulerId,
          { pattern: job.cron, tz: 'UTC' },
          { name: job.jobName, data: job.data },
        );
      }
    } catch (error) {
      this.logger.warn(
        { err: error },
        'Could not register recurring jobs; retrying when Redis reconnects',
      );
      return;
    }
    // Not awaited, so a long rebuild does not hold up application start-up.
    void this.runReadyCallbacks();
  }

  private async runReadyCallbacks(): Promise<void> {
    for (const { name, callback } of this.readyCallbacks) {
      try {
        await callback();
      } catch (error) {
        this.logger.warn({ err: error, task: name }, 'Start-up task failed after Redis connected');
      }
    }
  }

  private async warnUnlessNoEviction(): Promise<void> {
    const policy = await this.maxmemoryPolicy();
    if (policy !== null && policy !== 'noeviction') {
      this.logger.warn(
        `Redis maxmemory-policy is "${policy}"; set it to "noeviction" or Redis may silently drop queued jobs`,
      );
    }
  }

  /** Logs Redis errors at most every 30 seconds, because a down Redis raises one per retry. */
  private logRedisError(error: Error): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 30_000) return;
    this.lastErrorLog = now;
    this.logger.warn(
      `Redis unavailable (${error.message}); scheduled work resumes when it returns`,
    );
  }
}
