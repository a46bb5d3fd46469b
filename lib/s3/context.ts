import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import type { Context } from 'koa';
import type { User } from '../auth/users.js';
import type { Engine } from '../engine/index.js';
import { isCallfsError } from '../errors.js';
import type { Entry, S3ObjectMeta, S3Ops } from '../metadata/types.js';
import { canonicalize } from '../paths.js';
import type { RequestState } from '../http/state.js';
import type { Logger } from '../log/index.js';
import { AwsChunkedDecoder, type S3Auth, type S3Credentials } from './auth.js';
import { S3Error } from './errors.js';

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

export type Ctx = Context & { state: RequestState };

/** One request: who, which bucket and key, its query, and how its body comes. */
export interface S3Request {
  o: S3ApiOptions;
  ctx: Ctx;
  user: User;
  auth: S3Auth;
  bucket: string;
  key: string;
  query: Record<string, string | string[]>;
}

export const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
export const DEFAULT_MAX_KEYS = 1000;
export const META_PREFIX = 'x-amz-meta-';

export const q1 = (r: S3Request, name: string): string | undefined => {
  const v = r.query[name];
  return Array.isArray(v) ? v[0] : v;
};

/** The CallFS path of a bucket, or of a key in it (a key ending in '/' names a directory). */
export function pathOf(bucket: string, key = ''): string {
  const raw = key === '' ? `/${bucket}` : `/${bucket}/${key.endsWith('/') ? key.slice(0, -1) : key}`;
  const path = canonicalize(raw);
  if (path !== raw) throw new S3Error('InvalidArgument', 400, 'the key must be a plain path: no empty, "." or ".." segments');
  return path;
}

export const keyOf = (bucket: string, path: string): string => path.slice(bucket.length + 2);

/** The ETag S3 clients check: the recorded MD5 (form) while the content is the one it was recorded for, else the SHA-256. */
export function etagOf(entry: Entry, meta: S3ObjectMeta | undefined): string {
  return `"${meta !== undefined && meta.sha256 === entry.etag ? meta.etag : (entry.etag ?? '')}"`;
}

export function userMeta(ctx: Ctx): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [name, value] of Object.entries(ctx.headers)) {
    if (name.startsWith(META_PREFIX) && typeof value === 'string') meta[name.slice(META_PREFIX.length)] = value;
  }
  return meta;
}

/**
 * What passes through a request body: its MD5 (the ETag) and size, and,
 * where the request declared them, a check of its Content-MD5 and of a
 * signed x-amz-content-sha256 (a signature covers the hash, not the bytes:
 * the bytes are held to it here). `check()` once the body has passed.
 */
export class BodyMeter extends Transform {
  readonly #md5 = createHash('md5');
  readonly #sha256: Hash | null;
  md5: Buffer | null = null;
  #sha256Hex: string | null = null;
  size = 0;

  constructor(private readonly expected: { md5: Buffer | null; sha256: string | null; limit: number }) {
    super();
    this.#sha256 = expected.sha256 === null ? null : createHash('sha256');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.expected.limit) {
      callback(new S3Error('EntityTooLarge', 400, `the body is larger than the ${this.expected.limit}-byte limit`));
      return;
    }
    this.#md5.update(chunk);
    this.#sha256?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.md5 = this.#md5.digest();
    this.#sha256Hex = this.#sha256?.digest('hex') ?? null;
    callback();
  }

  /** BadDigest or XAmzContentSHA256Mismatch when the body is not the one the request declared. */
  check(): void {
    if (this.md5 === null) throw new S3Error('IncompleteBody', 400, 'the body ended early');
    if (this.expected.md5 !== null && !this.md5.equals(this.expected.md5)) throw new S3Error('BadDigest', 400, 'the Content-MD5 you specified did not match what was received');
    if (this.expected.sha256 !== null && this.#sha256Hex !== this.expected.sha256) throw new S3Error('XAmzContentSHA256Mismatch', 400, 'the x-amz-content-sha256 you signed does not match the body');
  }
}

/** A meter for the request's body, holding it to what its headers declare. */
export function meterFor(r: S3Request): BodyMeter {
  const declared = r.ctx.get('x-amz-content-sha256').toLowerCase();
  return new BodyMeter({ md5: contentMd5(r.ctx), sha256: r.auth.payload.kind === 'plain' && /^[0-9a-f]{64}$/.test(declared) ? declared : null, limit: r.o.maxUploadBytes });
}

/**
 * EntityTooLarge before a byte of the body is read when its declared length
 * (x-amz-decoded-content-length for aws-chunked, else Content-Length) is over
 * the limit: the unread body is then drained after the answer (as /v1 does),
 * so the client reads the 400 rather than a reset connection.
 */
export function assertDeclaredFits(r: S3Request): void {
  const declared = r.ctx.get(r.auth.payload.kind === 'plain' ? 'content-length' : 'x-amz-decoded-content-length');
  if (/^\d+$/.test(declared) && Number(declared) > r.o.maxUploadBytes) throw new S3Error('EntityTooLarge', 400, `the body is larger than the ${r.o.maxUploadBytes}-byte limit`);
}

/** The request body as the client meant it (aws-chunked decoded and its signatures checked), and its length when known. */
export function bodyOf(r: S3Request): { body: Readable; length?: number } {
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

export function contentMd5(ctx: Ctx): Buffer | null {
  const header = ctx.get('content-md5');
  if (header === '') return null;
  const digest = Buffer.from(header, 'base64');
  if (digest.length !== 16) throw new S3Error('InvalidDigest', 400, 'Content-MD5 is not a base64 MD5');
  return digest;
}

export const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, '.000Z');

export async function bucketEntry(r: S3Request): Promise<Entry> {
  try {
    const entry = await r.o.engine.stat(r.user, pathOf(r.bucket));
    if (entry.type !== 'directory') throw new S3Error('NoSuchBucket', 404, 'the specified bucket does not exist');
    return entry;
  } catch (err) {
    if (isCallfsError(err, 'FILE_NOT_FOUND')) throw new S3Error('NoSuchBucket', 404, 'the specified bucket does not exist');
    throw err;
  }
}

/** NoSuchBucket when the bucket is missing, else NoSuchKey: for an object operation that found nothing. */
export async function missing(r: S3Request, err: unknown): Promise<never> {
  if (!isCallfsError(err, 'FILE_NOT_FOUND') && !isCallfsError(err, 'NOT_A_DIRECTORY')) throw err;
  await bucketEntry(r);
  throw new S3Error('NoSuchKey', 404, 'the specified key does not exist');
}

export async function objectEntry(r: S3Request, forRead: boolean): Promise<Entry> {
  const path = pathOf(r.bucket, r.key);
  const entry = await (forRead ? r.o.engine.statForRead(r.user, path) : r.o.engine.stat(r.user, path)).catch((err: unknown) => missing(r, err));
  if (entry.type !== 'file') throw new S3Error('NoSuchKey', 404, 'the specified key does not exist');
  return entry;
}

export async function metaOf(r: S3Request, entry: Entry): Promise<S3ObjectMeta | undefined> {
  return (await r.o.store.getObjectMeta([entry.id])).get(entry.id);
}
