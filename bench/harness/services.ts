import { Redis } from 'ioredis';
import type { Cleanup } from './cleanup.js';
import type { ServicePids } from './monitors.js';
import { pinService, restoreService } from './pinning.js';

/** Redis's pid from INFO (null when it does not answer). */
async function redisPid(addr: string): Promise<number | null> {
  const [host, port] = addr.split(':');
  const redis = new Redis({ host: host ?? '127.0.0.1', port: Number(port ?? 6379), lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    return Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1] ?? Number.NaN) || null;
  } catch {
    return null;
  } finally {
    redis.disconnect();
  }
}

/**
 * Move the running Postgres and Redis to the server core for the run; their
 * affinity is restored by the cleanup. Returns their pids for CPU accounting.
 */
export async function pinServices(postmasterPid: number | null, redisAddr: string, cleanup: Cleanup, log: (line: string) => void): Promise<ServicePids> {
  const pids: ServicePids = { postgres: postmasterPid, redis: await redisPid(redisAddr) };
  for (const [name, pid] of Object.entries(pids) as [string, number | null][]) {
    if (pid === null) {
      log(`${name}: pid unknown, not pinned`);
      continue;
    }
    const pinned = await pinService(name, pid, log);
    if (pinned !== null) cleanup.add(`restore ${name} CPU affinity`, () => restoreService(pinned));
  }
  return pids;
}
