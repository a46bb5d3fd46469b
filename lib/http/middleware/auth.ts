import { timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import { digest } from '../../auth/users.js';
import { CallfsError } from '../../errors.js';
import type { Caller, RequestState } from '../state.js';

/** Resolves an Authorization header to a caller, or null when it is missing or wrong. */
export type Authenticator = (authorization: string | undefined) => Caller | null;

/** Require a valid Bearer key of a user; sets ctx.state.user. */
export function requireAuth(authenticate: Authenticator): Middleware<RequestState> {
  return async (ctx, next) => {
    const user = authenticate(ctx.get('authorization') || undefined);
    if (user === null) throw new CallfsError('AUTHENTICATION_FAILED', 'missing or invalid Bearer token');
    ctx.state.user = user;
    await next();
  };
}

/**
 * Require the internal proxy secret (`auth.internal_proxy_secret`), compared
 * in constant time: the credential of the other instances, and of nothing
 * else. It opens only the internal blob routes, never /v1 — no user acts
 * through it (docs_markdown/04-authentication-security.md).
 */
export function requirePeer(secret: string): Middleware<RequestState> {
  const expected = secret === '' ? null : digest(`Bearer ${secret}`);
  return async (ctx, next) => {
    const header = ctx.get('authorization');
    if (expected === null || header === '' || !timingSafeEqual(digest(header), expected)) {
      throw new CallfsError('AUTHENTICATION_FAILED', 'the internal routes are for the peer instances of this cluster');
    }
    await next();
  };
}
