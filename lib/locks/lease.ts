import type Redlock from 'redlock';
import type { Lock } from 'redlock';
import { readRefusal } from './redlock-votes.js';

/** Options of {@link keepLockAlive}. */
export interface LeaseOptions {
  redlock: Redlock;
  lock: Lock;
  ttlMs: number;
  /** Pause before re-trying an extension that failed for want of a quorum. */
  retryDelayMs: number;
  /** Called once when the lock can no longer be extended; never after stop(). */
  onLost: (cause: unknown) => void;
}

/** A running extension loop. */
export interface Lease {
  /** Stop extending; resolves, once no extension is in flight, to the lock as last extended. */
  stop(): Promise<Lock>;
}

/**
 * Extend a held Redlock lock every third of its lease, so that a long upload
 * keeps it. An extension refused by a majority (the keys hold another value or
 * are gone) means the lock is lost at once; one that fails because servers do
 * not answer is retried until the lease runs out, and then the lock is lost.
 */
export function keepLockAlive(options: LeaseOptions): Lease {
  const { redlock, ttlMs, retryDelayMs, onLost } = options;
  let lock = options.lock;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;

  const schedule = (delayMs: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      inFlight = extend().finally(() => (inFlight = undefined));
    }, delayMs);
  };

  async function extend(): Promise<void> {
    try {
      // extend() also refuses, without asking Redis, a lock whose lease has run out.
      lock = await redlock.extend(lock, ttlMs);
      schedule(Math.floor(ttlMs / 3));
    } catch (err) {
      if (stopped) return;
      const refusal = await readRefusal(err).catch(() => null);
      const refusedForGood = refusal !== null && refusal.membership - refusal.locked < refusal.quorum;
      if (!refusedForGood && lock.expiration > Date.now()) {
        schedule(Math.min(retryDelayMs, Math.max(0, lock.expiration - Date.now())));
        return;
      }
      stopped = true;
      onLost(err);
    }
  }

  schedule(Math.floor(ttlMs / 3));
  return {
    async stop(): Promise<Lock> {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
      return lock;
    },
  };
}
