import type { Middleware } from 'koa';
import { CallfsError } from '../../errors.js';
import type { Caller, RequestState } from '../state.js';

/** Resolves an Authorization header to a caller, or null when it is missing or wrong. */
export type Authenticator = (authorization: string | undefined) => Caller | null;

/** Require a valid Bearer key; sets ctx.state.user. */
export function requireAuth(authenticate: Authenticator): Middleware<RequestState> {
  return async (ctx, next) => {
    const user = authenticate(ctx.get('authorization') || undefined);
    if (user === null) throw new CallfsError('AUTHENTICATION_FAILED', 'missing or invalid Bearer token');
    ctx.state.user = user;
    await next();
  };
}
