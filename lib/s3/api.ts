import type { Middleware } from 'koa';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RequestState } from '../http/state.js';
import { authenticate, rawQuery } from './auth.js';
import { bucketEntry, q1, type Ctx, type S3ApiOptions, type S3Request } from './context.js';
import { S3Error, toS3Error } from './errors.js';
import { createBucket, deleteBucket, listBuckets, listObjects } from './listing.js';
import { abortMultipart, completeMultipart, createMultipart, listMultipart, listParts, uploadPart } from './multipart.js';
import { copyObject, deleteObject, deleteObjects, getObject, putObject } from './objects.js';
import { errorXml, sendXml } from './xml.js';

export type { S3ApiOptions } from './context.js';

const has = (r: S3Request, name: string): boolean => r.query[name] !== undefined;
const UNSUPPORTED = ['versions', 'attributes', 'acl', 'policy', 'cors', 'lifecycle', 'tagging', 'website', 'replication', 'encryption', 'logging', 'notification', 'object-lock', 'retention', 'legal-hold', 'torrent', 'restore', 'select', 'accelerate', 'requestPayment', 'analytics', 'inventory', 'metrics', 'ownershipControls', 'publicAccessBlock', 'intelligent-tiering'];

async function dispatch(r: S3Request): Promise<void> {
  const m = r.ctx.method;
  const unsupported = UNSUPPORTED.find((name) => has(r, name));
  if (unsupported !== undefined) throw new S3Error('NotImplemented', 501, `?${unsupported} is not implemented`);
  if (r.bucket === '') {
    if (m === 'GET') return listBuckets(r);
    throw new S3Error('MethodNotAllowed', 405, 'the service root lists buckets only');
  }
  if (r.key === '') {
    if (m === 'PUT') {
      if (has(r, 'versioning')) throw new S3Error('NotImplemented', 501, 'buckets are unversioned; versioning cannot be turned on');
      return createBucket(r);
    }
    if (m === 'DELETE') return deleteBucket(r);
    if (m === 'HEAD') {
      await bucketEntry(r);
      r.ctx.set('x-amz-bucket-region', r.o.region);
      r.ctx.status = 200;
      return;
    }
    if (m === 'POST' && has(r, 'delete')) return deleteObjects(r);
    if (m === 'GET') {
      if (has(r, 'location')) {
        await bucketEntry(r);
        r.ctx.status = 200;
        r.ctx.type = 'application/xml';
        r.ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${r.o.region === 'us-east-1' ? '' : r.o.region}</LocationConstraint>`;
        return;
      }
      if (has(r, 'versioning')) {
        await bucketEntry(r);
        return sendXml(r.ctx, 'VersioningConfiguration', {});
      }
      if (has(r, 'uploads')) return listMultipart(r);
      return listObjects(r, q1(r, 'list-type') === '2');
    }
    throw new S3Error('MethodNotAllowed', 405, `${m} is not allowed on a bucket`);
  }
  if (m === 'PUT') {
    if (has(r, 'uploadId')) return uploadPart(r);
    if (r.ctx.get('x-amz-copy-source') !== '') return copyObject(r);
    return putObject(r);
  }
  if (m === 'GET') return has(r, 'uploadId') ? listParts(r) : getObject(r, false);
  if (m === 'HEAD') return getObject(r, true);
  if (m === 'DELETE') return has(r, 'uploadId') ? abortMultipart(r) : deleteObject(r);
  if (m === 'POST') {
    if (has(r, 'uploads')) return createMultipart(r);
    if (has(r, 'uploadId')) return completeMultipart(r);
  }
  throw new S3Error('MethodNotAllowed', 405, `${m} is not allowed on an object`);
}

/**
 * The S3 API over the CallFS namespace: a bucket is a top-level directory,
 * a key the path below it, and every request acts as the user whose name is
 * its access key id, with the Unix permission checks of /v1/files.
 */
export function s3Api(o: S3ApiOptions): Middleware<RequestState> {
  return async (ctx) => {
    const c = ctx as Ctx;
    ctx.state.route = '/s3';
    try {
      const auth = await authenticate(ctx, o.credentials);
      c.state.user = auth.user;
      // Path style: /bucket/key…, the key as the client encoded it, decoded once.
      const raw = ctx.path.slice(1);
      const slash = raw.indexOf('/');
      let bucket: string;
      let key: string;
      try {
        bucket = decodeURIComponent(slash < 0 ? raw : raw.slice(0, slash));
        key = slash < 0 ? '' : decodeURIComponent(raw.slice(slash + 1));
      } catch {
        throw new S3Error('InvalidURI', 400, 'malformed percent-encoding in the path');
      }
      await dispatch({ o, ctx: c, user: auth.user, auth, bucket, key, query: rawQuery(ctx.querystring) });
      // An answer without a body has an empty one: Koa's default (the status text) reads to S3 SDKs as an error document.
      if (ctx.respond !== false && (ctx.body === undefined || ctx.body === null) && ctx.method !== 'HEAD') ctx.body = '';
    } catch (thrown) {
      const err = toS3Error(thrown);
      c.state.errorCode = err.code;
      if (err.status >= 500) c.state.log.error({ err: thrown, code: err.code }, 's3 request failed');
      else c.state.log.debug({ code: err.code, detail: err.message }, 's3 request refused');
      if (ctx.headerSent || !ctx.writable) {
        ctx.res.destroy();
        return;
      }
      ctx.status = err.status;
      if (ctx.method === 'HEAD') return;
      ctx.type = 'application/xml';
      ctx.body = errorXml(err.code, err.message, ctx.path, c.state.requestId);
    }
  };
}

export const s3Sweep = async (o: Pick<S3ApiOptions, 'store' | 'instanceId' | 'partsDir'>, olderThanMs: number): Promise<number> => {
  const ids = await o.store.staleMultipart(o.instanceId, new Date(Date.now() - olderThanMs), 1000);
  for (const id of ids) {
    await o.store.removeMultipart(id);
    await rm(join(o.partsDir, id), { recursive: true, force: true });
  }
  return ids.length;
};
