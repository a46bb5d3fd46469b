import { createHash } from 'node:crypto';
import { Transform, pipeline, type Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { CallfsError } from '../../errors.js';
import type { PutOptions, PutResult } from '../types.js';
import { classifyS3WriteError } from './errors.js';
import type { WriteParams } from './write-params.js';

export interface UploadContext {
  client: S3Client;
  bucket: string;
  partSize: number;
  queueSize: number;
  writeParams: WriteParams;
}

/**
 * Stream `body` to the object `key` with a multipart upload of unknown length
 * (lib-storage), hashing and counting on the way. Memory stays bounded by
 * about partSize × (queueSize + 1) whatever the size of the body.
 *
 * Atomicity: S3 replaces an object only when a PutObject or a
 * CompleteMultipartUpload succeeds. A body that fails, grows past maxBytes or
 * is aborted never gets that far: the multipart upload is aborted (its parts
 * dropped) and the previous object under the key, if any, is untouched.
 * The Upload's own abort is triggered with ours, so that it cannot complete
 * after we gave up.
 */
export async function uploadObject(ctx: UploadContext, key: string, body: Readable, options: PutOptions): Promise<PutResult> {
  const { signal, maxBytes } = options;
  if (signal?.aborted) {
    body.destroy();
    throw signal.reason;
  }
  const hash = createHash('sha256');
  let size = 0;
  // The first failure of the input side (the body, the size limit, the abort):
  // it, not the SDK's view of it, is what put() rejects with.
  let inputFailure: unknown;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (maxBytes !== undefined && size > maxBytes) {
        callback(new CallfsError('PAYLOAD_TOO_LARGE', `the body is larger than the ${maxBytes}-byte limit`));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  const stop = new AbortController();
  pipeline(body, meter, (err) => {
    if (err === undefined || err === null) return;
    inputFailure ??= err;
    stop.abort(err);
  });
  const onAbort = (): void => {
    inputFailure ??= signal?.reason;
    stop.abort(signal?.reason);
    meter.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const upload = new Upload({
    client: ctx.client,
    params: { Bucket: ctx.bucket, Key: key, Body: meter, ...ctx.writeParams },
    partSize: ctx.partSize,
    queueSize: ctx.queueSize,
    leavePartsOnError: false,
    abortController: stop,
  });
  try {
    await upload.done();
  } catch (err) {
    // Whatever went wrong on the S3 side, the body is not read any further.
    meter.destroy();
    if (signal?.aborted) throw signal.reason;
    if (inputFailure !== undefined) throw inputFailure;
    throw classifyS3WriteError(err, { id: key, signal });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (inputFailure !== undefined) throw inputFailure;
  return { id: key, size, sha256: hash.digest('hex') };
}
