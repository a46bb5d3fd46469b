import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertDeclaredFits, bucketEntry, bodyOf, iso, meterFor, pathOf, q1, userMeta, type S3Request } from './context.js';
import { S3Error } from './errors.js';
import { readXml, sendXml } from './xml.js';

/** Multipart uploads: parts are files on the instance that started the upload until the completion writes the object. */

const partsOf = (r: S3Request, id: string): string => join(r.o.partsDir, id);

export async function upload(r: S3Request) {
  const id = q1(r, 'uploadId') ?? '';
  const found = /^[0-9a-f]{32}$/.test(id) ? await r.o.store.getMultipart(id) : null;
  if (found === null || found.uid !== r.user.uid || found.bucket !== r.bucket || found.key !== r.key) throw new S3Error('NoSuchUpload', 404, 'the specified multipart upload does not exist');
  if (found.instanceId !== r.o.instanceId) throw new S3Error('ServiceUnavailable', 503, `this multipart upload is held by instance ${found.instanceId}: send its parts to the endpoint it was started on`);
  return found;
}

export async function createMultipart(r: S3Request): Promise<void> {
  await bucketEntry(r);
  const path = pathOf(r.bucket, r.key);
  await r.o.engine.checkWrite(r.user, path);
  const id = randomUUID().replace(/-/g, '');
  await r.o.store.createMultipart({ id, uid: r.user.uid, bucket: r.bucket, key: r.key, instanceId: r.o.instanceId, contentType: r.ctx.get('content-type'), meta: userMeta(r.ctx) });
  await mkdir(partsOf(r, id), { recursive: true, mode: 0o700 });
  sendXml(r.ctx, 'InitiateMultipartUploadResult', { Bucket: r.bucket, Key: r.key, UploadId: id });
}

export async function uploadPart(r: S3Request): Promise<void> {
  const up = await upload(r);
  const partNumber = Number(q1(r, 'partNumber'));
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) throw new S3Error('InvalidArgument', 400, 'partNumber is 1 to 10000');
  if (r.ctx.get('x-amz-copy-source') !== '') throw new S3Error('NotImplemented', 501, 'UploadPartCopy is not implemented');
  assertDeclaredFits(r);
  const { body } = bodyOf(r);
  const file = join(partsOf(r, up.id), String(partNumber));
  const meter = meterFor(r);
  try {
    await pipeline(body, meter, createWriteStream(`${file}.tmp`, { mode: 0o600 }));
    meter.check();
  } catch (err) {
    await rm(`${file}.tmp`, { force: true });
    throw err;
  }
  const digest = meter.md5 ?? createHash('md5').digest();
  await rename(`${file}.tmp`, file);
  await r.o.store.putPart(up.id, { partNumber, size: meter.size, md5: digest.toString('hex') });
  r.ctx.set('ETag', `"${digest.toString('hex')}"`);
  r.ctx.status = 200;
}

export async function listParts(r: S3Request): Promise<void> {
  const up = await upload(r);
  const parts = await r.o.store.listParts(up.id);
  sendXml(r.ctx, 'ListPartsResult', {
    Bucket: r.bucket,
    Key: r.key,
    UploadId: up.id,
    MaxParts: 10000,
    IsTruncated: false,
    Part: parts.map((p) => ({ PartNumber: p.partNumber, LastModified: iso(p.updatedAt ?? up.createdAt), ETag: `"${p.md5}"`, Size: p.size })),
  });
}

export async function completeMultipart(r: S3Request): Promise<void> {
  const up = await upload(r);
  const doc = await readXml(r.ctx);
  const asked = (doc.CompleteMultipartUpload as { Part?: { PartNumber?: unknown; ETag?: unknown }[] } | undefined)?.Part;
  if (!Array.isArray(asked) || asked.length === 0) throw new S3Error('MalformedXML', 400, 'CompleteMultipartUpload lists the parts');
  const stored = new Map((await r.o.store.listParts(up.id)).map((p) => [p.partNumber, p]));
  const chosen = asked.map((p, i) => {
    const n = Number(p.PartNumber);
    const part = stored.get(n);
    if (i > 0 && n <= Number(asked[i - 1]?.PartNumber)) throw new S3Error('InvalidPartOrder', 400, 'the parts must be in ascending order');
    if (part === undefined || String(p.ETag ?? '').replace(/"/g, '') !== part.md5) throw new S3Error('InvalidPart', 400, `part ${n} was not uploaded or its ETag does not match`);
    return part;
  });
  const total = chosen.reduce((sum, p) => sum + p.size, 0);
  async function* concatenated(): AsyncGenerator<Buffer> {
    for (const p of chosen) for await (const chunk of createReadStream(join(partsOf(r, up.id), String(p.partNumber)))) yield chunk as Buffer;
  }
  const whole = Readable.from(concatenated());
  // A refused write (too large, a permission, a lost lock) leaves the stream unread: end it, so it opens no more parts.
  const result = await r.o.engine.writeFile(r.user, pathOf(r.bucket, r.key), whole, { mustCreate: false, length: total, signal: r.ctx.state.signal }).finally(() => whole.destroy());
  const etag = `${createHash('md5').update(Buffer.concat(chosen.map((p) => Buffer.from(p.md5, 'hex')))).digest('hex')}-${chosen.length}`;
  await r.o.store.putObjectMeta(result.entry.id, { sha256: result.entry.etag ?? '', etag, contentType: up.contentType, meta: up.meta });
  await r.o.store.removeMultipart(up.id);
  await rm(partsOf(r, up.id), { recursive: true, force: true });
  sendXml(r.ctx, 'CompleteMultipartUploadResult', { Location: `/${r.bucket}/${r.key}`, Bucket: r.bucket, Key: r.key, ETag: `"${etag}"` });
}

export async function abortMultipart(r: S3Request): Promise<void> {
  const up = await upload(r);
  await r.o.store.removeMultipart(up.id);
  await rm(partsOf(r, up.id), { recursive: true, force: true });
  r.ctx.status = 204;
}

export async function listMultipart(r: S3Request): Promise<void> {
  await bucketEntry(r);
  const prefix = q1(r, 'prefix') ?? '';
  const uploads = (await r.o.store.listMultipart(r.bucket, prefix, 1000)).filter((u) => u.uid === r.user.uid);
  sendXml(r.ctx, 'ListMultipartUploadsResult', {
    Bucket: r.bucket,
    Prefix: prefix,
    MaxUploads: 1000,
    IsTruncated: false,
    Upload: uploads.map((u) => ({ Key: u.key, UploadId: u.id, Initiated: iso(u.createdAt), StorageClass: 'STANDARD', Initiator: { ID: String(u.uid), DisplayName: r.user.name }, Owner: { ID: String(u.uid), DisplayName: r.user.name } })),
  });
}
