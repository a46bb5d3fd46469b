import { Router } from '@koa/router';
import type { Registry } from 'prom-client';
import type { Middleware } from 'koa';
import { checkReadiness, type ReadinessChecks } from '../readiness.js';
import type { RequestState } from '../state.js';
import { openApiDocument } from '../openapi.js';

export interface SystemRoutesOptions {
  registry: Registry;
  readiness: ReadinessChecks;
  requireAuth: Middleware<RequestState>;
}

/** /health, /ready (no auth), /metrics and /openapi.json (auth). */
export function systemRoutes(options: SystemRoutesOptions): Router<RequestState> {
  const router = new Router<RequestState>();
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/ready', async (ctx) => {
    const report = await checkReadiness(options.readiness, ctx.state.log);
    // Degraded still serves (reads work): a load balancer keeps sending traffic.
    ctx.status = report.status === 'unavailable' ? 503 : 200;
    if (report.status === 'unavailable') ctx.set('Retry-After', '5');
    ctx.body = report;
  });
  router.get('/metrics', options.requireAuth, async (ctx) => {
    ctx.type = options.registry.contentType;
    ctx.body = await options.registry.metrics();
  });
  router.get('/openapi.json', options.requireAuth, (ctx) => {
    ctx.body = openApiDocument;
  });
  return router;
}
