import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { classifyS3Error, classifyS3WriteError } from './errors.js';
import type { WriteParams } from './write-params.js';

export interface CopyContext {
  client: S3Client;
  bucket: string;
  writeParams: WriteParams;
  /** Objects above this size take a multipart copy. */
  copyThreshold: number;
}

const GiB = 1024 ** 3;
/** Part size of a multipart copy: large parts, few requests, and at most 10 000 of them. */
const COPY_PART_BYTES = GiB;
const MAX_PARTS = 10_000;

/** The x-amz-copy-source of a key: bucket/key, each segment URL-encoded. */
function copySource(bucket: string, key: string): string {
  return `${encodeURIComponent(bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Server-side copy `from` → `to` in one bucket, the bytes never passing
 * through us. One CopyObject up to the threshold (S3's limit is 5 GiB);
 * above it a multipart copy (UploadPartCopy of 1 GiB ranges), aborted on
 * failure. Either way the destination changes only when the copy
 * completes. Encryption and ACL are set again: a copy does not inherit them.
 */
export async function copyObject(ctx: CopyContext, from: string, to: string, signal?: AbortSignal): Promise<void> {
  const abort = signal === undefined ? {} : { abortSignal: signal };
  let size: number;
  try {
    const head = await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: from }), abort);
    size = head.ContentLength ?? 0;
  } catch (err) {
    throw classifyS3Error(err, { id: from, signal });
  }
  const source = copySource(ctx.bucket, from);
  if (size <= ctx.copyThreshold) {
    try {
      await ctx.client.send(new CopyObjectCommand({ Bucket: ctx.bucket, Key: to, CopySource: source, MetadataDirective: 'COPY', ...ctx.writeParams }), abort);
    } catch (err) {
      throw classifyS3Error(err, { id: from, signal });
    }
    return;
  }
  await multipartCopy(ctx, source, to, size, signal);
}

async function multipartCopy(ctx: CopyContext, source: string, to: string, size: number, signal?: AbortSignal): Promise<void> {
  const abort = signal === undefined ? {} : { abortSignal: signal };
  const partBytes = Math.max(COPY_PART_BYTES, Math.ceil(size / MAX_PARTS));
  let uploadId: string | undefined;
  try {
    const created = await ctx.client.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: to, ...ctx.writeParams }), abort);
    uploadId = created.UploadId;
    const parts: CompletedPart[] = [];
    for (let start = 0, partNumber = 1; start < size; start += partBytes, partNumber++) {
      const end = Math.min(size, start + partBytes) - 1;
      const part = await ctx.client.send(
        new UploadPartCopyCommand({ Bucket: ctx.bucket, Key: to, UploadId: uploadId, PartNumber: partNumber, CopySource: source, CopySourceRange: `bytes=${start}-${end}` }),
        abort,
      );
      parts.push({ PartNumber: partNumber, ETag: part.CopyPartResult?.ETag });
    }
    await ctx.client.send(new CompleteMultipartUploadCommand({ Bucket: ctx.bucket, Key: to, UploadId: uploadId, MultipartUpload: { Parts: parts } }), abort);
  } catch (err) {
    if (uploadId !== undefined) {
      // Best effort: a lifecycle rule (AbortIncompleteMultipartUpload) reclaims what this misses.
      await ctx.client.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: to, UploadId: uploadId })).catch(() => undefined);
    }
    throw classifyS3WriteError(err, { id: to, signal });
  }
}
