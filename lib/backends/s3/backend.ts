import type { Readable } from 'node:stream';
import { DeleteObjectCommand, HeadBucketCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CallfsError, notFound, unavailable } from '../../errors.js';
import type { BackendCallOptions, BlobStat, OpenOptions, OpenResult, PutOptions, PutResult } from '../types.js';
import { createS3Client } from './client.js';
import { copyObject } from './copy.js';
import { classifyS3Error, classifyS3WriteError } from './errors.js';
import { keyOfPath, normalizePrefix, pathOfKey } from './keys.js';
import { readObject } from './reader.js';
import type { S3Backend, S3BackendOptions } from './types.js';
import { capabilitiesOf } from '../registry.js';
import { uploadObject } from './upload.js';
import { writeParamsOf } from './write-params.js';

const MiB = 1024 * 1024;
/** S3's largest single-request copy. */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 * MiB;

type Outcome = 'ok' | 'not_found' | 'error' | 'integrity_error';

/**
 * The S3 backend (see lib/backends/s3/keys.ts for the key scheme). Objects
 * are written with streaming multipart uploads of unknown length, read with
 * ranged GETs, verified against their sha256 on full reads; S3 outages are
 * SERVICE_UNAVAILABLE. The id of an object is its key.
 */
export function createS3Backend(options: S3BackendOptions): S3Backend {
  if (options.bucket === '') throw new CallfsError('BAD_REQUEST', 'backend.s3_bucket_name is empty');
  const prefix = normalizePrefix(options.prefix ?? '');
  const writeParams = writeParamsOf(options);
  const partSize = options.partSize ?? 8 * MiB;
  if (partSize < 5 * MiB) throw new CallfsError('BAD_REQUEST', 'backend.s3_part_size: must be at least 5MiB (the S3 minimum part size)');
  const queueSize = Math.max(1, options.queueSize ?? 4);
  const ownsClient = options.client === undefined;
  const client: S3Client = options.client ?? createS3Client(options);
  const { bucket, logger, metrics } = options;
  const copyThreshold = Math.min(options.copyThresholdBytes ?? MAX_SINGLE_COPY_BYTES, MAX_SINGLE_COPY_BYTES);
  let closed = false;

  /** Run one operation, count it (outcome ok, not_found or error) and time it. */
  async function measured<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw unavailable('s3', 'the S3 backend is closed');
    const end = metrics?.backendDuration.startTimer({ backend: 's3', operation });
    let outcome: Outcome = 'ok';
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      outcome = code === 'FILE_NOT_FOUND' ? 'not_found' : 'error';
      if (code === 'SERVICE_UNAVAILABLE' || code === 'INTERNAL_ERROR') logger.warn({ err, operation, bucket }, 'S3 request failed');
      throw err;
    } finally {
      end?.();
      metrics?.backendOperations.inc({ backend: 's3', operation, outcome });
    }
  }

  /** The key of a valid id, or null (malformed ids are unknown and never sent to S3). */
  const keyOf = (id: string): string | null => (pathOfKey(prefix, id) === null ? null : id);

  /** The key of a file path; a path under the reserved segment is not a file's to take. */
  const userKeyOf = (path: string): string => {
    if (options.reservedSegment !== undefined && path.split('/')[1] === options.reservedSegment) {
      throw new CallfsError('INVALID_PATH', `${path}: the name ${options.reservedSegment} is reserved on the S3 backend (the CAS replica's objects live there)`);
    }
    return keyOfPath(prefix, path);
  };

  const readContext = {
    client,
    bucket,
    onIntegrityError(key: string, detail: string) {
      metrics?.backendOperations.inc({ backend: 's3', operation: 'open', outcome: 'integrity_error' });
      logger.error({ bucket, key, detail }, 'S3 integrity error: the object does not match the sha256 of its entry');
    },
  };

  const backend: Omit<S3Backend, 'pathKeys'> = {
    type: 's3',
    capabilities: capabilitiesOf('s3'),
    bucket,
    prefix,

    keyOf: (path: string): string => userKeyOf(path),
    pathOf: (id: string): string | null => pathOfKey(prefix, id),

    put(body: Readable, putOptions: PutOptions = {}): Promise<PutResult> {
      if (closed) body.destroy();
      return measured('put', async () => {
        let key: string;
        try {
          if (putOptions.key === undefined) throw new CallfsError('INTERNAL_ERROR', 'the S3 backend names objects after paths: put() needs a key');
          key = userKeyOf(putOptions.key);
        } catch (err) {
          body.destroy();
          throw err;
        }
        return uploadObject({ client, bucket, partSize, queueSize, writeParams }, key, body, putOptions);
      });
    },

    open(id: string, openOptions: OpenOptions = {}): Promise<OpenResult> {
      return measured('open', async () => {
        const key = keyOf(id);
        if (key === null) throw notFound(id);
        return readObject(readContext, key, openOptions);
      });
    },

    stat(id: string, callOptions: BackendCallOptions = {}): Promise<BlobStat | null> {
      return measured('stat', async () => {
        const key = keyOf(id);
        if (key === null) return null;
        try {
          const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), signalOf(callOptions));
          return { id, size: head.ContentLength ?? 0 };
        } catch (err) {
          const classified = classifyS3Error(err, { id, signal: callOptions.signal });
          if ((classified as { code?: unknown }).code === 'FILE_NOT_FOUND') return null;
          throw classified;
        }
      });
    },

    delete(id: string, callOptions: BackendCallOptions = {}): Promise<void> {
      return measured('delete', async () => {
        const key = keyOf(id);
        if (key === null) return;
        try {
          // S3 answers 204 for a key that is not there: delete is idempotent by itself.
          await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), signalOf(callOptions));
        } catch (err) {
          throw classifyS3WriteError(err, { id, signal: callOptions.signal });
        }
      });
    },

    copy(fromId: string, toId: string, callOptions: BackendCallOptions = {}): Promise<void> {
      return measured('copy', async () => {
        const from = keyOf(fromId);
        if (from === null) throw notFound(fromId);
        const to = keyOf(toId);
        if (to === null) throw new CallfsError('INVALID_PATH', `not an S3 key of this backend: ${JSON.stringify(toId)}`);
        if (from === to) return;
        await copyObject({ client, bucket, writeParams, copyThreshold }, from, to, callOptions.signal);
      });
    },

    async check(): Promise<void> {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (err) {
        logger.debug({ err, bucket }, 'S3 bucket check failed');
        throw unavailable('s3', `S3 bucket ${bucket} is unavailable`, err);
      }
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (ownsClient) client.destroy();
    },
  };
  return { ...backend, pathKeys: { keyOf: backend.keyOf, pathOf: backend.pathOf, copy: backend.copy } };
}

function signalOf(options: BackendCallOptions): { abortSignal?: AbortSignal } {
  return options.signal === undefined ? {} : { abortSignal: options.signal };
}
