import { randomFillSync } from 'node:crypto';
import type { RouterContext } from '@koa/router';
import type { Middleware } from 'koa';
import type { Logger } from '../../log/index.js';
import { originalHttpLabels, type Metrics } from '../../metrics/index.js';
import type { Caller, RequestState } from '../state.js';

const WELL_FORMED_ID = /^[0-9a-f]{16}$/i;

/**
 * Nothing served here (JSON, file bytes, the OpenAPI document) needs a
 * powerful browser feature, so a page that ends up rendering a response, or
 * framing one despite X-Frame-Options, gets none of them.
 */
const PERMISSIONS_POLICY = [
  'accelerometer', 'autoplay', 'camera', 'display-capture', 'encrypted-media', 'fullscreen', 'geolocation', 'gyroscope',
  'hid', 'idle-detection', 'magnetometer', 'microphone', 'midi', 'payment', 'picture-in-picture',
  'publickey-credentials-get', 'screen-wake-lock', 'serial', 'usb', 'web-share', 'xr-spatial-tracking',
].map((feature) => `${feature}=()`).join(', ');

/**
 * Request ids are cut from a pool of random bytes, refilled 512 ids at a
 * time: `randomBytes(8)` per request cost 6.5 µs of CPU (a call into the
 * crypto binding each time), a slice of the pool 0.1 µs. The bytes are the
 * same CSPRNG's.
 */
const idPool = Buffer.alloc(8 * 512);
let idOffset = idPool.length;

function newRequestId(): string {
  if (idOffset === idPool.length) {
    randomFillSync(idPool);
    idOffset = 0;
  }
  const id = idPool.toString('hex', idOffset, idOffset + 8);
  idOffset += 8;
  return id;
}

const clientGone = (): Error => new Error('client went away');

/**
 * ctx.state of a request. The abort signal and the child logger are made
 * when first asked for: an AbortSignal cost 6–7 µs of CPU to create (an
 * EventTarget), a child logger ~1 µs, and a HEAD or a refused request often
 * needs neither.
 */
class RequestScope implements RequestState {
  user?: Caller;
  route?: string;
  errorCode?: string;
  #logger: Logger;
  #log: Logger | null = null;
  #controller: AbortController | null = null;
  #gone = false;

  constructor(
    readonly requestId: string,
    logger: Logger,
  ) {
    this.#logger = logger;
  }

  get log(): Logger {
    return (this.#log ??= this.#logger.child({ request_id: this.requestId }));
  }

  set log(log: Logger) {
    this.#log = log;
  }

  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#gone) this.#controller.abort(clientGone());
    }
    return this.#controller.signal;
  }

  /** The response closed before it finished: the client is gone. */
  abort(): void {
    this.#gone = true;
    this.#controller?.abort(clientGone());
  }
}

/**
 * The metrics label of a route pattern: its literal part, up to the first
 * parameter (`/v1/files{/*path}` → `/v1/files`, `/download/:token` →
 * `/download`), so that the label set is bounded by the routes, never by the
 * paths asked for.
 */
export function routeLabel(pattern: string): string {
  const literal = pattern.split(/[:*{(]/, 1)[0] ?? '';
  return literal.replace(/\/+$/, '') || '/';
}

/**
 * First middleware: request id (an incoming well-formed X-Request-ID is kept),
 * a child logger, the abort signal that fires when the client goes away, the
 * security headers of API.md, and request metrics (the error an answer carries
 * included, as callfs_errors_total{component="http"}).
 */
export function requestContext(options: { logger: Logger; metrics: Metrics; tls: boolean }): Middleware<RequestState> {
  const { logger, metrics, tls } = options;
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = WELL_FORMED_ID.test(incoming) ? incoming.toLowerCase() : newRequestId();
    const scope = new RequestScope(requestId, logger);
    // The response closing before it finished means the client is gone.
    ctx.res.once('close', () => {
      if (!ctx.res.writableFinished) scope.abort();
    });
    ctx.state = scope;
    ctx.set('X-Request-ID', requestId);
    if (tls) ctx.set('Strict-Transport-Security', 'max-age=63072000; includeSubDomains');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Cross-Origin-Embedder-Policy', 'require-corp');
    ctx.set('Permissions-Policy', PERMISSIONS_POLICY);
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      // @koa/router sets routerPath (its documented field; _matchedRoute is internal) to the pattern of the route it runs; a request no route took has none.
      const { routerPath } = ctx as unknown as RouterContext<RequestState>;
      const route = typeof routerPath === 'string' ? routeLabel(routerPath) : (ctx.state.route ?? 'other');
      ctx.res.once('finish', () => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const original = originalHttpLabels(route, ctx.status);
        metrics.httpRequests.inc({ method: ctx.method, route, status: String(ctx.status), ...original });
        metrics.httpDuration.observe({ method: ctx.method, route, path: original.path }, seconds);
        if (ctx.state.errorCode !== undefined) metrics.errors.inc({ component: 'http', error_type: ctx.state.errorCode });
        if (logger.isLevelEnabled('debug')) ctx.state.log.debug({ method: ctx.method, route, status: ctx.status, seconds }, 'request');
      });
    }
  };
}
