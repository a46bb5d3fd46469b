import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { IncomingMessage } from 'node:http';
import type { User } from '../../auth/users.js';
import type { PeerDirectory } from '../../backends/proxy/peers.js';
import { CallfsError } from '../../errors.js';
import type { Upload } from '../../metadata/types.js';
import { Readable } from 'node:stream';
import { baseName, canonicalize } from '../../paths.js';
import type { ChunkChecksum, UploadService } from '../../uploads/service.js';
import { parseMode } from '../representation.js';
import type { RequestState } from '../state.js';

export interface UploadsRoutesOptions {
  uploads: UploadService;
  /** The other instances, to send an upload's bytes to the one holding it. */
  peers?: PeerDirectory;
  requireAuth: Middleware<RequestState>;
  requirePeer: Middleware<RequestState>;
  maxUploadBytes: number;
}

type Ctx = Context & { state: RequestState };

export const UPLOADS = '/v1/uploads';
const INTERNAL_UPLOADS = '/internal/v1/uploads';
const TUS_VERSION = '1.0.0';
const EXTENSIONS = 'creation,creation-with-upload,termination,expiration,checksum';
const OFFSET_TYPE = 'application/offset+octet-stream';

/** `Upload-Metadata: key base64,key base64`: the pairs, decoded (BAD_REQUEST when malformed). */
export function parseUploadMetadata(header: string): Map<string, string> {
  const out = new Map<string, string>();
  if (header.trim() === '') return out;
  for (const pair of header.split(',')) {
    const m = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s+([A-Za-z0-9+/]*={0,2}))?\s*$/.exec(pair);
    if (m === null) throw new CallfsError('BAD_REQUEST', 'Upload-Metadata is comma-separated "key base64value" pairs');
    const key = m[1] as string;
    if (out.has(key)) throw new CallfsError('BAD_REQUEST', `Upload-Metadata names ${key} twice`);
    out.set(key, Buffer.from(m[2] ?? '', 'base64').toString('utf8'));
  }
  return out;
}

/** `Upload-Checksum: sha1|sha256 <base64>` (BAD_REQUEST for another algorithm or a malformed digest). */
export function parseChecksum(header: string): ChunkChecksum | null {
  if (header === '') return null;
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})\s*$/.exec(header);
  const algorithm = m?.[1]?.toLowerCase();
  if (m === null || (algorithm !== 'sha1' && algorithm !== 'sha256')) throw new CallfsError('BAD_REQUEST', 'Upload-Checksum is "sha1 <base64>" or "sha256 <base64>"');
  const digest = Buffer.from(m[2] as string, 'base64');
  if (digest.length !== (algorithm === 'sha1' ? 20 : 32)) throw new CallfsError('BAD_REQUEST', `Upload-Checksum: not a ${algorithm} digest`);
  return { algorithm, digest };
}

function offsetHeader(ctx: Ctx): number {
  const raw = ctx.get('upload-offset');
  if (!/^\d{1,15}$/.test(raw)) throw new CallfsError('BAD_REQUEST', 'Upload-Offset must be a non-negative integer');
  return Number(raw);
}

function describe(ctx: Ctx, upload: Upload): void {
  ctx.set('Upload-Offset', String(upload.received));
  ctx.set('Upload-Expires', upload.expiresAt.toUTCString());
  ctx.set('Cache-Control', 'no-store');
}

/**
 * Resumable uploads, tus 1.0 (https://tus.io/protocols/resumable-upload):
 * core, creation, creation-with-upload, termination, expiration and
 * checksum (sha1, sha256). Written here rather than with @tus/server, which
 * has no checksum extension and answers on Node's request objects outside
 * Koa's error envelope. The destination is `path` in Upload-Metadata (with
 * `filename` added when it ends in '/'); `mode` is optional.
 */
export function uploadsRoutes(options: UploadsRoutesOptions): Router<RequestState> {
  const { uploads, peers } = options;
  const router = new Router<RequestState>();
  const user = (ctx: Ctx): User => ctx.state.user as User;

  const tus: Middleware<RequestState> = async (ctx, next) => {
    ctx.set('Tus-Resumable', TUS_VERSION);
    if (ctx.method !== 'OPTIONS' && ctx.get('tus-resumable') !== TUS_VERSION) {
      ctx.set('Tus-Version', TUS_VERSION);
      throw new CallfsError('PRECONDITION_FAILED', `Tus-Resumable: ${TUS_VERSION} is required`);
    }
    await next();
  };

  const discovery = (ctx: Context): void => {
    ctx.set('Tus-Version', TUS_VERSION);
    ctx.set('Tus-Extension', EXTENSIONS);
    ctx.set('Tus-Max-Size', String(options.maxUploadBytes));
    ctx.set('Tus-Checksum-Algorithm', 'sha1,sha256');
    ctx.status = 204;
  };

  /** Run `local` when this instance holds the upload's bytes; else send the request to the instance that does. */
  async function atHolder(ctx: Ctx, upload: Upload, local: () => Promise<void>): Promise<void> {
    if (upload.instanceId === uploads.instanceId) return local();
    if (peers === undefined || !peers.has(upload.instanceId)) {
      throw new CallfsError('SERVICE_UNAVAILABLE', `the instance holding upload ${upload.id} is not a configured peer`, { component: 'peer', retryAfterSeconds: 10 });
    }
    const headers: Record<string, string> = { 'tus-resumable': TUS_VERSION };
    for (const h of ['upload-offset', 'upload-checksum', 'content-type', 'content-length']) if (ctx.get(h) !== '') headers[h] = ctx.get(h);
    const res: IncomingMessage = await peers.request(upload.instanceId, {
      method: ctx.method,
      path: `${INTERNAL_UPLOADS}/${upload.id}`,
      headers,
      onBehalfOf: user(ctx).name,
      ...(ctx.method === 'PATCH' ? { body: ctx.req } : {}),
      signal: ctx.state.signal,
      operation: `upload-${ctx.method.toLowerCase()}`,
      kind: 'write',
    });
    ctx.status = res.statusCode ?? 502;
    for (const h of ['upload-offset', 'upload-expires', 'cache-control', 'content-type', 'retry-after']) {
      const v = res.headers[h];
      if (typeof v === 'string') ctx.set(h, v);
    }
    ctx.body = res;
  }

  router.options(UPLOADS, options.requireAuth, tus, (ctx) => discovery(ctx));
  router.options(`${UPLOADS}/:id`, options.requireAuth, tus, (ctx) => discovery(ctx));

  router.post(UPLOADS, options.requireAuth, tus, async (context) => {
    const ctx = context as Ctx;
    if (ctx.get('upload-defer-length') !== '') throw new CallfsError('BAD_REQUEST', 'Upload-Defer-Length is not supported: give Upload-Length');
    const lengthHeader = ctx.get('upload-length');
    if (!/^\d{1,15}$/.test(lengthHeader)) throw new CallfsError('BAD_REQUEST', 'Upload-Length must be a non-negative integer');
    const metadata = parseUploadMetadata(ctx.get('upload-metadata'));
    const target = metadata.get('path');
    if (target === undefined || target === '') throw new CallfsError('BAD_REQUEST', 'Upload-Metadata must give "path", the CallFS path of the file');
    if (!target.startsWith('/')) throw new CallfsError('BAD_REQUEST', 'the "path" metadata is an absolute path (it starts with "/")');
    const filename = metadata.get('filename');
    const path = canonicalize(target.endsWith('/') && filename !== undefined ? target + baseName(canonicalize('/' + filename)) : target);
    const modeText = metadata.get('mode');
    const mode = modeText === undefined ? null : parseMode(modeText, 'the "mode" metadata');
    let upload = await uploads.create(user(ctx), { path, mode, length: Number(lengthHeader), metadata: ctx.get('upload-metadata') });
    ctx.set('Location', `${UPLOADS}/${upload.id}`);
    // creation-with-upload: the first bytes come with the POST.
    const withBytes = ctx.get('content-type') === OFFSET_TYPE && (ctx.get('content-length') !== '0' || ctx.get('transfer-encoding') !== '');
    if (withBytes || upload.length === 0) {
      ({ upload } = await uploads.append(upload.id, 0, withBytes ? ctx.req : Readable.from([]), parseChecksum(ctx.get('upload-checksum'))));
    }
    describe(ctx, upload);
    ctx.status = 201;
  });

  router.head(`${UPLOADS}/:id`, options.requireAuth, tus, async (context) => {
    const ctx = context as Ctx;
    const upload = await uploads.find(user(ctx), String(ctx.params.id));
    ctx.set('Upload-Length', String(upload.length));
    if (upload.metadata !== '') ctx.set('Upload-Metadata', upload.metadata);
    await atHolder(ctx, upload, async () => {
      // Wait for a chunk still being written; every byte arrived but the file is not in place (a crash, or a refusal): try again now.
      describe(ctx, await uploads.current(upload.id));
      ctx.status = 200;
    });
  });

  router.patch(`${UPLOADS}/:id`, options.requireAuth, tus, async (context) => {
    const ctx = context as Ctx;
    if (ctx.get('content-type') !== OFFSET_TYPE) throw new CallfsError('UNSUPPORTED_MEDIA_TYPE', `a PATCH body is ${OFFSET_TYPE}`);
    const offset = offsetHeader(ctx);
    const checksum = parseChecksum(ctx.get('upload-checksum'));
    const upload = await uploads.find(user(ctx), String(ctx.params.id));
    await atHolder(ctx, upload, async () => {
      const { upload: after } = await uploads.append(upload.id, offset, ctx.req, checksum);
      describe(ctx, after);
      ctx.status = 204;
    });
  });

  router.delete(`${UPLOADS}/:id`, options.requireAuth, tus, async (context) => {
    const ctx = context as Ctx;
    const upload = await uploads.find(user(ctx), String(ctx.params.id));
    await atHolder(ctx, upload, async () => {
      await uploads.terminate(upload.id);
      ctx.status = 204;
    });
  });

  // The holder's side of a request another instance took: that instance checked who may act.
  router.patch(`${INTERNAL_UPLOADS}/:id`, options.requirePeer, async (context) => {
    const ctx = context as Ctx;
    const { upload } = await uploads.append(String(ctx.params.id), offsetHeader(ctx), ctx.req, parseChecksum(ctx.get('upload-checksum')));
    describe(ctx, upload);
    ctx.status = 204;
  });
  router.head(`${INTERNAL_UPLOADS}/:id`, options.requirePeer, async (context) => {
    const ctx = context as Ctx;
    describe(ctx, await uploads.current(String(ctx.params.id)));
    ctx.status = 200;
  });
  router.delete(`${INTERNAL_UPLOADS}/:id`, options.requirePeer, async (context) => {
    await uploads.terminate(String(context.params.id));
    context.status = 204;
  });
  return router;
}
