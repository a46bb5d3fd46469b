import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import mime from 'mime-types';
import type { Context, Middleware } from 'koa';
import type { User } from '../auth/users.js';
import type { Engine } from '../engine/index.js';
import { isCallfsError } from '../errors.js';
import type { Entry, S3ObjectMeta, S3Ops } from '../metadata/types.js';
import { canonicalize, parentOf } from '../paths.js';
import { parseRange, sendContent } from '../http/representation.js';
import type { RequestState } from '../http/state.js';
import type { Logger } from '../log/index.js';
import { authenticate, AwsChunkedDecoder, rawQuery, type S3Auth, type S3Credentials } from './auth.js';
import { S3Error, toS3Error } from './errors.js';
import { errorXml, readXml, sendXml } from './xml.js';

export interface S3ApiOptions {
  engine: Engine;
  store: S3Ops;
  credentials: S3Credentials;
  /** What GetBucketLocation answers (s3.region). */
  region: string;
  instanceId: string;
  /** Where this instance keeps multipart parts (<data_dir>/s3-multipart). */
  partsDir: string;
  maxUploadBytes: number;
  logger: Logger;
}

type Ctx = Context & { state: RequestState };

/** One request: who, which bucket and key, its query, and how its body comes. */
interface S3Request {
  ctx: Ctx;
  user: User;
  auth: S3Auth;
  bucket: string;
  key: string;
  query: Record<string, string | string[]>;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const DEFAULT_MAX_KEYS = 1000;
const META_PREFIX = 'x-amz-meta-';

const q1 = (r: S3Request, name: string): string | undefined => {
  const v = r.query[name];
  return Array.isArray(v) ? v[0] : v;
};

/** The CallFS path of a bucket, or of a key in it (a key ending in '/' names a directory). */
function pathOf(bucket: string, key = ''): string {
  const raw = key === '' ? `/${bucket}` : `/${bucket}/${key.endsWith('/') ? key.slice(0, -1) : key}`;
  const path = canonicalize(raw);
  if (path !== raw) throw new S3Error('InvalidArgument', 400, 'the key must be a plain path: no empty, "." or ".." segments');
  return path;
}

const keyOf = (bucket: string, path: string): string => path.slice(bucket.length + 2);

/** The ETag S3 clients check: the recorded MD5 (form) while the content is the one it was recorded for, else the SHA-256. */
function etagOf(entry: Entry, meta: S3ObjectMeta | undefined): string {
  return `"${meta !== undefined && meta.sha256 === entry.etag ? meta.etag : (entry.etag ?? '')}"`;
}

function userMeta(ctx: Ctx): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [name, value] of Object.entries(ctx.headers)) {
    if (name.startsWith(META_PREFIX) && typeof value === 'string') meta[name.slice(META_PREFIX.length)] = value;
  }
  return meta;
}

/** MD5 of what passes through, known once it has all passed. */
class Md5Meter extends Transform {
  readonly hash = createHash('md5');
  digest: Buffer | null = null;
  size = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.digest = this.hash.digest();
    callback();
  }
}

/** The request body as the client meant it (aws-chunked decoded and its signatures checked), and its length when known. */
function bodyOf(r: S3Request): { body: Readable; length?: number } {
  const { ctx, auth } = r;
  if (auth.payload.kind === 'plain') {
    const length = ctx.get('content-length');
    const body = new PassThrough();
    ctx.req.on('error', (err) => body.destroy(err));
    ctx.req.pipe(body);
    return { body, ...(/^\d+$/.test(length) ? { length: Number(length) } : {}) };
  }
  const decoder = new AwsChunkedDecoder(auth.payload.verify, auth.payload.seed);
  ctx.req.on('error', (err) => decoder.destroy(err));
  ctx.req.pipe(decoder);
  const decoded = ctx.get('x-amz-decoded-content-length');
  return { body: decoder, ...(/^\d+$/.test(decoded) ? { length: Number(decoded) } : {}) };
}

function contentMd5(ctx: Ctx): Buffer | null {
  const header = ctx.get('content-md5');
  if (header === '') return null;
  const digest = Buffer.from(header, 'base64');
  if (digest.length !== 16) throw new S3Error('InvalidDigest', 400, 'Content-MD5 is not a base64 MD5');
  return digest;
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, '.000Z');

/**
 * The S3 API over the CallFS namespace: a bucket is a top-level directory,
 * a key the path below it, and every request acts as the user whose name is
 * its access key id, with the Unix permission checks of /v1/files.
 */
export function s3Api(o: S3ApiOptions): Middleware<RequestState> {
  const { engine, store } = o;

  async function bucketEntry(r: S3Request): Promise<Entry> {
    try {
      const entry = await engine.stat(r.user, pathOf(r.bucket));
      if (entry.type !== 'directory') throw new S3Error('NoSuchBucket', 404, 'the specified bucket does not exist');
      return entry;
    } catch (err) {
      if (isCallfsError(err, 'FILE_NOT_FOUND')) throw new S3Error('NoSuchBucket', 404, 'the specified bucket does not exist');
      throw err;
    }
  }

  /** NoSuchBucket when the bucket is missing, else NoSuchKey: for an object operation that found nothing. */
  async function missing(r: S3Request, err: unknown): Promise<never> {
    if (!isCallfsError(err, 'FILE_NOT_FOUND') && !isCallfsError(err, 'NOT_A_DIRECTORY')) throw err;
    await bucketEntry(r);
    throw new S3Error('NoSuchKey', 404, 'the specified key does not exist');
  }

  async function objectEntry(r: S3Request, forRead: boolean): Promise<Entry> {
    const path = pathOf(r.bucket, r.key);
    const entry = await (forRead ? engine.statForRead(r.user, path) : engine.stat(r.user, path)).catch((err: unknown) => missing(r, err));
    if (entry.type !== 'file') throw new S3Error('NoSuchKey', 404, 'the specified key does not exist');
    return entry;
  }

  async function metaOf(entry: Entry): Promise<S3ObjectMeta | undefined> {
    return (await store.getObjectMeta([entry.id])).get(entry.id);
  }

  // ------------------------------------------------------------------ service and buckets

  async function listBuckets(r: S3Request): Promise<void> {
    const { items } = await engine.listDirectory(r.user, '/');
    const buckets: Record<string, string>[] = [];
    for await (const e of items) if (e.type === 'directory') buckets.push({ Name: e.name, CreationDate: iso(e.createdAt) });
    sendXml(r.ctx, 'ListAllMyBucketsResult', { Owner: { ID: String(r.user.uid), DisplayName: r.user.name }, Buckets: { Bucket: buckets } });
  }

  async function createBucket(r: S3Request): Promise<void> {
    if (!BUCKET_NAME.test(r.bucket)) throw new S3Error('InvalidBucketName', 400, 'a bucket name is 3 to 63 lower-case letters, digits, "." and "-"');
    r.ctx.req.resume();
    const made = await engine.makeDirectory(r.user, pathOf(r.bucket), { signal: r.ctx.state.signal });
    if (!made.created) {
      if (made.entry.uid === r.user.uid) throw new S3Error('BucketAlreadyOwnedByYou', 409, 'you already own this bucket');
      throw new S3Error('BucketAlreadyExists', 409, 'the bucket name is taken');
    }
    r.ctx.set('Location', `/${r.bucket}`);
    r.ctx.status = 200;
  }

  async function deleteBucket(r: S3Request): Promise<void> {
    await bucketEntry(r);
    try {
      await engine.remove(r.user, pathOf(r.bucket), { signal: r.ctx.state.signal });
    } catch (err) {
      if (isCallfsError(err, 'DIRECTORY_NOT_EMPTY')) throw new S3Error('BucketNotEmpty', 409, 'the bucket you tried to delete is not empty');
      throw err;
    }
    r.ctx.status = 204;
  }

  // ------------------------------------------------------------------ listing

  /**
   * The keys under `prefix` in key order, from `after` on: files as objects,
   * and with delimiter '/' the subdirectories as common prefixes. Streamed
   * from the namespace's keyset pages; stops at `maxKeys`.
   */
  async function listKeys(r: S3Request, prefix: string, delimiter: string, after: string, maxKeys: number) {
    const bucketPath = pathOf(r.bucket);
    const contents: Entry[] = [];
    const prefixes: string[] = [];
    let truncated = false;
    let last = '';
    const full = (): boolean => contents.length + prefixes.length >= maxKeys;
    // With '/', only the directory the prefix ends in is read; otherwise the whole tree below it.
    const slash = prefix.lastIndexOf('/');
    const dirKey = delimiter === '/' ? prefix.slice(0, slash + 1) : prefix.slice(0, slash + 1);
    let dir: string;
    try {
      dir = dirKey === '' ? bucketPath : pathOf(r.bucket, dirKey);
    } catch {
      return { contents, prefixes, truncated, last };
    }
    const start = after > prefix ? after : prefix;
    let listing;
    try {
      listing = await engine.listTree(r.user, dir, { maxDepth: delimiter === '/' ? 0 : Number.MAX_SAFE_INTEGER });
    } catch (err) {
      if (isCallfsError(err, 'FILE_NOT_FOUND') || isCallfsError(err, 'BAD_REQUEST') || isCallfsError(err, 'NOT_A_DIRECTORY')) return { contents, prefixes, truncated, last };
      throw err;
    }
    let lastPrefix = '';
    for await (const e of listing.items) {
      const key = keyOf(r.bucket, e.path) + (e.type === 'directory' && delimiter === '/' ? '/' : '');
      if (!key.startsWith(prefix)) continue;
      if (delimiter !== '/' && e.type === 'directory') continue;
      let common: string | null = null;
      if (delimiter !== '') {
        const at = key.indexOf(delimiter, prefix.length);
        if (at >= 0) common = key.slice(0, at + delimiter.length);
      }
      const sortKey = common ?? key;
      if (sortKey <= start && !(common === null && key > start)) continue;
      if (common !== null && common === lastPrefix) continue;
      if (full()) {
        truncated = true;
        break;
      }
      if (common !== null) {
        prefixes.push(common);
        lastPrefix = common;
        last = common;
      } else {
        contents.push(e);
        last = key;
      }
    }
    return { contents, prefixes, truncated, last };
  }

  async function listObjects(r: S3Request, v2: boolean): Promise<void> {
    await bucketEntry(r);
    const prefix = q1(r, 'prefix') ?? '';
    const delimiter = q1(r, 'delimiter') ?? '';
    const maxKeys = Math.min(DEFAULT_MAX_KEYS, Math.max(0, Number(q1(r, 'max-keys') ?? DEFAULT_MAX_KEYS) || 0));
    const token = q1(r, 'continuation-token');
    const after = v2 ? (token !== undefined ? Buffer.from(token, 'base64url').toString('utf8') : (q1(r, 'start-after') ?? '')) : (q1(r, 'marker') ?? '');
    const { contents, prefixes, truncated, last } = maxKeys === 0 ? { contents: [], prefixes: [], truncated: false, last: '' } : await listKeys(r, prefix, delimiter, after, maxKeys);
    const metas = await store.getObjectMeta(contents.map((e) => e.id));
    const encode = q1(r, 'encoding-type') === 'url';
    const k = (key: string): string => (encode ? encodeURIComponent(key).replace(/%2F/g, '/') : key);
    const body: Record<string, unknown> = {
      Name: r.bucket,
      Prefix: k(prefix),
      ...(v2 ? { KeyCount: contents.length + prefixes.length } : { Marker: k(after) }),
      MaxKeys: maxKeys,
      ...(delimiter === '' ? {} : { Delimiter: k(delimiter) }),
      IsTruncated: truncated,
      ...(encode ? { EncodingType: 'url' } : {}),
      Contents: contents.map((e) => ({
        Key: k(keyOf(r.bucket, e.path)),
        LastModified: iso(e.mtime),
        ETag: etagOf(e, metas.get(e.id)),
        Size: e.size,
        StorageClass: 'STANDARD',
        ...(v2 ? {} : { Owner: { ID: String(e.uid), DisplayName: String(e.uid) } }),
      })),
      CommonPrefixes: prefixes.map((p) => ({ Prefix: k(p) })),
    };
    if (v2) {
      if (token !== undefined) body.ContinuationToken = token;
      if (q1(r, 'start-after') !== undefined) body.StartAfter = k(q1(r, 'start-after') as string);
      if (truncated) body.NextContinuationToken = Buffer.from(last, 'utf8').toString('base64url');
    } else if (truncated) {
      body.NextMarker = k(last);
    }
    sendXml(r.ctx, 'ListBucketResult', body);
  }

  // ------------------------------------------------------------------ objects

  function objectHeaders(r: S3Request, entry: Entry, meta: S3ObjectMeta | undefined): void {
    r.ctx.set('ETag', etagOf(entry, meta));
    r.ctx.set('Last-Modified', entry.mtime.toUTCString());
    r.ctx.set('Accept-Ranges', 'bytes');
    r.ctx.set('Content-Type', meta !== undefined && meta.contentType !== '' ? meta.contentType : mime.lookup(entry.name) || 'application/octet-stream');
    for (const [name, value] of Object.entries(meta?.meta ?? {})) r.ctx.set(`${META_PREFIX}${name}`, value);
  }

  /** The conditional headers against the object's S3 ETag and time: 412, 304, or null to go on. */
  function conditions(r: S3Request, entry: Entry, etag: string): number | null {
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

  async function getObject(r: S3Request, head: boolean): Promise<void> {
    const entry = await objectEntry(r, !head);
    const meta = await metaOf(entry);
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
      const stream = await engine.openContent(entry, { range: range.range, signal: r.ctx.state.signal });
      r.ctx.status = 206;
      r.ctx.set('Content-Range', `bytes ${range.range.start}-${range.range.end}/${entry.size}`);
      sendContent(r.ctx, stream, range.range.end - range.range.start + 1);
      return;
    }
    const stream = await engine.openContent(entry, { signal: r.ctx.state.signal });
    r.ctx.status = 200;
    sendContent(r.ctx, stream, entry.size);
  }

  async function putObject(r: S3Request): Promise<void> {
    await bucketEntry(r);
    const path = pathOf(r.bucket, r.key);
    if (r.key.endsWith('/')) {
      // A "folder" object: the directory, made with its parents.
      r.ctx.req.resume();
      await engine.makeDirectory(r.user, path, { signal: r.ctx.state.signal });
      r.ctx.set('ETag', '"d41d8cd98f00b204e9800998ecf8427e"');
      r.ctx.status = 200;
      return;
    }
    const expected = contentMd5(r.ctx);
    const { body, length } = bodyOf(r);
    const meter = new Md5Meter();
    body.on('error', (err) => meter.destroy(err));
    const result = await engine.writeFile(r.user, path, body.pipe(meter), {
      mustCreate: false,
      ...(length === undefined ? {} : { length }),
      beforeCommit: async () => {
        if (expected !== null && meter.digest !== null && !meter.digest.equals(expected)) throw new S3Error('BadDigest', 400, 'the Content-MD5 you specified did not match what was received');
      },
      signal: r.ctx.state.signal,
    });
    const md5 = (meter.digest ?? createHash('md5').digest()).toString('hex');
    await store.putObjectMeta(result.entry.id, { sha256: result.entry.etag ?? '', etag: md5, contentType: r.ctx.get('content-type'), meta: userMeta(r.ctx) });
    r.ctx.set('ETag', `"${md5}"`);
    r.ctx.status = 200;
  }

  async function copyObject(r: S3Request): Promise<void> {
    await bucketEntry(r);
    const raw = decodeURIComponent(r.ctx.get('x-amz-copy-source').split('?')[0] as string).replace(/^\//, '');
    const slash = raw.indexOf('/');
    if (slash <= 0) throw new S3Error('InvalidArgument', 400, 'x-amz-copy-source is <bucket>/<key>');
    const from = pathOf(raw.slice(0, slash), raw.slice(slash + 1));
    const to = pathOf(r.bucket, r.key);
    const source = await engine.statForRead(r.user, from).catch((err: unknown) => {
      if (isCallfsError(err, 'FILE_NOT_FOUND')) throw new S3Error('NoSuchKey', 404, 'the copy source does not exist');
      throw err;
    });
    const sourceMeta = await metaOf(source);
    const etag = etagOf(source, sourceMeta);
    const verdict = conditions({ ...r, ctx: { get: (h: string) => r.ctx.get(h.startsWith('if-') ? `x-amz-copy-source-${h}` : h) } as unknown as Ctx }, source, etag);
    if (verdict !== null) throw new S3Error('PreconditionFailed', 412, 'a copy-source precondition did not hold');
    const replace = r.ctx.get('x-amz-metadata-directive').toUpperCase() === 'REPLACE';
    if (from === to && !replace) throw new S3Error('InvalidRequest', 400, 'copying an object onto itself changes nothing: give x-amz-metadata-directive REPLACE');
    const made = from === to ? { entry: source } : await engine.copyFile(r.user, from, to, { replace: true, signal: r.ctx.state.signal });
    const sameContent = sourceMeta !== undefined && sourceMeta.sha256 === source.etag;
    await store.putObjectMeta(made.entry.id, {
      sha256: made.entry.etag ?? '',
      etag: sameContent ? sourceMeta.etag : (made.entry.etag ?? ''),
      contentType: replace ? r.ctx.get('content-type') : (sourceMeta?.contentType ?? ''),
      meta: replace ? userMeta(r.ctx) : (sourceMeta?.meta ?? {}),
    });
    sendXml(r.ctx, 'CopyObjectResult', { ETag: etag, LastModified: iso(made.entry.mtime) });
  }

  /** After a key is deleted, its directories that are now empty go too, up to the bucket, as S3 has no empty prefixes. */
  async function pruneEmpty(r: S3Request, path: string): Promise<void> {
    const bucketPath = pathOf(r.bucket);
    for (let dir = parentOf(path); dir !== bucketPath && dir !== '/'; dir = parentOf(dir)) {
      try {
        await engine.remove(r.user, dir, {});
      } catch {
        return;
      }
    }
  }

  async function deleteKey(r: S3Request, key: string): Promise<void> {
    const path = pathOf(r.bucket, key);
    try {
      await engine.remove(r.user, path, { signal: r.ctx.state.signal });
    } catch (err) {
      // Deleting what is not there is a success in S3; a "folder" that still has keys stays.
      if (isCallfsError(err, 'FILE_NOT_FOUND') || isCallfsError(err, 'DIRECTORY_NOT_EMPTY') || isCallfsError(err, 'NOT_A_DIRECTORY')) return;
      throw err;
    }
    await pruneEmpty(r, path);
  }

  async function deleteObject(r: S3Request): Promise<void> {
    await bucketEntry(r);
    await deleteKey(r, r.key);
    r.ctx.status = 204;
  }

  async function deleteObjects(r: S3Request): Promise<void> {
    await bucketEntry(r);
    const doc = await readXml(r.ctx);
    const del = doc.Delete as { Object?: { Key?: unknown }[]; Quiet?: unknown } | undefined;
    if (del === undefined || !Array.isArray(del.Object)) throw new S3Error('MalformedXML', 400, 'a Delete element with Object elements is expected');
    if (del.Object.length > 1000) throw new S3Error('MalformedXML', 400, 'at most 1000 keys per request');
    const quiet = String(del.Quiet ?? '').toLowerCase() === 'true';
    const deleted: Record<string, string>[] = [];
    const errors: Record<string, string>[] = [];
    for (const o of del.Object) {
      const key = String(o.Key ?? '');
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

  // ------------------------------------------------------------------ multipart

  const partsOf = (id: string): string => join(o.partsDir, id);

  async function upload(r: S3Request) {
    const id = q1(r, 'uploadId') ?? '';
    const found = /^[0-9a-f]{32}$/.test(id) ? await store.getMultipart(id) : null;
    if (found === null || found.uid !== r.user.uid || found.bucket !== r.bucket || found.key !== r.key) throw new S3Error('NoSuchUpload', 404, 'the specified multipart upload does not exist');
    if (found.instanceId !== o.instanceId) throw new S3Error('ServiceUnavailable', 503, `this multipart upload is held by instance ${found.instanceId}: send its parts to the endpoint it was started on`);
    return found;
  }

  async function createMultipart(r: S3Request): Promise<void> {
    await bucketEntry(r);
    const path = pathOf(r.bucket, r.key);
    await engine.checkWrite(r.user, path);
    const id = randomUUID().replace(/-/g, '');
    await store.createMultipart({ id, uid: r.user.uid, bucket: r.bucket, key: r.key, instanceId: o.instanceId, contentType: r.ctx.get('content-type'), meta: userMeta(r.ctx) });
    await mkdir(partsOf(id), { recursive: true, mode: 0o700 });
    sendXml(r.ctx, 'InitiateMultipartUploadResult', { Bucket: r.bucket, Key: r.key, UploadId: id });
  }

  async function uploadPart(r: S3Request): Promise<void> {
    const up = await upload(r);
    const partNumber = Number(q1(r, 'partNumber'));
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) throw new S3Error('InvalidArgument', 400, 'partNumber is 1 to 10000');
    if (r.ctx.get('x-amz-copy-source') !== '') throw new S3Error('NotImplemented', 501, 'UploadPartCopy is not implemented');
    const expected = contentMd5(r.ctx);
    const { body, length } = bodyOf(r);
    if (length !== undefined && length > o.maxUploadBytes) throw new S3Error('EntityTooLarge', 400, 'the part is larger than the upload limit');
    const file = join(partsOf(up.id), String(partNumber));
    const meter = new Md5Meter();
    await pipeline(body, meter, createWriteStream(`${file}.tmp`, { mode: 0o600 }));
    const digest = meter.digest ?? createHash('md5').digest();
    if (expected !== null && !digest.equals(expected)) {
      await rm(`${file}.tmp`, { force: true });
      throw new S3Error('BadDigest', 400, 'the Content-MD5 you specified did not match what was received');
    }
    await rename(`${file}.tmp`, file);
    await store.putPart(up.id, { partNumber, size: meter.size, md5: digest.toString('hex') });
    r.ctx.set('ETag', `"${digest.toString('hex')}"`);
    r.ctx.status = 200;
  }

  async function listParts(r: S3Request): Promise<void> {
    const up = await upload(r);
    const parts = await store.listParts(up.id);
    sendXml(r.ctx, 'ListPartsResult', {
      Bucket: r.bucket,
      Key: r.key,
      UploadId: up.id,
      MaxParts: 10000,
      IsTruncated: false,
      Part: parts.map((p) => ({ PartNumber: p.partNumber, LastModified: iso(p.updatedAt ?? up.createdAt), ETag: `"${p.md5}"`, Size: p.size })),
    });
  }

  async function completeMultipart(r: S3Request): Promise<void> {
    const up = await upload(r);
    const doc = await readXml(r.ctx);
    const asked = (doc.CompleteMultipartUpload as { Part?: { PartNumber?: unknown; ETag?: unknown }[] } | undefined)?.Part;
    if (!Array.isArray(asked) || asked.length === 0) throw new S3Error('MalformedXML', 400, 'CompleteMultipartUpload lists the parts');
    const stored = new Map((await store.listParts(up.id)).map((p) => [p.partNumber, p]));
    const chosen = asked.map((p, i) => {
      const n = Number(p.PartNumber);
      const part = stored.get(n);
      if (i > 0 && n <= Number(asked[i - 1]?.PartNumber)) throw new S3Error('InvalidPartOrder', 400, 'the parts must be in ascending order');
      if (part === undefined || String(p.ETag ?? '').replace(/"/g, '') !== part.md5) throw new S3Error('InvalidPart', 400, `part ${n} was not uploaded or its ETag does not match`);
      return part;
    });
    const total = chosen.reduce((sum, p) => sum + p.size, 0);
    async function* concatenated(): AsyncGenerator<Buffer> {
      for (const p of chosen) for await (const chunk of createReadStream(join(partsOf(up.id), String(p.partNumber)))) yield chunk as Buffer;
    }
    const result = await engine.writeFile(r.user, pathOf(r.bucket, r.key), Readable.from(concatenated()), { mustCreate: false, length: total, signal: r.ctx.state.signal });
    const etag = `${createHash('md5').update(Buffer.concat(chosen.map((p) => Buffer.from(p.md5, 'hex')))).digest('hex')}-${chosen.length}`;
    await store.putObjectMeta(result.entry.id, { sha256: result.entry.etag ?? '', etag, contentType: up.contentType, meta: up.meta });
    await store.removeMultipart(up.id);
    await rm(partsOf(up.id), { recursive: true, force: true });
    sendXml(r.ctx, 'CompleteMultipartUploadResult', { Location: `/${r.bucket}/${r.key}`, Bucket: r.bucket, Key: r.key, ETag: `"${etag}"` });
  }

  async function abortMultipart(r: S3Request): Promise<void> {
    const up = await upload(r);
    await store.removeMultipart(up.id);
    await rm(partsOf(up.id), { recursive: true, force: true });
    r.ctx.status = 204;
  }

  async function listMultipart(r: S3Request): Promise<void> {
    await bucketEntry(r);
    const prefix = q1(r, 'prefix') ?? '';
    const uploads = (await store.listMultipart(r.bucket, prefix, 1000)).filter((u) => u.uid === r.user.uid);
    sendXml(r.ctx, 'ListMultipartUploadsResult', {
      Bucket: r.bucket,
      Prefix: prefix,
      MaxUploads: 1000,
      IsTruncated: false,
      Upload: uploads.map((u) => ({ Key: u.key, UploadId: u.id, Initiated: iso(u.createdAt), StorageClass: 'STANDARD', Initiator: { ID: String(u.uid), DisplayName: r.user.name }, Owner: { ID: String(u.uid), DisplayName: r.user.name } })),
    });
  }

  // ------------------------------------------------------------------ dispatch

  const has = (r: S3Request, name: string): boolean => r.query[name] !== undefined;
  const UNSUPPORTED = ['acl', 'policy', 'cors', 'lifecycle', 'tagging', 'website', 'replication', 'encryption', 'logging', 'notification', 'object-lock', 'retention', 'legal-hold', 'torrent', 'restore', 'select', 'accelerate', 'requestPayment', 'analytics', 'inventory', 'metrics', 'ownershipControls', 'publicAccessBlock', 'intelligent-tiering'];

  async function dispatch(r: S3Request): Promise<void> {
    const m = r.ctx.method;
    const unsupported = UNSUPPORTED.find((name) => has(r, name));
    if (unsupported !== undefined) throw new S3Error('NotImplemented', 501, `?${unsupported} is not implemented`);
    if (r.bucket === '') {
      if (m === 'GET') return listBuckets(r);
      throw new S3Error('MethodNotAllowed', 405, 'the service root lists buckets only');
    }
    if (r.key === '') {
      if (m === 'PUT') return createBucket(r);
      if (m === 'DELETE') return deleteBucket(r);
      if (m === 'HEAD') {
        await bucketEntry(r);
        r.ctx.set('x-amz-bucket-region', o.region);
        r.ctx.status = 200;
        return;
      }
      if (m === 'POST' && has(r, 'delete')) return deleteObjects(r);
      if (m === 'GET') {
        if (has(r, 'location')) {
          await bucketEntry(r);
          r.ctx.status = 200;
          r.ctx.type = 'application/xml';
          r.ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${o.region === 'us-east-1' ? '' : o.region}</LocationConstraint>`;
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
      await dispatch({ ctx: c, user: auth.user, auth, bucket, key, query: rawQuery(ctx.querystring) });
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
