import { setMaxListeners } from 'node:events';
import Redlock, { type Lock } from 'redlock';
import { CallfsError, unavailable } from '../errors.js';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import type { LockManager, LockOptions } from './types.js';
import {
  abortReason,
  closedError,
  describeKeys,
  failureOutcome,
  linkedController,
  lockMetrics,
  lockTimeout,
  normalizeKeys,
  resolveWaitMs,
  sleep,
} from './common.js';
import { closeLockClients, isUsable, openLockClients, type RedisServerOptions } from './redis-clients.js';
import { keepLockAlive } from './lease.js';
import { readRefusal, type Refusal } from './redlock-votes.js';

export type { RedisServerOptions } from './redis-clients.js';

/** Options of {@link createRedlockLockManager}. */
export interface RedlockLockManagerOptions {
  /** Independent Redis servers (1, or 3 and more for fault tolerance); a majority must agree. */
  servers: RedisServerOptions[];
  /** Prepended to every key (default `callfs:lock:`). */
  keyPrefix?: string;
  /** Lease of a lock in ms (default 10 000); it is extended every third of it while `fn` runs. */
  ttlMs?: number;
  /** Default acquisition deadline in ms when withLock is not given one (default 10 000). */
  waitMs?: number;
  /** Pause between two attempts on a held lock (default 50 ms), plus up to `retryJitterMs` at random (default 50). */
  retryDelayMs?: number;
  retryJitterMs?: number;
  /** Connect and command timeout towards each Redis server (default 1 000 ms). */
  connectTimeoutMs?: number;
  logger?: Logger;
  metrics?: Metrics;
}

/** Failed attempts in a row that are not "held by someone else" before the service counts as unavailable. */
const MAX_SERVICE_FAILURES = 3;

/**
 * The cluster LockManager: Redlock over one ioredis client per Redis server.
 * A wait polls until the deadline (LOCKED); a lock held by this instance is
 * extended while `fn` runs and, if an extension is refused or the lease runs
 * out, `fn`'s signal aborts with LOCKED. Unreachable Redis (fewer than a
 * majority answering) is SERVICE_UNAVAILABLE within about `connectTimeoutMs`.
 * Not re-entrant: taking a key this caller already holds waits for the deadline.
 */
export function createRedlockLockManager(options: RedlockLockManagerOptions): LockManager {
  if (options.servers.length === 0) throw new TypeError('the Redlock lock manager needs at least one Redis server');
  const keyPrefix = options.keyPrefix ?? 'callfs:lock:';
  const ttlMs = Math.round(options.ttlMs ?? 10_000);
  if (!(ttlMs >= 100)) throw new TypeError(`lock ttl must be at least 100 ms, not ${String(options.ttlMs)}`);
  const defaultWaitMs = resolveWaitMs(options.waitMs, 10_000);
  const retryDelayMs = Math.max(1, options.retryDelayMs ?? 50);
  const retryJitterMs = Math.max(0, options.retryJitterMs ?? 50);
  const connectTimeoutMs = Math.max(1, options.connectTimeoutMs ?? 1000);
  const { logger } = options;
  const metrics = lockMetrics(options.metrics);

  const clients = openLockClients(options.servers, connectTimeoutMs, logger);
  // retryCount 0: this module does its own waiting, with a deadline and a signal.
  const redlock = new Redlock(
    clients.map((c) => c.redis),
    { retryCount: 0, retryDelay: retryDelayMs, retryJitter: retryJitterMs },
  );
  const quorum = Math.floor(clients.length / 2) + 1;
  const closing = new AbortController();
  // Every waiting caller listens on it; that is by design, not a leak.
  setMaxListeners(0, closing.signal);
  const running = new Set<Promise<unknown>>();

  async function reachable(signal?: AbortSignal): Promise<number> {
    const usable = await Promise.all(clients.map((c) => isUsable(c, connectTimeoutMs, signal)));
    return usable.filter(Boolean).length;
  }

  /** One try: the lock, or how the servers refused it. */
  async function attempt(resources: string[]): Promise<{ lock: Lock } | { refusal: Refusal; error: unknown }> {
    try {
      return { lock: await redlock.acquire(resources, ttlMs) };
    } catch (error) {
      const refusal = await readRefusal(error);
      if (refusal === null) throw error;
      return { refusal, error };
    }
  }

  async function acquire(resources: string[], keys: string[], waitMs: number, startedAt: number, signal: AbortSignal): Promise<Lock> {
    const deadline = startedAt + waitMs;
    let serviceFailures = 0;
    let lastError: unknown;
    for (;;) {
      if (signal.aborted) throw abortReason(signal);
      if ((await reachable(signal)) < quorum) throw unavailable('locks', 'the lock service is unavailable', lastError);
      const result = await attempt(resources);
      if ('lock' in result) {
        if (!signal.aborted) return result.lock;
        // The caller gave up (or the manager closed) while Redis was answering.
        await release(result.lock, false);
        throw abortReason(signal);
      }
      lastError = result.error;
      // Held by someone else on some server: keep waiting. Anything else is
      // the service failing; a few in a row and the caller should hear so.
      if (result.refusal.locked > 0) serviceFailures = 0;
      else if (++serviceFailures >= MAX_SERVICE_FAILURES) throw unavailable('locks', 'the lock service is unavailable', lastError);
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        throw serviceFailures > 0 ? unavailable('locks', 'the lock service is unavailable', lastError) : lockTimeout(keys, waitMs);
      }
      await sleep(Math.min(remaining, retryDelayMs + Math.random() * retryJitterMs), signal);
    }
  }

  /** Release a lock; false when the servers did not confirm it. */
  async function release(lock: Lock, lost: boolean): Promise<boolean> {
    try {
      await redlock.release(lock, { retryCount: 0 });
      return true;
    } catch (err) {
      // The lease expires on its own; a failed release only delays the next holder.
      if (!lost) logger?.warn({ keys: describeKeys(lock.resources), err: (err as Error).message }, 'lock release failed; it will expire');
      return false;
    }
  }

  async function holdAndRun<T>(lock: Lock, keys: string[], fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const work = linkedController(signal);
    let lost = false;
    const lease = keepLockAlive({
      redlock,
      lock,
      ttlMs,
      retryDelayMs,
      onLost(cause) {
        lost = true;
        metrics.lost();
        logger?.warn({ keys: describeKeys(keys), err: (cause as Error | undefined)?.message }, 'lock lost while held');
        work.controller.abort(new CallfsError('LOCKED', `the lock on ${describeKeys(keys)} was lost`, { cause }));
      },
    });
    metrics.held(1);
    try {
      if (work.controller.signal.aborted) throw abortReason(work.controller.signal);
      return await fn(work.controller.signal);
    } finally {
      work.dispose();
      const current = await lease.stop();
      const releasing = performance.now();
      const confirmed = await release(current, lost);
      metrics.released(lost ? 'lost' : confirmed ? 'ok' : 'error', releasing);
      metrics.held(-1);
    }
  }

  return {
    async withLock<T>(keys: string[], fn: (signal: AbortSignal) => Promise<T>, lockOptions: LockOptions = {}): Promise<T> {
      const { signal } = lockOptions;
      if (closing.signal.aborted) throw closedError();
      if (signal?.aborted) throw abortReason(signal);
      const sorted = normalizeKeys(keys);
      const waitMs = resolveWaitMs(lockOptions.waitMs, defaultWaitMs);
      if (sorted.length === 0) {
        const work = linkedController(signal);
        try {
          return await fn(work.controller.signal);
        } finally {
          work.dispose();
        }
      }
      const startedAt = performance.now();
      const waiting = linkedController(signal, closing.signal);
      let lock: Lock;
      try {
        lock = await acquire(sorted.map((k) => keyPrefix + k), sorted, waitMs, startedAt, waiting.controller.signal);
      } catch (err) {
        metrics.waited(failureOutcome(err, signal?.aborted ?? false), startedAt);
        throw err;
      } finally {
        waiting.dispose();
      }
      metrics.waited('ok', startedAt);
      const body = holdAndRun(lock, sorted, fn, signal);
      running.add(body);
      try {
        return await body;
      } finally {
        running.delete(body);
      }
    },

    async check(): Promise<void> {
      if (closing.signal.aborted) throw closedError();
      const down: string[] = [];
      await Promise.all(
        clients.map(async (client) => {
          try {
            if (!(await isUsable(client, connectTimeoutMs))) throw new Error('not connected');
            await client.redis.ping();
          } catch {
            down.push(client.server);
          }
        }),
      );
      if (clients.length - down.length < quorum) throw unavailable('locks', `lock servers unreachable: ${down.join(', ')}`);
      if (down.length > 0) logger?.warn({ servers: down }, 'lock Redis servers unreachable; a majority still answers');
    },

    async close(): Promise<void> {
      if (closing.signal.aborted) return;
      // Waiters give up with SERVICE_UNAVAILABLE; holders get one lease to
      // finish and release before the connections go (their locks then expire).
      closing.abort(closedError());
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...running]),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, ttlMs))),
      ]);
      clearTimeout(timer);
      closeLockClients(clients);
    },
  };
}
