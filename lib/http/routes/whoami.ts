import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import type { RequestState } from '../state.js';

export interface WhoamiRoutesOptions {
  requireAuth: Middleware<RequestState>;
}

/**
 * GET /v1/whoami: the user a key belongs to. A client (the web UI) checks a
 * key with it at sign-in, names the user, and knows whether root's views
 * (/v1/cas) are open to it without asking them for a 403.
 */
export function whoamiRoutes(options: WhoamiRoutesOptions): Router<RequestState> {
  const router = new Router<RequestState>();
  router.get('/v1/whoami', options.requireAuth, (ctx) => {
    const user = ctx.state.user as NonNullable<RequestState['user']>;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { name: user.name, uid: user.uid, gid: user.gid, groups: user.groups, root: user.uid === 0 };
  });
  return router;
}
