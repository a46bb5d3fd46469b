import { createHash } from 'node:crypto';
import { PassThrough, Readable, Transform, pipeline } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CallfsError, unavailable } from '../../errors.js';
import type { ByteRange, OpenOptions, OpenResult } from '../types.js';
import { classifyS3Error } from './errors.js';

export interface ReadContext {
  client: S3Client;
  bucket: string;
  /** Called when a full read does not match its sha256 (metrics, log). */
  onIntegrityError(key: string, detail: string): void;
}

/** `Content-Range: bytes a-b/total` parsed, or null. */
function parseContentRange(header: string | undefined): { start: number; end: number; total: number } | null {
  const m = header === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+)\s*$/.exec(header);
  return m === null ? null : { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) };
}

/** `Content-Range: bytes *\/total` (an unsatisfiable range, as some servers answer with 206/200) or a parsed range. */
function totalOf(header: string | undefined): number | null {
  const m = header === undefined ? null : /\/(\d+)\s*$/.exec(header);
  return m === null ? null : Number(m[1]);
}

/**
 * A whole object up to this size is read and verified before open() returns,
 * so that bad bytes get an INTEGRITY_ERROR answer rather than a connection
 * closed before any header (the CAS does the same for what one read takes).
 */
const VERIFY_BEFORE_ANSWER_BYTES = 1024 * 1024;

const unsatisfiable = (key: string, size: number): CallfsError =>
  new CallfsError('RANGE_NOT_SATISFIABLE', `range not satisfiable for a ${size}-byte object ${key}`);

/** Keep bytes [start, end] (offsets into the stream) and drop the rest. */
function slice(start: number, end: number): Transform {
  let offset = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const from = Math.max(0, start - offset);
      const to = Math.min(chunk.length, end + 1 - offset);
      offset += chunk.length;
      callback(null, from < to ? chunk.subarray(from, to) : undefined);
    },
  });
}

const mismatch = (key: string, detail: string): CallfsError => new CallfsError('INTEGRITY_ERROR', `stored bytes of ${key} do not match their sha256 (${detail})`);

/**
 * Verify a whole object against its sha256 and size while it streams. The
 * last chunk is held back until the hash is known, so a mismatch never
 * reaches the reader as a complete, cleanly ended body.
 */
function verifier(key: string, sha256: string, size: number, onMismatch: (detail: string) => void): Transform {
  const hash = createHash('sha256');
  let seen = 0;
  let held: Buffer | null = null;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      seen += chunk.length;
      const release = held;
      held = chunk;
      callback(null, release ?? undefined);
    },
    flush(callback) {
      const actual = hash.digest('hex');
      if (seen !== size || actual !== sha256) {
        const detail = seen !== size ? `${seen} bytes instead of ${size}` : `sha256 ${actual}`;
        onMismatch(detail);
        callback(mismatch(key, detail));
        return;
      }
      callback(null, held ?? undefined);
    },
  });
}

/**
 * GET an object (or one range of it). Resolves once S3 has answered with the
 * headers: a missing key or an unsatisfiable range is an error before the
 * first byte. Aborting the signal later destroys the returned stream with
 * the signal's reason (and the S3 response with it).
 */
export async function readObject(ctx: ReadContext, key: string, options: OpenOptions): Promise<OpenResult> {
  const { range, signal, sha256 } = options;
  signal?.throwIfAborted();
  if (range !== undefined && (range.start < 0 || range.end < range.start || !Number.isSafeInteger(range.start))) {
    throw new CallfsError('RANGE_NOT_SATISFIABLE', `invalid range ${range.start}-${range.end}`);
  }
  // Our own controller: the caller's signal cancels the request until the
  // headers are in; after that it destroys the stream we hand out.
  const request = new AbortController();
  const beforeHeaders = (): void => request.abort(signal?.reason);
  signal?.addEventListener('abort', beforeHeaders, { once: true });
  let response;
  try {
    response = await ctx.client.send(
      new GetObjectCommand({ Bucket: ctx.bucket, Key: key, ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` }) }),
      { abortSignal: request.signal },
    );
  } catch (err) {
    throw classifyS3Error(err, { id: key, signal });
  } finally {
    signal?.removeEventListener('abort', beforeHeaders);
  }
  const body = response.Body as Readable | undefined;
  const size = totalOf(response.ContentRange) ?? response.ContentLength ?? null;
  if (body === undefined || size === null) {
    body?.destroy();
    throw unavailable('s3', `the S3 backend answered without a body or a size for ${key}`);
  }
  if (range !== undefined && range.start >= size) {
    body.destroy();
    throw unsatisfiable(key, size);
  }
  // The bytes the server sent: the range it says it served, or the whole object.
  let window: { start: number; end: number } | null = null;
  if (range !== undefined) {
    const served = parseContentRange(response.ContentRange) ?? { start: 0, end: size - 1 };
    const wantedEnd = Math.min(range.end, size - 1);
    if (served.start > range.start || served.end < wantedEnd) {
      body.destroy();
      throw unavailable('s3', `the S3 backend served bytes ${served.start}-${served.end} of ${key} for a request of ${range.start}-${wantedEnd}`);
    }
    // Servers that ignore or widen the range (s3rver turns "0-0" into the
    // whole object) are cut back to what was asked.
    if (served.start !== range.start || served.end !== wantedEnd) window = { start: range.start - served.start, end: wantedEnd - served.start };
  }
  if (range === undefined && sha256 !== undefined && size <= VERIFY_BEFORE_ANSWER_BYTES) {
    const chunks = await readVerified(ctx, key, body, { size, sha256, signal });
    return { size, stream: deliver(ctx, key, Readable.from(chunks, { objectMode: false }), { size, window, range, sha256: undefined, signal }) };
  }
  return { size, stream: deliver(ctx, key, body, { size, window, range, sha256, signal }) };
}

/**
 * Read a small whole object and check its size and sha256; its chunks as
 * they came (no copy). Throws INTEGRITY_ERROR (reported) on a mismatch, the
 * classified S3 error when the body fails.
 */
async function readVerified(ctx: ReadContext, key: string, body: Readable, expected: { size: number; sha256: string; signal: AbortSignal | undefined }): Promise<Buffer[]> {
  const { signal } = expected;
  const onAbort = (): void => {
    body.destroy(signal?.reason);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let seen = 0;
  try {
    if (signal?.aborted) onAbort();
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      chunks.push(chunk);
      seen += chunk.length;
      // More than the object's size is already wrong: stop reading.
      if (seen > expected.size) break;
    }
  } catch (err) {
    throw classifyS3Error(err, { id: key, signal });
  } finally {
    signal?.removeEventListener('abort', onAbort);
    body.destroy();
  }
  const actual = hash.digest('hex');
  if (seen === expected.size && actual === expected.sha256) return chunks;
  const detail = seen !== expected.size ? `${seen} bytes instead of ${expected.size}` : `sha256 ${actual}`;
  ctx.onIntegrityError(key, detail);
  throw mismatch(key, detail);
}

function deliver(
  ctx: ReadContext,
  key: string,
  body: Readable,
  how: { size: number; window: { start: number; end: number } | null; range: ByteRange | undefined; sha256: string | undefined; signal: AbortSignal | undefined },
): Readable {
  const stages: (Readable | Transform)[] = [body];
  if (how.window !== null) stages.push(slice(how.window.start, how.window.end));
  if (how.range === undefined && how.sha256 !== undefined) stages.push(verifier(key, how.sha256, how.size, (detail) => ctx.onIntegrityError(key, detail)));
  const out = new PassThrough();
  const { signal } = how;
  const onAbort = (): void => {
    out.destroy(signal?.reason);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  out.once('close', () => signal?.removeEventListener('abort', onAbort));
  // pipeline destroys every stage when one fails or `out` is destroyed by its consumer.
  pipeline([...stages, out], () => undefined);
  if (signal?.aborted) onAbort();
  return out;
}
