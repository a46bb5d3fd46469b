import { CallfsError, unavailable } from '../errors.js';
import type { Metrics } from '../metrics/index.js';

/**
 * Pieces shared by the lock managers: key normalisation, abortable sleeps,
 * signal linking and the metrics every manager records the same way.
 */

/**
 * De-duplicate and sort keys. Every manager takes keys in this one order
 * (UTF-16 code unit order, the same in every process), which is what makes two
 * callers asking for overlapping sets in different orders unable to deadlock.
 */
export function normalizeKeys(keys: readonly string[]): string[] {
  for (const key of keys) {
    if (typeof key !== 'string') throw new TypeError('lock keys must be strings');
  }
  return [...new Set(keys)].sort();
}

/** The error of a lock that could not be had before the deadline. */
export function lockTimeout(keys: readonly string[], waitMs: number): CallfsError {
  return new CallfsError('LOCKED', `could not lock ${describeKeys(keys)} within ${waitMs} ms`);
}

/** The error a lock manager raises once it is closed (the server is shutting down). */
export function closedError(): CallfsError {
  return unavailable('locks', 'the lock service is unavailable');
}

/** Keys for messages and logs, shortened so that a huge key set does not flood them. */
export function describeKeys(keys: readonly string[]): string {
  const shown = keys.slice(0, 3).join(', ');
  return keys.length > 3 ? `${shown} and ${keys.length - 3} more` : shown;
}

/** The reason an aborted signal carries, as something throwable. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** Resolve after `ms`, or reject with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A controller that aborts when any of `parents` aborts, with that parent's
 * reason. `dispose` detaches it so long-lived parents do not collect listeners.
 */
export function linkedController(...parents: (AbortSignal | undefined)[]): {
  controller: AbortController;
  dispose: () => void;
} {
  const controller = new AbortController();
  const detach: (() => void)[] = [];
  for (const parent of parents) {
    if (parent === undefined) continue;
    if (parent.aborted) {
      controller.abort(abortReason(parent));
      break;
    }
    const onAbort = (): void => controller.abort(abortReason(parent));
    parent.addEventListener('abort', onAbort, { once: true });
    detach.push(() => parent.removeEventListener('abort', onAbort));
  }
  return { controller, dispose: () => detach.forEach((d) => d()) };
}

/** How an acquisition ended, as the `outcome` label of callfs_lock_acquisitions_total. */
export type AcquisitionOutcome = 'ok' | 'timeout' | 'error' | 'aborted' | 'lost';

/** How a release of held locks ended, as the `outcome` label of callfs_lock_releases_total. */
export type ReleaseOutcome = 'ok' | 'error' | 'lost';

/** Metrics recording shared by both managers; a no-op without a Metrics object. */
export interface LockMetrics {
  /** Record the end of a wait: its outcome and how long it took. */
  waited(outcome: Exclude<AcquisitionOutcome, 'lost'>, startedAt: number): void;
  lost(): void;
  held(delta: 1 | -1): void;
  /** Record the release of locks that were held: its outcome and how long it took. */
  released(outcome: ReleaseOutcome, startedAt: number): void;
}

export function lockMetrics(metrics: Metrics | undefined): LockMetrics {
  return {
    waited(outcome, startedAt) {
      if (metrics === undefined) return;
      metrics.lockAcquisitions.inc({ outcome });
      metrics.lockWait.observe((performance.now() - startedAt) / 1000);
    },
    lost() {
      metrics?.lockAcquisitions.inc({ outcome: 'lost' });
    },
    held(delta) {
      metrics?.locksHeld.inc(delta);
    },
    released(outcome, startedAt) {
      if (metrics === undefined) return;
      metrics.lockReleases.inc({ outcome });
      metrics.lockReleaseDuration.observe((performance.now() - startedAt) / 1000);
    },
  };
}

/** The outcome label for an acquisition that failed with `err` (`aborted`: the caller gave up). */
export function failureOutcome(err: unknown, aborted: boolean): Exclude<AcquisitionOutcome, 'ok' | 'lost'> {
  if (aborted) return 'aborted';
  return err instanceof CallfsError && err.code === 'LOCKED' ? 'timeout' : 'error';
}

/** setTimeout's ceiling (about 24.8 days); longer waits would fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

/** A wait budget: the caller's, else the manager's default; Infinity is capped, not an error. */
export function resolveWaitMs(value: number | undefined, fallback: number): number {
  const ms = value ?? fallback;
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) throw new TypeError(`invalid lock wait: ${String(ms)}`);
  return Math.min(ms, MAX_TIMER_MS);
}
