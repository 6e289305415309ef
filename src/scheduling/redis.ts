import IORedis, { RedisOptions } from 'ioredis';

/**
 * Builds a Redis client that keeps reconnecting with a capped back-off, so a Redis outage degrades
 * scheduling but never stops the API. `failFast` clients reject commands while disconnected instead
 * of queueing them, which keeps request handlers from waiting on Redis.
 */
export function createRedis(url: string, options: { failFast: boolean; name: string }): IORedis {
  const redisOptions: RedisOptions = {
    connectionName: options.name,
    lazyConnect: false,
    maxRetriesPerRequest: options.failFast ? 1 : null,
    enableOfflineQueue: !options.failFast,
    retryStrategy: (attempt) => Math.min(attempt * 250, 5000),
    connectTimeout: 3000,
  };
  return new IORedis(url, redisOptions);
}

/** Describes a Redis URL without its password, for logs. */
export function describeRedis(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || '6379'}${parsed.pathname === '/' ? '' : parsed.pathname}`;
}
