import { Router, RouterEvents } from '@koa/router';
import type { Context, Middleware } from 'koa';
import mime from 'mime-types';
import { CallfsError } from '../../errors.js';
import { DEFAULT_EXPIRY_SECONDS, type LinkService } from '../../links/index.js';
import type { RequestState } from '../state.js';
import { readJsonBody } from '../json-body.js';
import { rateLimit } from '../rate-limit.js';
import { attachmentDisposition, sendContent } from '../representation.js';

export interface LinksRoutesOptions {
  links: LinkService;
  requireAuth: Middleware<RequestState>;
  /** links.generate_rate_limit: generations per minute per client IP (0: unlimited). */
  generateRateLimit: number;
  /** links.download_rate_limit: downloads per minute per client IP (0: unlimited). */
  downloadRateLimit: number;
}

type Ctx = Context & { state: RequestState };

const GENERATE = '/v1/links/generate';
const DOWNLOAD = '/download';

/**
 * POST /v1/links/generate (auth) and GET /download/{token} (no auth: the
 * token is the credential), each rate limited per client IP.
 */
export function linksRoutes(options: LinksRoutesOptions): Router<RequestState> {
  const { links } = options;
  const router = new Router<RequestState>();
  // A link, or a file reached through one, must not be kept by any cache.
  const noStore: Middleware<RequestState> = (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    return next();
  };

  // The limit comes before authentication so that key guessing is throttled too.
  router.post(GENERATE, noStore, rateLimit({ limit: options.generateRateLimit }), options.requireAuth, async (ctx) => {
    const body = await readJsonBody(ctx);
    const unknown = Object.keys(body).filter((k) => k !== 'path' && k !== 'expiry_seconds');
    if (unknown.length > 0) throw new CallfsError('BAD_REQUEST', `unknown field(s): ${unknown.join(', ')}`);
    if (typeof body.path !== 'string' || body.path === '') throw new CallfsError('BAD_REQUEST', '"path" must be a non-empty string');
    const expiry = body.expiry_seconds === undefined ? DEFAULT_EXPIRY_SECONDS : body.expiry_seconds;
    if (typeof expiry !== 'number') throw new CallfsError('BAD_REQUEST', '"expiry_seconds" must be an integer number of seconds');
    const user = ctx.state.user as NonNullable<RequestState['user']>;
    const link = await links.generate(user, { path: body.path, expirySeconds: expiry });
    const expires = link.expiresAt.toISOString();
    ctx.status = 201;
    ctx.body = { url: link.url, token: link.token, expires, expires_at: expires };
  });

  const downloadLimit = rateLimit({ limit: options.downloadRateLimit, onLimited: () => links.countConsumption('rate_limited') });
  // @koa/router answers HEAD with GET handlers; a HEAD must neither burn the link nor reveal whether it is used.
  router.get(`${DOWNLOAD}/:token`, noStore, downloadLimit, async (context) => {
    const ctx = context as Ctx;
    if (ctx.method === 'HEAD') {
      ctx.set('Allow', 'GET');
      throw new CallfsError('METHOD_NOT_ALLOWED', 'a single-use link can only be fetched with GET');
    }
    // Range is ignored on purpose: one use gets the whole file.
    const { entry, stream } = await links.redeem(context.params.token ?? '', { signal: ctx.state.signal });
    ctx.status = 200;
    ctx.set('Content-Type', mime.lookup(entry.name) || 'application/octet-stream');
    ctx.set('Content-Disposition', attachmentDisposition(entry.name));
    if (entry.etag !== null) ctx.set('ETag', `"${entry.etag}"`);
    ctx.set('Last-Modified', entry.mtime.toUTCString());
    sendContent(ctx, stream, entry.size);
  });

  // The download namespace needs no key, so what none of its routes matched (`/download`,
  // `/download/`, `/download/a/b`, a POST) is answered here, before the app's fall-through asks
  // for one. The 'not-found' event adds no route, so the OpenAPI drift test sees none.
  router.on(RouterEvents.NotFound, (context, next) => {
    const ctx = context as Ctx;
    if (ctx.path !== DOWNLOAD && !ctx.path.startsWith(`${DOWNLOAD}/`)) return next();
    // No route matched, so the metrics would say `other`; these answers belong to the download route.
    ctx.state.route = DOWNLOAD;
    ctx.set('Cache-Control', 'no-store');
    if (router.match(ctx.path, ctx.method).path.length > 0) {
      ctx.set('Allow', 'GET');
      throw new CallfsError('METHOD_NOT_ALLOWED', 'a single-use link can only be fetched with GET');
    }
    throw new CallfsError('LINK_NOT_FOUND', 'no such link');
  });
  return router;
}
