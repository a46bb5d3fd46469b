import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Engine } from '../../engine/index.js';
import type { TreeJob } from '../../metadata/types.js';
import type { RequestState } from '../state.js';

export interface JobsRoutesOptions {
  engine: Engine;
  requireAuth: Middleware<RequestState>;
}

type Ctx = Context & { state: RequestState };

export const JOBS_PREFIX = '/v1/jobs';

/** A tree job as the API shows it. */
export function jobJson(job: TreeJob): Record<string, unknown> {
  return {
    id: job.id,
    kind: job.kind,
    path: job.path,
    ...(job.kind === 'move' ? { destination: job.dest } : {}),
    state: job.state,
    entries_total: job.total,
    entries_done: job.done,
    ...(job.error === null ? {} : { error: job.error }),
    created_at: job.createdAt.toISOString(),
    updated_at: job.updatedAt.toISOString(),
    finished_at: job.finishedAt === null ? null : job.finishedAt.toISOString(),
  };
}

/** Answer 202 Accepted for work a job goes on with: Location names it, the body is the job. */
export function acceptedJob(ctx: Context, job: TreeJob): void {
  ctx.status = 202;
  ctx.set('Location', `${JOBS_PREFIX}/${encodeURIComponent(job.id)}`);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = jobJson(job);
}

/** GET /v1/jobs/{id}: a long operation's state and progress, for the user who started it (and root). */
export function jobsRoutes(options: JobsRoutesOptions): Router<RequestState> {
  const router = new Router<RequestState>();
  router.get(`${JOBS_PREFIX}/:id`, options.requireAuth, async (ctx) => {
    const c = ctx as Ctx;
    const job = await options.engine.treeJob(c.state.user as NonNullable<RequestState['user']>, String(ctx.params.id));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = jobJson(job);
  });
  return router;
}
