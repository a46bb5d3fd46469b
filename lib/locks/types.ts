/**
 * The LockManager contract: mutual exclusion on canonical paths across every
 * instance of a cluster (Redlock over Redis) or inside one process (in-process).
 */

export interface LockOptions {
  /** Give up waiting after this many ms with LOCKED (default: locks.wait_timeout). */
  waitMs?: number;
  /** The caller's signal: aborting it stops waiting and releases the lock. */
  signal?: AbortSignal;
}

export interface LockManager {
  /**
   * Take every key (in sorted order, so that two callers never deadlock), run
   * `fn`, release. While `fn` runs the locks are extended; if one is lost the
   * signal given to `fn` aborts with LOCKED and the result of `fn` is discarded
   * by the caller's transaction. Throws LOCKED when the keys cannot be had in
   * time, SERVICE_UNAVAILABLE when the lock service is unreachable.
   */
  withLock<T>(keys: string[], fn: (signal: AbortSignal) => Promise<T>, options?: LockOptions): Promise<T>;

  /** Reachability for /ready. Throws SERVICE_UNAVAILABLE. */
  check(): Promise<void>;

  close(): Promise<void>;
}
