import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import type { ClusterStatus } from '../../cluster/status.js';
import type { RequestState } from '../state.js';

export interface ClusterRoutesOptions {
  /** The status as `callfs cluster status --json` prints it (lib/cluster/status.ts), this instance reporting itself live. */
  status: () => Promise<ClusterStatus>;
  requireAuth: Middleware<RequestState>;
}

/**
 * GET /v1/cluster/status: every instance (up or down, space, copies,
 * under-replicated copies), for any user with a key — the web UI's cluster
 * page. It tells which instances there are and how full they are, nothing of
 * the namespace; acting on instances stays with `callfs cluster` and root's
 * /v1/cas routes.
 */
export function clusterRoutes(options: ClusterRoutesOptions): Router<RequestState> {
  const router = new Router<RequestState>();
  router.get('/v1/cluster/status', options.requireAuth, async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await options.status();
  });
  return router;
}
