import { createHash } from 'node:crypto';
import mime from 'mime-types';
import { isCallfsError } from '../errors.js';
import type { Entry, S3ObjectMeta } from '../metadata/types.js';
import { parentOf } from '../paths.js';
import { parseRange, sendContent } from '../http/representation.js';
import { assertDeclaredFits, bucketEntry, bodyOf, etagOf, iso, META_PREFIX, meterFor, metaOf, objectEntry, pathOf, userMeta, type Ctx, type S3Request } from './context.js';
import { S3Error, toS3Error } from './errors.js';
import { readXml, sendXml } from './xml.js';

/** Objects: files under a bucket. */

export function objectHeaders(r: S3Request, entry: Entry, meta: S3ObjectMeta | undefined): void {
  r.ctx.set('ETag', etagOf(entry, meta));
  r.ctx.set('Last-Modified', entry.mtime.toUTCString());
  r.ctx.set('Accept-Ranges', 'bytes');
  r.ctx.set('Content-Type', meta !== undefined && meta.contentType !== '' ? meta.contentType : mime.lookup(entry.name) || 'application/octet-stream');
  for (const [name, value] of Object.entries(meta?.meta ?? {})) r.ctx.set(`${META_PREFIX}${name}`, value);
}

/** The conditional headers against the object's S3 ETag and time: 412, 304, or null to go on. */
export function conditions(r: S3Request, entry: Entry, etag: string): number | null {
  const { ctx } = r;
  const matches = (header: string): boolean => header.split(',').map((t) => t.trim()).some((t) => t === '*' || t === etag || t === etag.slice(1, -1));
  const seconds = Math.floor(entry.mtime.getTime() / 1000) * 1000;
  const ifMatch = ctx.get('if-match');
  if (ifMatch !== '' && !matches(ifMatch)) return 412;
  const ius = Date.parse(ctx.get('if-unmodified-since'));
  if (ifMatch === '' && !Number.isNaN(ius) && seconds > ius) return 412;
  const inm = ctx.get('if-none-match');
  if (inm !== '' && matches(inm)) return 304;
  const ims = Date.parse(ctx.get('if-modified-since'));
  if (inm === '' && !Number.isNaN(ims) && seconds <= ims) return 304;
  return null;
}

export async function getObject(r: S3Request, head: boolean): Promise<void> {
  const entry = await objectEntry(r, !head);
  const meta = await metaOf(r, entry);
  objectHeaders(r, entry, meta);
  const verdict = conditions(r, entry, etagOf(entry, meta));
  if (verdict === 412) throw new S3Error('PreconditionFailed', 412, 'at least one of the preconditions you specified did not hold');
  if (verdict === 304) {
    r.ctx.status = 304;
    return;
  }
  const range = parseRange(r.ctx.get('range') || undefined, entry.size);
  if (range.kind === 'unsatisfiable') {
    r.ctx.set('Content-Range', `bytes */${entry.size}`);
    throw new S3Error('InvalidRange', 416, 'the requested range is not satisfiable');
  }
  if (head) {
    r.ctx.status = 200;
    r.ctx.length = entry.size;
    return;
  }
  if (range.kind === 'range') {
    const stream = await r.o.engine.openContent(entry, { range: range.range, signal: r.ctx.state.signal });
    r.ctx.status = 206;
    r.ctx.set('Content-Range', `bytes ${range.range.start}-${range.range.end}/${entry.size}`);
    sendContent(r.ctx, stream, range.range.end - range.range.start + 1);
    return;
  }
  const stream = await r.o.engine.openContent(entry, { signal: r.ctx.state.signal });
  r.ctx.status = 200;
  sendContent(r.ctx, stream, entry.size);
}

export async function putObject(r: S3Request): Promise<void> {
  await bucketEntry(r);
  const path = pathOf(r.bucket, r.key);
  if (r.key.endsWith('/')) {
    // A "folder" object: the directory, made with its parents.
    r.ctx.req.resume();
    await r.o.engine.makeDirectory(r.user, path, { signal: r.ctx.state.signal });
    r.ctx.set('ETag', '"d41d8cd98f00b204e9800998ecf8427e"');
    r.ctx.status = 200;
    return;
  }
  assertDeclaredFits(r);
  const { body, length } = bodyOf(r);
  const meter = meterFor(r);
  body.on('error', (err) => meter.destroy(err));
  const result = await r.o.engine.writeFile(r.user, path, body.pipe(meter), {
    mustCreate: false,
    ...(length === undefined ? {} : { length }),
    // The bytes are stored aside by now; a body that is not the declared one commits nothing.
    beforeCommit: async () => meter.check(),
    signal: r.ctx.state.signal,
  });
  const md5 = (meter.md5 ?? createHash('md5').digest()).toString('hex');
  await r.o.store.putObjectMeta(result.entry.id, { sha256: result.entry.etag ?? '', etag: md5, contentType: r.ctx.get('content-type'), meta: userMeta(r.ctx) });
  r.ctx.set('ETag', `"${md5}"`);
  r.ctx.status = 200;
}

export async function copyObject(r: S3Request): Promise<void> {
  await bucketEntry(r);
  const raw = decodeURIComponent(r.ctx.get('x-amz-copy-source').split('?')[0] as string).replace(/^\//, '');
  const slash = raw.indexOf('/');
  if (slash <= 0) throw new S3Error('InvalidArgument', 400, 'x-amz-copy-source is <bucket>/<key>');
  const from = pathOf(raw.slice(0, slash), raw.slice(slash + 1));
  const to = pathOf(r.bucket, r.key);
  const source = await r.o.engine.statForRead(r.user, from).catch((err: unknown) => {
    if (isCallfsError(err, 'FILE_NOT_FOUND')) throw new S3Error('NoSuchKey', 404, 'the copy source does not exist');
    throw err;
  });
  const sourceMeta = await metaOf(r, source);
  const etag = etagOf(source, sourceMeta);
  const verdict = conditions({ ...r, ctx: { get: (h: string) => r.ctx.get(h.startsWith('if-') ? `x-amz-copy-source-${h}` : h) } as unknown as Ctx }, source, etag);
  if (verdict !== null) throw new S3Error('PreconditionFailed', 412, 'a copy-source precondition did not hold');
  const replace = r.ctx.get('x-amz-metadata-directive').toUpperCase() === 'REPLACE';
  if (from === to && !replace) throw new S3Error('InvalidRequest', 400, 'copying an object onto itself changes nothing: give x-amz-metadata-directive REPLACE');
  const made = from === to ? { entry: source } : await r.o.engine.copyFile(r.user, from, to, { replace: true, signal: r.ctx.state.signal });
  const sameContent = sourceMeta !== undefined && sourceMeta.sha256 === source.etag;
  await r.o.store.putObjectMeta(made.entry.id, {
    sha256: made.entry.etag ?? '',
    etag: sameContent ? sourceMeta.etag : (made.entry.etag ?? ''),
    contentType: replace ? r.ctx.get('content-type') : (sourceMeta?.contentType ?? ''),
    meta: replace ? userMeta(r.ctx) : (sourceMeta?.meta ?? {}),
  });
  sendXml(r.ctx, 'CopyObjectResult', { ETag: etag, LastModified: iso(made.entry.mtime) });
}

/** After a key is deleted, its directories that are now empty go too, up to the bucket, as S3 has no empty prefixes. */
export async function pruneEmpty(r: S3Request, path: string): Promise<void> {
  const bucketPath = pathOf(r.bucket);
  for (let dir = parentOf(path); dir !== bucketPath && dir !== '/'; dir = parentOf(dir)) {
    try {
      await r.o.engine.remove(r.user, dir, {});
    } catch {
      return;
    }
  }
}

export async function deleteKey(r: S3Request, key: string): Promise<void> {
  const path = pathOf(r.bucket, key);
  try {
    await r.o.engine.remove(r.user, path, { signal: r.ctx.state.signal });
  } catch (err) {
    // Deleting what is not there is a success in S3; a "folder" that still has keys stays.
    if (isCallfsError(err, 'FILE_NOT_FOUND') || isCallfsError(err, 'DIRECTORY_NOT_EMPTY') || isCallfsError(err, 'NOT_A_DIRECTORY')) return;
    throw err;
  }
  await pruneEmpty(r, path);
}

export async function deleteObject(r: S3Request): Promise<void> {
  await bucketEntry(r);
  await deleteKey(r, r.key);
  r.ctx.status = 204;
}

export async function deleteObjects(r: S3Request): Promise<void> {
  await bucketEntry(r);
  const doc = await readXml(r.ctx);
  const del = doc.Delete as { Object?: { Key?: unknown }[]; Quiet?: unknown } | undefined;
  if (del === undefined || !Array.isArray(del.Object)) throw new S3Error('MalformedXML', 400, 'a Delete element with Object elements is expected');
  if (del.Object.length > 1000) throw new S3Error('MalformedXML', 400, 'at most 1000 keys per request');
  const quiet = String(del.Quiet ?? '').toLowerCase() === 'true';
  const deleted: Record<string, string>[] = [];
  const errors: Record<string, string>[] = [];
  for (const obj of del.Object) {
    const key = String(obj.Key ?? '');
    try {
      await deleteKey(r, key);
      if (!quiet) deleted.push({ Key: key });
    } catch (err) {
      const e = toS3Error(err);
      errors.push({ Key: key, Code: e.code, Message: e.message });
    }
  }
  sendXml(r.ctx, 'DeleteResult', { Deleted: deleted, Error: errors });
}
