import type { Readable } from 'node:stream';
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import { CallfsError } from '../../errors.js';
import { sendContent } from '../representation.js';
import type { RequestState } from '../state.js';

/**
 * What the root-only routes need of this instance's content store (the CAS
 * satisfies it); declared here so that lib/http depends on no backend
 * implementation.
 */
export interface StoreAdmin {
  readonly mode: string;
  images(): Promise<
    {
      id: string;
      state: string;
      sizeBytes: number;
      usedBytes: number;
      freeBytes: number;
      inodesTotal: number;
      inodesFree: number;
      blobCount: number;
      packedBlobs: number;
      segments: number;
      segmentBytes: number;
      segmentLiveBytes: number;
      allocatedBytes: number | null;
    }[]
  >;
  gc(): Promise<{ collected: number; bytesFreed: number; trimmedImages: number; recordsMoved: number; segmentsDeleted: number }>;
  scrub(options: { limit?: number; signal?: AbortSignal }): Promise<{ checked: number; ok: number; corrupted: number; missing: number; bytes: number }>;
  open(id: string, options: { sha256?: string; signal?: AbortSignal }): Promise<{ size: number; stream: Readable }>;
}

export interface AdminRoutesOptions {
  cas: StoreAdmin;
  requireAuth: Middleware<RequestState>;
}

const SHA256 = /^[0-9a-f]{64}$/;

const requireRoot: Middleware<RequestState> = async (ctx, next) => {
  if (ctx.state.user?.uid !== 0) throw new CallfsError('PERMISSION_DENIED', 'root only');
  await next();
};

/** Root-only views and jobs of the CAS: its images, a blob's bytes by hash, collection and scrubbing on demand. */
export function adminRoutes(options: AdminRoutesOptions): Router<RequestState> {
  const router = new Router<RequestState>();
  router.get('/v1/cas/images', options.requireAuth, requireRoot, async (ctx) => {
    const images = await options.cas.images();
    ctx.body = {
      mode: options.cas.mode,
      images: images.map((i) => ({
        id: i.id,
        state: i.state,
        size: i.sizeBytes,
        used: i.usedBytes,
        free: i.freeBytes,
        inodes_total: i.inodesTotal,
        inodes_free: i.inodesFree,
        blob_count: i.blobCount,
        packed_blobs: i.packedBlobs,
        segments: i.segments,
        segment_bytes: i.segmentBytes,
        segment_live_bytes: i.segmentLiveBytes,
        allocated: i.allocatedBytes,
      })),
    };
  });
  router.post('/v1/cas/gc', options.requireAuth, requireRoot, async (ctx) => {
    const result = await options.cas.gc();
    ctx.body = {
      collected: result.collected,
      bytes_freed: result.bytesFreed,
      trimmed_images: result.trimmedImages,
      records_moved: result.recordsMoved,
      segments_deleted: result.segmentsDeleted,
    };
  });
  router.post('/v1/cas/scrub', options.requireAuth, requireRoot, async (ctx) => {
    const limit = ctx.query.limit;
    if (limit !== undefined && (typeof limit !== 'string' || !/^[1-9]\d*$/.test(limit))) throw new CallfsError('BAD_REQUEST', 'limit must be a positive integer');
    const result = await options.cas.scrub({ ...(limit === undefined ? {} : { limit: Number(limit) }), signal: ctx.state.signal });
    ctx.body = { checked: result.checked, ok: result.ok, corrupted: result.corrupted, missing: result.missing, bytes: result.bytes };
  });
  router.get('/v1/blobs/:sha256', options.requireAuth, requireRoot, async (ctx) => {
    const sha = ctx.params.sha256 ?? '';
    if (!SHA256.test(sha)) throw new CallfsError('BAD_REQUEST', 'a blob is named by 64 lowercase hex characters (its sha256)');
    const opened = await options.cas.open(sha, { sha256: sha, signal: ctx.state.signal });
    ctx.status = 200;
    ctx.type = 'application/octet-stream';
    ctx.set('ETag', `"${sha}"`);
    sendContent(ctx, opened.stream, opened.size);
  });
  return router;
}
