import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import IORedis from 'ioredis';
import { DataSource } from 'typeorm';

import { Public } from '../common/access';
import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import { createRedis } from '../scheduling/redis';

type State = 'up' | 'down';

export interface Readiness {
  status: 'ready' | 'degraded' | 'unavailable';
  checks: {
    postgres: { state: State; error?: string };
    migrations: { state: State; pending?: boolean; error?: string };
    redis: { state: State; error?: string };
  };
}

const CHECK_TIMEOUT_MS = 2000;

@ApiTags('health')
@Controller('health')
export class HealthController {
  private readonly redis: IORedis;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(SETTINGS) settings: Settings,
  ) {
    this.redis = createRedis(settings.redisUrl, { failFast: true, name: 'gov-health' });
    this.redis.on('error', () => undefined);
  }

  /** Returns 200 while the process runs and its event loop responds. */
  @Get('live')
  @Public()
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /**
   * Returns 200 when PostgreSQL responds and every migration is applied. Redis down is reported as
   * "degraded" but still 200, because the API serves without it.
   */
  @Get('ready')
  @Public()
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<Readiness> {
    const [postgres, migrations, redis] = await Promise.all([
      this.check(() => this.dataSource.query('SELECT 1')),
      this.check(async () => {
        if (await this.dataSource.showMigrations()) throw new Error('migrations are pending');
      }),
      this.check(() => this.redis.ping()),
    ]);

    const databaseReady = postgres.state === 'up' && migrations.state === 'up';
    let status: Readiness['status'] = 'ready';
    if (!databaseReady) status = 'unavailable';
    else if (redis.state !== 'up') status = 'degraded';
    void reply.status(databaseReady ? 200 : 503);
    return { status, checks: { postgres, migrations, redis } };
  }

  private async check(probe: () => Promise<unknown>): Promise<{ state: State; error?: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`)),
        CHECK_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([probe(), timeout]);
      return { state: 'up' };
    } catch (error) {
      return { state: 'down', error: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
  }

  onModuleDestroy(): void {
    this.redis.disconnect();
  }
}
