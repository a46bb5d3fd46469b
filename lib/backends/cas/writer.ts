import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { CallfsError, isCallfsError, unavailable } from '../../errors.js';
import type { BlobRecord } from '../../metadata/types.js';
import type { PutOptions, PutResult } from '../types.js';
import type { CasContext } from './context.js';
import { isFilesystemFailure, isNoSpace } from './fs-util.js';
import type { Image } from './images.js';
import { quarantineLocked } from './integrity.js';
import { blobDir, blobPath, tmpDir } from './layout.js';

/** Small request chunks are gathered into writes of about this size. */
const WRITE_BATCH_BYTES = 256 * 1024;

export interface CasPutResult extends PutResult {
  /** The bytes were already stored; nothing new was written. */
  deduplicated: boolean;
}

/**
 * put(): stream into tmp/ of the active image while hashing and counting,
 * fdatasync, then under the sha's guard either drop the temp (dedup) or
 * record the blob and rename it into blobs/ab/cd/, and flush the directory
 * (shared with concurrent puts). Any failure removes the temp file: a blob
 * name never holds partial bytes.
 */
export async function putBlob(ctx: CasContext, body: Readable, options: PutOptions = {}): Promise<CasPutResult> {
  const { signal } = options;
  if (signal?.aborted) {
    body.destroy();
    throw signal.reason;
  }
  let image: Image;
  try {
    image = await ctx.images.acquireForWrite(signal);
  } catch (err) {
    body.destroy();
    throw err;
  }
  const tmp = join(tmpDir(image.volume), randomUUID());
  let written = 0;
  let received: Received | null = null;
  try {
    received = await receive(body, tmp, options);
    written = received.size;
    signal?.throwIfAborted();
    return await finalize(ctx, image, tmp, received);
  } catch (err) {
    await received?.fh.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch((e: unknown) => ctx.logger.error({ err: e, tmp }, 'cannot remove CAS temp file'));
    throw await classify(ctx, image, err, signal);
  } finally {
    await ctx.images.release(image, written);
  }
}

/** A fully received temp file, still open and not yet flushed. */
interface Received {
  sha256: string;
  size: number;
  fh: FileHandle;
}

async function receive(body: Readable, tmp: string, options: PutOptions): Promise<Received> {
  const { signal, maxBytes } = options;
  const hash = createHash('sha256');
  let size = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let fh: FileHandle | null = null;
  // Destroying the body makes the for-await below throw the signal's reason.
  const onAbort = (): void => {
    body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    fh = await open(tmp, 'wx', 0o600);
    for await (const chunk of body) {
      const buf: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string | Uint8Array);
      size += buf.length;
      if (maxBytes !== undefined && size > maxBytes) {
        throw new CallfsError('PAYLOAD_TOO_LARGE', `upload exceeds the limit of ${maxBytes} bytes`);
      }
      hash.update(buf);
      pending.push(buf);
      pendingBytes += buf.length;
      if (pendingBytes >= WRITE_BATCH_BYTES) {
        await writeAll(fh, pending);
        pending = [];
        pendingBytes = 0;
      }
    }
    signal?.throwIfAborted();
    if (pendingBytes > 0) await writeAll(fh, pending);
    // Read-only once complete: blobs are immutable.
    await fh.chmod(0o400);
    const handle = fh;
    fh = null;
    // Not flushed yet: a duplicate is dropped without paying for the flush.
    return { sha256: hash.digest('hex'), size, fh: handle };
  } catch (err) {
    body.destroy();
    if (fh !== null) await fh.close().catch(() => undefined);
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

async function writeAll(fh: FileHandle, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest);
    if (bytesWritten <= 0) throw new Error('short write to CAS temp file');
    let skip = bytesWritten;
    const next: Buffer[] = [];
    for (const buf of rest) {
      if (skip >= buf.length) skip -= buf.length;
      else {
        next.push(skip > 0 ? buf.subarray(skip) : buf);
        skip = 0;
      }
    }
    rest = next;
  }
}

async function finalize(ctx: CasContext, image: Image, tmp: string, received: Received): Promise<CasPutResult> {
  const { sha256, size, fh } = received;
  const record = async (imageId: string): Promise<BlobRecord> => {
    try {
      return await ctx.index.recordBlob({ sha256, instanceId: ctx.instanceId, imageId, size });
    } catch (err) {
      throw isCallfsError(err) ? err : unavailable('CAS blob index', err);
    }
  };
  return ctx.guard.run(sha256, async () => {
    const found = await ctx.locator.find(sha256);
    // A copy on a failed image may not read back: store these bytes again instead.
    const existing = found !== null && found.image.state !== 'failed' ? found : null;
    if (existing !== null && existing.size === size) {
      await fh.close();
      await rm(tmp, { force: true });
      await record(existing.image.id);
      return { id: sha256, sha256, size, deduplicated: true };
    }
    if (existing !== null) {
      // Same name, other size: the stored copy is damaged; these bytes were just verified.
      await quarantineLocked(ctx, sha256, existing, `size ${existing.size} instead of ${size}`);
    }
    // The bytes are durable before they get their final name: never a torn blob.
    await fh.datasync();
    await fh.close();
    // Indexed before the rename: a crash in between leaves a row without a
    // file (collected later), never a file no index knows about (leaked).
    const row = await record(image.id);
    const dir = blobDir(image.volume, sha256);
    const firstCreated = await mkdir(dir, { recursive: true, mode: 0o750 });
    await rename(tmp, blobPath(image.volume, sha256));
    ctx.locator.remember(sha256, image);
    await ctx.syncer.sync(dirsToFlush(dir, firstCreated));
    if (row.quarantined) {
      // Good bytes (hashed just now) replace a quarantined blob: the row is healthy again.
      await ctx.index.markBlobVerified(ctx.instanceId, sha256, true).catch((err: unknown) => ctx.logger.warn({ err, sha256 }, 'cannot clear the quarantine flag'));
    }
    return { id: sha256, sha256, size, deduplicated: false };
  });
}

/** The blob's directory, plus the parents of any directory mkdir just created. */
function dirsToFlush(dir: string, firstCreated: string | undefined): string[] {
  const dirs = [dir];
  if (firstCreated === undefined) return dirs;
  const stop = dirname(firstCreated);
  for (let p = dirname(dir); ; p = dirname(p)) {
    dirs.push(p);
    if (p === stop || p === dirname(p)) break;
  }
  return dirs;
}

/** Map a failure to what the caller should see, sealing or failing the image on the way. */
async function classify(ctx: CasContext, image: Image, err: unknown, signal: AbortSignal | undefined): Promise<unknown> {
  if (signal?.aborted) return signal.reason;
  if (isCallfsError(err)) return err;
  if (isNoSpace(err)) {
    await ctx.images.seal(image, 'ENOSPC');
    return new CallfsError('SERVICE_UNAVAILABLE', 'the CAS image is full; retry shortly', { cause: err, retryAfterSeconds: 5 });
  }
  if (isFilesystemFailure(err)) {
    await ctx.images.fail(image, err);
    return unavailable('CAS image', err);
  }
  return err;
}
