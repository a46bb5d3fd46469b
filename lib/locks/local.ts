import { setMaxListeners } from 'node:events';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import type { LockManager, LockOptions } from './types.js';
import {
  abortReason,
  closedError,
  failureOutcome,
  linkedController,
  lockMetrics,
  lockTimeout,
  normalizeKeys,
  resolveWaitMs,
} from './common.js';

/** Options of {@link createLocalLockManager}. */
export interface LocalLockManagerOptions {
  /** Default acquisition deadline in ms when withLock is not given one (default 10 000). */
  waitMs?: number;
  logger?: Logger;
  metrics?: Metrics;
}

/** A caller queued for a key; `grant` hands it the key directly (FIFO hand-off). */
interface Waiter {
  grant: () => void;
}

/**
 * The in-process LockManager of the embedded single-instance default: FIFO
 * wait queues per key, several keys taken one by one in sorted order (so that
 * overlapping sets never deadlock), a deadline (LOCKED) and the caller's signal
 * stop a wait, and keys are always released. A lock held in-process cannot be
 * lost, so the signal given to `fn` aborts only when the caller's does.
 * Not re-entrant: taking a key this caller already holds waits for the deadline.
 */
export function createLocalLockManager(options: LocalLockManagerOptions = {}): LockManager {
  const defaultWaitMs = resolveWaitMs(options.waitMs, 10_000);
  const metrics = lockMetrics(options.metrics);
  const logger = options.logger;
  // A key is held while it is in this map; its value is the queue of waiters.
  const held = new Map<string, Waiter[]>();
  const closing = new AbortController();
  // Every waiting caller listens on it; that is by design, not a leak.
  setMaxListeners(0, closing.signal);

  /** Take one key, waiting until `deadline` (performance.now() ms) at most. */
  function take(key: string, deadline: number, signal: AbortSignal, timeoutError: () => Error): Promise<void> {
    const queue = held.get(key);
    if (queue === undefined) {
      held.set(key, []);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      // Settling removes the waiter from the queue synchronously, so the queue
      // only ever holds live waiters and a hand-off never goes to a dead one.
      const settle = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (err === undefined) {
          resolve();
          return;
        }
        const at = queue.indexOf(waiter);
        if (at >= 0) queue.splice(at, 1);
        reject(err);
      };
      const waiter: Waiter = { grant: () => settle() };
      const onAbort = (): void => settle(abortReason(signal));
      const timer = setTimeout(() => settle(timeoutError()), Math.max(0, deadline - performance.now()));
      queue.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Release one key: the longest waiter gets it, else it becomes free. */
  function give(key: string): void {
    const queue = held.get(key);
    if (queue === undefined) return;
    const next = queue.shift();
    if (next === undefined) held.delete(key);
    else next.grant();
  }

  return {
    async withLock<T>(keys: string[], fn: (signal: AbortSignal) => Promise<T>, lockOptions: LockOptions = {}): Promise<T> {
      const { signal } = lockOptions;
      if (closing.signal.aborted) throw closedError();
      if (signal?.aborted) throw abortReason(signal);
      const sorted = normalizeKeys(keys);
      const waitMs = resolveWaitMs(lockOptions.waitMs, defaultWaitMs);
      const startedAt = performance.now();
      const deadline = startedAt + waitMs;
      const waiting = linkedController(signal, closing.signal);
      const taken: string[] = [];
      try {
        for (const key of sorted) {
          if (waiting.controller.signal.aborted) throw abortReason(waiting.controller.signal);
          await take(key, deadline, waiting.controller.signal, () => lockTimeout(sorted, waitMs));
          taken.push(key);
        }
        // A hand-off and an abort can land in the same tick: the abort wins.
        if (waiting.controller.signal.aborted) throw abortReason(waiting.controller.signal);
      } catch (err) {
        for (const key of taken.reverse()) give(key);
        metrics.waited(failureOutcome(err, signal?.aborted ?? false), startedAt);
        throw err;
      } finally {
        waiting.dispose();
      }
      metrics.waited('ok', startedAt);
      metrics.held(1);
      const work = linkedController(signal);
      try {
        return await fn(work.controller.signal);
      } finally {
        work.dispose();
        const releasing = performance.now();
        for (const key of taken) give(key);
        metrics.released('ok', releasing);
        metrics.held(-1);
      }
    },

    async check(): Promise<void> {
      if (closing.signal.aborted) throw closedError();
    },

    async close(): Promise<void> {
      if (closing.signal.aborted) return;
      // Waiters give up with SERVICE_UNAVAILABLE; holders finish and release normally.
      closing.abort(closedError());
      logger?.debug({ keys: held.size }, 'local lock manager closed');
    },
  };
}
