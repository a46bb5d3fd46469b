import type { Context, Middleware } from 'koa';
import { CallfsError } from '../errors.js';
import type { RequestState } from './state.js';

export interface RateLimiterOptions {
  /** Requests allowed per window and key; 0 means unlimited. */
  limit: number;
  /** Window length in ms (default one minute). */
  windowMs?: number;
  /**
   * Most keys remembered (default 10 000). Past it the least recently seen
   * key is forgotten, so memory stays bounded under a flood of addresses; a
   * forgotten key starts again with a full allowance.
   */
  maxKeys?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** A per-key limiter of one instance (not shared across a cluster). */
export interface RateLimiter {
  /** Take one request's worth of allowance for `key`. */
  take(key: string): RateDecision;
  /** Keys currently remembered. */
  readonly size: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per key: `limit` tokens, refilled continuously at
 * `limit / windowMs`, so a client may burst up to `limit` and then gets one
 * request every `windowMs / limit`. Keys live in a Map kept in last-use
 * order; idle keys (a full bucket is the same as no bucket) are dropped from
 * the front as requests come, so no timer is needed.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const limit = options.limit;
  const windowMs = options.windowMs ?? 60_000;
  const maxKeys = options.maxKeys ?? 10_000;
  const now = options.now ?? Date.now;
  if (!Number.isInteger(limit) || limit < 0) throw new Error('rate limit must be a non-negative integer');
  if (!(windowMs > 0) || !(maxKeys > 0)) throw new Error('windowMs and maxKeys must be positive');
  const rate = limit / windowMs;
  const buckets = new Map<string, Bucket>();

  function evict(t: number): void {
    for (const [key, bucket] of buckets) {
      if (buckets.size <= maxKeys && t - bucket.at < windowMs) break;
      buckets.delete(key);
    }
  }

  return {
    take(key) {
      if (limit === 0) return { allowed: true };
      const t = now();
      const old = buckets.get(key);
      const bucket = old === undefined ? { tokens: limit, at: t } : { tokens: Math.min(limit, old.tokens + Math.max(0, t - old.at) * rate), at: Math.max(t, old.at) };
      buckets.delete(key);
      const allowed = bucket.tokens >= 1;
      if (allowed) bucket.tokens -= 1;
      buckets.set(key, bucket);
      evict(t);
      if (allowed) return { allowed: true };
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / rate / 1000)) };
    },
    get size() {
      return buckets.size;
    },
  };
}

/**
 * Koa middleware limiting requests per client address (ctx.ip: the socket
 * address, as app.proxy is off). Over the limit: 429 RATE_LIMIT_EXCEEDED with
 * Retry-After. A limit of 0 lets everything through.
 */
export function rateLimit(options: RateLimiterOptions & { onLimited?: (ctx: Context) => void }): Middleware<RequestState> {
  const limiter = createRateLimiter(options);
  return async (ctx, next) => {
    const decision = limiter.take(ctx.ip);
    if (!decision.allowed) {
      options.onLimited?.(ctx);
      throw new CallfsError('RATE_LIMIT_EXCEEDED', 'too many requests from this address; retry later', { retryAfterSeconds: decision.retryAfterSeconds });
    }
    await next();
  };
}
