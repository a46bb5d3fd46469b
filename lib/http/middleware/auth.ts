import { createHash, timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import { CallfsError } from '../../errors.js';
import type { Caller, RequestState } from '../state.js';

/** Resolves an Authorization header to a caller, or null when it is missing or wrong. */
export type Authenticator = (authorization: string | undefined) => Caller | null;

/** How peers authenticate: the internal proxy secret, acting for a named user. */
export interface PeerAuthentication {
  secret: string;
  userByName: (name: string) => Caller | undefined;
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Require a valid Bearer key; sets ctx.state.user. A peer presenting the
 * internal proxy secret acts for the user named in X-CallFS-On-Behalf-Of
 * (ctx.state.viaPeer), and so never gets more than that user has; the header
 * means nothing without the secret.
 */
export function requireAuth(authenticate: Authenticator, peer?: PeerAuthentication): Middleware<RequestState> {
  const secretDigest = peer === undefined || peer.secret === '' ? null : digest(`Bearer ${peer.secret}`);
  return async (ctx, next) => {
    const header = ctx.get('authorization');
    if (secretDigest !== null && header !== '' && timingSafeEqual(digest(header), secretDigest)) {
      const name = ctx.get('x-callfs-on-behalf-of');
      const user = name === '' ? undefined : peer?.userByName(name);
      if (user === undefined) throw new CallfsError('AUTHENTICATION_FAILED', 'a peer request must name a known user in X-CallFS-On-Behalf-Of');
      ctx.state.user = user;
      ctx.state.viaPeer = true;
      await next();
      return;
    }
    const user = authenticate(header || undefined);
    if (user === null) throw new CallfsError('AUTHENTICATION_FAILED', 'missing or invalid Bearer token');
    ctx.state.user = user;
    await next();
  };
}
