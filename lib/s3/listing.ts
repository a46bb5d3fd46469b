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

/** Above every path that starts with `path` (C collation: the byte order of UTF-8, whose bytes never reach 0xF5). */
const pastAll = (path: string): string => `${path}\u{10FFFF}`;

/**
 * The keys under `prefix` in key order, after `after`: files as objects
 * and, with a delimiter, what lies beyond it rolled up into common
 * prefixes. Walks the files below the prefix's directory in path order,
 * which is key order (a path is '/<bucket>/<key>'); past a common prefix it
 * starts a new walk beyond everything under it, so a rolled-up tree is not
 * read. Stops at `maxKeys`. Directories with no file below are no prefix,
 * as in S3.
 */
export async function listKeys(r: S3Request, prefix: string, delimiter: string, after: string, maxKeys: number) {
  const bucketPath = pathOf(r.bucket);
  const contents: Entry[] = [];
  const prefixes: string[] = [];
  let truncated = false;
  let last = '';
  const dirKey = prefix.slice(0, prefix.lastIndexOf('/') + 1);
  let dir: string;
  try {
    dir = dirKey === '' ? bucketPath : pathOf(r.bucket, dirKey);
  } catch {
    return { contents, prefixes, truncated, last };
  }
  const keyPath = (key: string): string => `${bucketPath}/${key}`;
  // A marker that is a common prefix skips what it rolled up.
  let cursor: string | undefined = after === '' ? undefined : delimiter !== '' && after.endsWith(delimiter) ? pastAll(keyPath(after)) : keyPath(after);
  // Without a marker, start just before the prefix (a proper prefix of its path sorts before every key that has it).
  if ((cursor === undefined || cursor < keyPath(prefix)) && prefix !== '') cursor = keyPath(prefix).slice(0, -1);
  walks: for (;;) {
    let listing;
    try {
      listing = await r.o.engine.listTree(r.user, dir, { maxDepth: Number.MAX_SAFE_INTEGER, ...(cursor === undefined ? {} : { after: cursor }) });
    } catch (err) {
      if (isCallfsError(err, 'FILE_NOT_FOUND') || isCallfsError(err, 'BAD_REQUEST') || isCallfsError(err, 'NOT_A_DIRECTORY')) break;
      throw err;
    }
    for await (const e of listing.items) {
      if (e.type !== 'file') continue;
      const key = keyOf(r.bucket, e.path);
      if (!key.startsWith(prefix)) {
        // Keys come in order: past the prefix's range, nothing more can match.
        if (key > prefix) break walks;
        continue;
      }
      if (after !== '' && key <= after) continue;
      const at = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length);
      if (contents.length + prefixes.length >= maxKeys) {
        truncated = true;
        break walks;
      }
      if (at < 0) {
        contents.push(e);
        last = key;
        continue;
      }
      const common = key.slice(0, at + delimiter.length);
      prefixes.push(common);
      last = common;
      cursor = pastAll(keyPath(common));
      continue walks;
    }
    break;
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
