import { Redis } from 'ioredis';
import type { Logger } from '../log/index.js';
import { sleep } from './common.js';

/** One independent Redis server of the Redlock set. */
export interface RedisServerOptions {
  host: string;
  port: number;
  password?: string;
}

/** An ioredis client with the server it talks to, for logs. */
export interface LockRedisClient {
  server: string;
  redis: Redis;
}

/**
 * Open one client per server, tuned so that a Redis that is down makes
 * commands fail at once instead of queueing them (no offline queue, one retry
 * per command, bounded connect and command times), while ioredis keeps
 * reconnecting in the background so the manager recovers by itself.
 */
export function openLockClients(servers: readonly RedisServerOptions[], connectTimeoutMs: number, logger?: Logger): LockRedisClient[] {
  return servers.map(({ host, port, password }) => {
    const server = `${host}:${port}`;
    const redis = new Redis({
      host,
      port,
      ...(password === undefined || password === '' ? {} : { password }),
      connectionName: 'callfs-locks',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: connectTimeoutMs,
      commandTimeout: connectTimeoutMs,
      // Reconnect quickly at first, then at most once a second, for ever.
      retryStrategy: (times: number) => Math.min(times * 50, 1000),
    });
    // ioredis emits an error on every failed reconnect; say it once per outage.
    let down = false;
    redis.on('error', (err: Error) => {
      if (!down) logger?.warn({ server, err: err.message }, 'lock Redis server unreachable');
      down = true;
    });
    redis.on('ready', () => {
      if (down) logger?.info({ server }, 'lock Redis server reachable again');
      down = false;
    });
    return { server, redis };
  });
}

/**
 * Whether a client can take commands now. A client still in its connection
 * handshake gets up to `connectTimeoutMs` to finish it; one that is
 * reconnecting after a failure counts as down at once, so callers fail fast.
 */
export async function isUsable(client: LockRedisClient, connectTimeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const until = performance.now() + connectTimeoutMs;
  while (client.redis.status === 'connecting' || client.redis.status === 'connect') {
    if (performance.now() >= until) return false;
    await sleep(10, signal);
  }
  return client.redis.status === 'ready';
}

/** Close every client without waiting on servers that may be gone. */
export function closeLockClients(clients: readonly LockRedisClient[]): void {
  for (const { redis } of clients) redis.disconnect(false);
}
