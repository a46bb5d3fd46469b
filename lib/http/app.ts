import Koa, { type Middleware } from 'koa';
import type { Router } from '@koa/router';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import { CallfsError } from '../errors.js';
import { requestContext } from './middleware/request-context.js';
import { errorEnvelope } from './middleware/errors.js';
import { requireAuth, type Authenticator } from './middleware/auth.js';
import { systemRoutes } from './routes/system.js';
import type { ReadinessChecks } from './readiness.js';
import type { RequestState } from './state.js';

export interface AppDeps {
  logger: Logger;
  metrics: Metrics;
  authenticate: Authenticator;
  readiness: ReadinessChecks;
  /** Whether the app is served over TLS (adds Strict-Transport-Security). */
  tls: boolean;
  /** Routers of the feature areas (files, directories, links, admin), mounted after the system routes. */
  routers?: (auth: ReturnType<typeof requireAuth>) => Router<RequestState>[];
  /** Front ends that own a URL prefix of their own (WebDAV), tried before the routers. */
  mounts?: Middleware<RequestState>[];
}

/** A served route in OpenAPI's notation (`/v1/files/{path}`), with its methods. */
export interface RouteInfo {
  path: string;
  methods: string[];
}

const served = new WeakMap<Koa<RequestState>, RouteInfo[]>();

/** The routes an app serves (for the OpenAPI drift test and docs). */
export function routesOf(app: Koa<RequestState>): RouteInfo[] {
  return served.get(app) ?? [];
}

function toOpenApiPath(path: string): string {
  return path.replace(/\{\/\*(\w+)\}$/, '/{$1}').replace(/:(\w+)/g, '{$1}');
}

/** The Koa application: context, error envelope, system routes, feature routes, 404/405. */
export function createApp(deps: AppDeps): Koa<RequestState> {
  const app = new Koa<RequestState>();
  app.proxy = false;
  // Errors are rendered by errorEnvelope; Koa's own handler would only log what is left.
  app.silent = true;
  const auth = requireAuth(deps.authenticate);
  app.use(requestContext({ logger: deps.logger, metrics: deps.metrics, tls: deps.tls }));
  app.use(errorEnvelope());
  for (const mount of deps.mounts ?? []) app.use(mount);
  const routers = [systemRoutes({ registry: deps.metrics.registry, readiness: deps.readiness, requireAuth: auth }), ...(deps.routers?.(auth) ?? [])];
  for (const router of routers) app.use(router.routes());
  const table = new Map<string, Set<string>>();
  for (const layer of routers.flatMap((r) => r.stack)) {
    const path = toOpenApiPath(String(layer.path));
    const methods = table.get(path) ?? new Set<string>();
    for (const m of layer.methods) methods.add(m);
    table.set(path, methods);
  }
  served.set(app, [...table].map(([path, methods]) => ({ path, methods: [...methods] })));
  // Nothing matched: authenticate first (no route discovery without a key), then 405 or 404.
  app.use(auth);
  app.use((ctx) => {
    const allowed = new Set(routers.flatMap((r) => r.match(ctx.path, ctx.method).path.flatMap((layer) => layer.methods)));
    if (allowed.size > 0) {
      ctx.set('Allow', [...allowed].join(', '));
      throw new CallfsError('METHOD_NOT_ALLOWED', `${ctx.method} is not allowed here`);
    }
    throw new CallfsError('FILE_NOT_FOUND', 'no such endpoint');
  });
  return app;
}
