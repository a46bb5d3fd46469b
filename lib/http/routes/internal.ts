import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Engine } from '../../engine/index.js';
import { CallfsError } from '../../errors.js';
import { sendContent } from '../representation.js';
import type { RequestState } from '../state.js';
import { uploadBody } from '../upload-body.js';

export interface InternalRoutesOptions {
  engine: Engine;
  /** The internal proxy secret check (middleware/auth.ts requirePeer). */
  requirePeer: Middleware<RequestState>;
}

type Ctx = Context & { state: RequestState };

const BLOBS = '/internal/v1/blobs';

/** A range as the peer proxy asks for one: `bytes=<start>-<end>`, both given (the asking instance checked them against the entry). */
function explicitRange(header: string): { start: number; end: number } | undefined {
  const m = /^bytes=(\d+)-(\d+)$/.exec(header);
  if (m === null) {
    if (header !== '') throw new CallfsError('BAD_REQUEST', 'the internal blob routes take only bytes=<start>-<end> ranges');
    return undefined;
  }
  const range = { start: Number(m[1]), end: Number(m[2]) };
  if (range.end < range.start) throw new CallfsError('RANGE_NOT_SATISFIABLE', 'the range ends before it starts');
  return range;
}

/**
 * The routes the other instances of the cluster use to reach this
 * instance's instance-local blobs (the server side of the peer proxy
 * backend, lib/backends/proxy/peer-backend.ts). Only the internal proxy
 * secret opens them; they name blobs by their sha256, never paths: the
 * instance that asks checked its caller's permissions against the shared
 * metadata. X-CallFS-On-Behalf-Of, when sent, names that caller for the log.
 */
export function internalRoutes(options: InternalRoutesOptions): Router<RequestState> {
  const { engine } = options;
  const router = new Router<RequestState>();
  const label: Middleware<RequestState> = (ctx, next) => {
    const caller = ctx.get('x-callfs-on-behalf-of');
    if (caller !== '') ctx.state.log = ctx.state.log.child({ on_behalf_of: caller });
    return next();
  };

  router.put(BLOBS, label, options.requirePeer, async (context) => {
    const ctx = context as Ctx;
    const length = ctx.get('content-length');
    const stored = await engine.storeBlob(uploadBody(ctx.req), { ...(/^\d+$/.test(length) ? { length: Number(length) } : {}), signal: ctx.state.signal });
    ctx.status = 201;
    ctx.body = { id: stored.id, size: stored.size, sha256: stored.sha256 };
  });

  // Rebalancing: the repairer moved this copy elsewhere and drops it here.
  router.delete(`${BLOBS}/:id`, label, options.requirePeer, async (context) => {
    const ctx = context as Ctx;
    ctx.status = 200;
    ctx.body = { evicted: await engine.evictBlob(ctx.params.id ?? '', { signal: ctx.state.signal }) };
  });

  // @koa/router serves HEAD with the GET route.
  router.get(`${BLOBS}/:id`, label, options.requirePeer, async (context) => {
    const ctx = context as Ctx;
    const id = ctx.params.id ?? '';
    if (ctx.method === 'HEAD') {
      const stat = await engine.statBlob(id, { signal: ctx.state.signal });
      if (stat === null) throw new CallfsError('FILE_NOT_FOUND', `no such blob: ${id}`);
      ctx.status = 200;
      ctx.length = stat.size;
      return;
    }
    const range = explicitRange(ctx.get('range'));
    const opened = await engine.openBlob(id, { ...(range === undefined ? {} : { range }), signal: ctx.state.signal });
    ctx.type = 'application/octet-stream';
    if (range === undefined) {
      ctx.status = 200;
      sendContent(ctx, opened.stream, opened.size);
      return;
    }
    // The store clamps an end past the object to its last byte.
    const end = Math.min(range.end, opened.size - 1);
    ctx.status = 206;
    ctx.set('Content-Range', `bytes ${range.start}-${end}/${opened.size}`);
    sendContent(ctx, opened.stream, end - range.start + 1);
  });
  return router;
}
