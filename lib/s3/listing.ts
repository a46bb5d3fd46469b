import { isCallfsError } from '../errors.js';
import type { Entry } from '../metadata/types.js';
import { bucketEntry, BUCKET_NAME, DEFAULT_MAX_KEYS, etagOf, iso, keyOf, pathOf, q1, type S3Request } from './context.js';
import { S3Error } from './errors.js';
import { sendXml } from './xml.js';

/** Buckets (top-level directories) and the listing of their keys. */

export async function listBuckets(r: S3Request): Promise<void> {
  const { items } = await r.o.engine.listDirectory(r.user, '/');
  const buckets: Record<string, string>[] = [];
  for await (const e of items) if (e.type === 'directory') buckets.push({ Name: e.name, CreationDate: iso(e.createdAt) });
  sendXml(r.ctx, 'ListAllMyBucketsResult', { Owner: { ID: String(r.user.uid), DisplayName: r.user.name }, Buckets: { Bucket: buckets } });
}

export async function createBucket(r: S3Request): Promise<void> {
  if (!BUCKET_NAME.test(r.bucket)) throw new S3Error('InvalidBucketName', 400, 'a bucket name is 3 to 63 lower-case letters, digits, "." and "-"');
  r.ctx.req.resume();
  const made = await r.o.engine.makeDirectory(r.user, pathOf(r.bucket), { signal: r.ctx.state.signal });
  if (!made.created) {
    if (made.entry.uid === r.user.uid) throw new S3Error('BucketAlreadyOwnedByYou', 409, 'you already own this bucket');
    throw new S3Error('BucketAlreadyExists', 409, 'the bucket name is taken');
  }
  r.ctx.set('Location', `/${r.bucket}`);
  r.ctx.status = 200;
}

export async function deleteBucket(r: S3Request): Promise<void> {
  await bucketEntry(r);
  try {
    await r.o.engine.remove(r.user, pathOf(r.bucket), { signal: r.ctx.state.signal });
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
export async function listKeys(r: S3Request, prefix: string, delimiter: string, after: string, maxKeys: number) {
  const bucketPath = pathOf(r.bucket);
  const contents: Entry[] = [];
  const prefixes: string[] = [];
  let truncated = false;
  let last = '';
  const full = (): boolean => contents.length + prefixes.length >= maxKeys;
  // With '/', only the directory the prefix ends in is read; otherwise the whole tree below it.
  const slash = prefix.lastIndexOf('/');
  const dirKey = prefix.slice(0, slash + 1);
  let dir: string;
  try {
    dir = dirKey === '' ? bucketPath : pathOf(r.bucket, dirKey);
  } catch {
    return { contents, prefixes, truncated, last };
  }
  let listing;
  try {
    listing = await r.o.engine.listTree(r.user, dir, { maxDepth: delimiter === '/' ? 0 : Number.MAX_SAFE_INTEGER });
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
    // Strictly after the marker (a key equal to the prefix itself is listed).
    if (after !== '' && sortKey <= after) continue;
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

export async function listObjects(r: S3Request, v2: boolean): Promise<void> {
  await bucketEntry(r);
  const prefix = q1(r, 'prefix') ?? '';
  const delimiter = q1(r, 'delimiter') ?? '';
  const maxKeys = Math.min(DEFAULT_MAX_KEYS, Math.max(0, Number(q1(r, 'max-keys') ?? DEFAULT_MAX_KEYS) || 0));
  const token = q1(r, 'continuation-token');
  const after = v2 ? (token !== undefined ? Buffer.from(token, 'base64url').toString('utf8') : (q1(r, 'start-after') ?? '')) : (q1(r, 'marker') ?? '');
  const { contents, prefixes, truncated, last } = maxKeys === 0 ? { contents: [], prefixes: [], truncated: false, last: '' } : await listKeys(r, prefix, delimiter, after, maxKeys);
  const metas = await r.o.store.getObjectMeta(contents.map((e) => e.id));
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
