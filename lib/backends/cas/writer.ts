import { crc32c } from '@node-rs/crc32';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { CallfsError, isCallfsError, unavailable } from '../../errors.js';
import type { BlobRecord, PackedAt } from '../../metadata/types.js';
import type { DeferredIndexRow, PutOptions, PutResult } from '../types.js';
import type { CasContext } from './context.js';
import { errnoCode, fsyncDir, isFilesystemFailure, isNoSpace } from './fs-util.js';
import type { Image } from './images.js';
import { quarantineLocked } from './integrity.js';
import { blobDir, blobPath, tmpDir } from './layout.js';
import { RECORD_HEADER_BYTES } from './segments.js';
import { TempFile } from './temp-file.js';
import { StoredTwin, TWIN_HEAD_BYTES, TWIN_MIN_BYTES } from './twin.js';

/** Small request chunks are gathered into writes of about this size (the size of a direct block). */
export const WRITE_BATCH_BYTES = 1024 * 1024;
/**
 * Bytes written through the page cache between background fdatasyncs of a
 * large upload: the final flush (before the blob gets its name) then has
 * little left to write out, instead of the whole file at once. Direct writes
 * leave nothing to flush but the metadata.
 */
const BACKGROUND_SYNC_BYTES = 16 * 1024 * 1024;

export interface CasPutResult extends PutResult {
  /** The bytes were already stored; nothing new was written. */
  deduplicated: boolean;
  /** Unpin the blob (see BlobPins); idempotent. */
  release: () => void;
}

/** How far an upload got: bytes taken from the body, and bytes handed to the temp file. */
interface Progress {
  received: number;
  written: number;
}

/**
 * put(): stream into tmp/ of the active image while hashing and counting
 * (or, while it matches, only compare it with a stored blob of its declared
 * length: see StoredTwin), fdatasync, then under the sha's guard either drop
 * the temp (dedup) or record the blob and rename it into blobs/ab/cd/, and
 * flush the directory (shared with concurrent puts). The blob is handed out
 * pinned. Any failure
 * removes the temp file, its removal committed before the caller hears of
 * it: a blob name never holds partial bytes, and a refused upload keeps no
 * space (see removeTemp).
 */
export async function putBlob(ctx: CasContext, body: Readable, options: PutOptions = {}): Promise<CasPutResult> {
  const { signal } = options;
  if (signal?.aborted) {
    body.destroy();
    throw signal.reason;
  }
  let resumeBody = false;
  if (ctx.packed.packBelowBytes > 0) {
    const small = await receiveSmall(body, ctx.packed.packBelowBytes, options);
    if (small !== null) return putPacked(ctx, small, options);
    // Too big to pack: what was read is back at the head of the body, which is paused.
    resumeBody = true;
  }
  let image: Image;
  try {
    image = await ctx.images.acquireForWrite(signal);
  } catch (err) {
    body.destroy();
    throw err;
  }
  const tmp = join(tmpDir(image.volume), randomUUID());
  const progress: Progress = { received: 0, written: 0 };
  let twin: StoredTwin | null = null;
  let received: Received | null = null;
  try {
    twin = await StoredTwin.find(ctx, options.expectedSize);
    received = await receive(ctx, body, tmp, options, progress, resumeBody, twin);
    signal?.throwIfAborted();
    return await finalize(ctx, image, tmp, received, progress);
  } catch (err) {
    await received?.file?.close(false).catch(() => undefined);
    await removeTemp(ctx, tmp, progress.written > 0);
    throw await classify(ctx, image, err, signal, progress.received);
  } finally {
    await twin?.close().catch(() => undefined);
    await ctx.images.release(image, progress.written);
  }
}

/** An upload's temp file, its writes counted by how they were made (callfs_cas_written_bytes_total). */
function createTemp(ctx: CasContext, tmp: string): Promise<TempFile> {
  return TempFile.create(tmp, ctx.directBlocks, (mode, bytes) => ctx.metrics.casWrittenBytes.inc({ mode }, bytes));
}

/** Append a batch to an upload's temp file, its bytes counted against the host's room first (see HostSpace). */
async function appendToTemp(ctx: CasContext, file: TempFile, batch: readonly Buffer[], bytes: number, progress: Progress): Promise<void> {
  progress.written += bytes;
  await ctx.images.host.counted(bytes, () => file.append(batch, bytes));
}

/**
 * The temp file of an upload that matched its stored twin so far: created,
 * with the matched bytes (the upload's own) copied in from the twin, each
 * chunk also handed to `seen`. The copy must have `crc`, the CRC32C of the
 * upload's bytes it stands for: stored bytes that read otherwise than when
 * they were compared are refused (503) rather than written as the upload's.
 * On failure the file is closed; the caller removes it.
 */
async function startFromTwin(ctx: CasContext, tmp: string, twin: StoredTwin, progress: Progress, crc: number, seen: (chunk: Buffer) => void): Promise<TempFile> {
  const file = await createTemp(ctx, tmp);
  try {
    let copied = 0;
    await twin.copyMatched((chunk) => {
      copied = crc32c(chunk, copied);
      seen(chunk);
      return appendToTemp(ctx, file, [chunk], chunk.length, progress);
    });
    if (copied !== crc) throw unavailable('cas', `the stored blob ${twin.sha256} read back otherwise than when an upload was compared with it`);
    return file;
  } catch (err) {
    await file.close(false).catch(() => undefined);
    throw err;
  }
}

/**
 * Remove a failed upload's temp file. When bytes were written, the
 * directory is flushed too: that commits the unlink, and only then does
 * ext4 release the file's blocks (in dir mode: to the host at once; in a
 * loop image mounted with `discard`: punched out of the image file by
 * ext4's discard worker right after, measured within tens of ms).
 */
async function removeTemp(ctx: CasContext, tmp: string, wroteBytes: boolean): Promise<void> {
  try {
    await rm(tmp, { force: true });
    if (!wroteBytes) return;
    await fsyncDir(dirname(tmp));
    ctx.images.host.invalidate();
  } catch (err) {
    ctx.logger.error({ err, tmp }, 'cannot remove CAS temp file');
  }
}

/** A fully received upload: its temp file, still open and not yet flushed, or the stored twin it matched throughout. */
interface Received {
  /** Null when nothing was written: every byte matched `twin`, and was not hashed. */
  sha256: string | null;
  /** CRC32C of the bytes, checked on reads (see BlobLocator.crcOf). */
  crc: number;
  /** CRC32C of the first TWIN_HEAD_BYTES (see StoredTwin). */
  headCrc: number;
  size: number;
  file: TempFile | null;
  /** Set when nothing was written: every byte matched this stored blob. */
  twin: StoredTwin | null;
}

/**
 * Read the body into the temp file while hashing and counting. The body is
 * consumed by 'data' events (no re-buffering): chunks are gathered into one
 * write of about WRITE_BATCH_BYTES, and the next batch is received while that
 * write runs (the body is paused only when a second batch is ready before the
 * first is written). A large upload is written around the page cache (see
 * TempFile); where that is refused, it is flushed in the background as it grows.
 */
function receive(
  ctx: CasContext,
  body: Readable,
  tmp: string,
  options: PutOptions,
  progress: Progress,
  resumeBody: boolean,
  storedTwin: StoredTwin | null,
): Promise<Received> {
  const { signal, maxBytes } = options;
  return new Promise<Received>((resolve, reject) => {
    const hash = createHash('sha256');
    let crc = 0;
    let headCrc = 0;
    let size = 0;
    /**
     * Bytes of the body hashed and checksummed so far, always in order: as
     * they arrive while the upload is written (the hashing overlaps the
     * writes); not while it is compared with the twin (see compare); and,
     * after a difference, the bytes that arrived meanwhile as their batch is
     * written, until the hash has caught up with the body again.
     */
    let digested = 0;
    const digest = (buf: Buffer): void => {
      hash.update(buf);
      crc = crc32c(buf, crc);
      digested += buf.length;
    };
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    /** Bytes of the body handed to write or compare so far (where the next batch starts). */
    let handed = 0;
    let file: TempFile | null = null;
    // While set, batches are compared with it instead of written (see StoredTwin).
    let twin = storedTwin;
    let opening = twin === null;
    let writing = false;
    let ended = false;
    let failure: unknown = null;
    let unsynced = 0;
    let syncing: Promise<void> | null = null;
    let syncFailure: unknown = null;
    let settled = false;

    const onAbort = (): void => {
      fail(signal?.reason ?? new Error('aborted'));
    };
    let detach = (): void => undefined;
    /**
     * Settle once nothing is in flight on the file: on success once its last
     * staged bytes are written, and the caller closes it; on failure closed.
     */
    const settle = (): void => {
      if (opening || writing) return;
      if (syncing !== null) {
        void syncing.then(settle);
        return;
      }
      if (settled) return;
      settled = true;
      detach();
      failure ??= syncFailure;
      const handle = file;
      file = null;
      const rejectClosed = (err: unknown): void => {
        void (handle?.close(false).catch(() => undefined) ?? Promise.resolve()).then(() => reject(err));
      };
      if (failure !== null || (handle === null && twin === null)) {
        rejectClosed(failure);
        return;
      }
      if (handle === null) {
        resolve({ sha256: null, crc, headCrc, size, file: null, twin });
        return;
      }
      if (digested !== size) {
        rejectClosed(new Error(`CAS put: ${digested} of ${size} bytes hashed`));
        return;
      }
      const sha256 = hash.digest('hex');
      handle.complete().then(() => resolve({ sha256, crc, headCrc, size, file: handle, twin: null }), rejectClosed);
    };
    function fail(err: unknown): void {
      if (failure !== null) return;
      failure = err;
      body.destroy();
      settle();
    }
    const backgroundSync = (handle: TempFile): void => {
      if (handle.mode !== 'buffered' || syncing !== null || unsynced < BACKGROUND_SYNC_BYTES) return;
      unsynced = 0;
      syncing = handle.datasync().then(
        () => { syncing = null; },
        (err: unknown) => { syncing = null; syncFailure ??= err; },
      );
    };
    // A batch (starting at byte `start` of the body) to the temp file, its bytes not hashed yet hashed first.
    const write = async (handle: TempFile, batch: Buffer[], bytes: number, start: number): Promise<void> => {
      let at = start;
      for (const buf of batch) {
        if (at === digested) digest(buf);
        at += buf.length;
      }
      await appendToTemp(ctx, handle, batch, bytes, progress);
      unsynced += bytes;
      backgroundSync(handle);
    };
    // A batch compared with the twin. One equal to it is checksummed, not hashed (finalize checks
    // the checksum of the whole). At the first that differs the upload is written from its first
    // byte on: the bytes that matched are copied from the twin and hashed as they are, then the
    // batch that differs is written.
    const compare = async (stored: StoredTwin, batch: Buffer[], bytes: number, start: number): Promise<void> => {
      if (await stored.same(batch, bytes, headCrc)) {
        for (const buf of batch) crc = crc32c(buf, crc);
        return;
      }
      twin = null;
      file = await startFromTwin(ctx, tmp, stored, progress, crc, (chunk) => hash.update(chunk));
      digested = stored.compared;
      await write(file, batch, bytes, start);
    };
    const flush = (): void => {
      if ((file === null && twin === null) || writing || failure !== null) return;
      if (pendingBytes === 0) {
        if (ended) settle();
        return;
      }
      const batch = pending;
      const bytes = pendingBytes;
      const start = handed;
      pending = [];
      pendingBytes = 0;
      handed += bytes;
      writing = true;
      (file !== null ? write(file, batch, bytes, start) : compare(twin as StoredTwin, batch, bytes, start)).then(
        () => {
          writing = false;
          if (failure !== null) settle();
          else if (ended || pendingBytes >= WRITE_BATCH_BYTES) flush();
          else if (body.isPaused()) body.resume();
        },
        (err: unknown) => {
          writing = false;
          fail(err);
        },
      );
    };
    function onData(chunk: Buffer | string): void {
      if (failure !== null) return;
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      size += buf.length;
      progress.received = size;
      if (maxBytes !== undefined && size > maxBytes) {
        fail(new CallfsError('PAYLOAD_TOO_LARGE', `upload exceeds the limit of ${maxBytes} bytes`));
        return;
      }
      const before = size - buf.length;
      if (before < TWIN_HEAD_BYTES) headCrc = crc32c(before + buf.length <= TWIN_HEAD_BYTES ? buf : buf.subarray(0, TWIN_HEAD_BYTES - before), headCrc);
      if (twin === null && digested === before) digest(buf);
      pending.push(buf);
      pendingBytes += buf.length;
      if (pendingBytes < WRITE_BATCH_BYTES) return;
      if (writing || (file === null && twin === null)) body.pause();
      else flush();
    }
    function onEnd(): void {
      if (signal?.aborted === true) {
        fail(signal.reason);
        return;
      }
      ended = true;
      flush();
    }
    function onClose(): void {
      if (!ended) fail(new Error('the upload stream closed before its end'));
    }

    if (signal?.aborted === true) {
      opening = false;
      fail(signal.reason);
      return;
    }
    const gone = bodyGone(body);
    if (gone !== null) {
      opening = false;
      fail(gone);
      return;
    }
    detach = listenTo(body, signal, { data: onData, end: onEnd, error: fail, close: onClose, abort: onAbort });
    if (resumeBody) body.resume();
    if (twin !== null) return;
    createTemp(ctx, tmp).then(
      (handle) => {
        opening = false;
        file = handle;
        if (failure !== null) settle();
        else if (ended || pendingBytes >= WRITE_BATCH_BYTES) flush();
      },
      (err: unknown) => {
        opening = false;
        fail(err);
      },
    );
  });
}

async function finalize(ctx: CasContext, image: Image, tmp: string, received: Received, progress: Progress): Promise<CasPutResult> {
  const { size, twin, crc } = received;
  const sha256 = received.sha256 ?? (await identifyMatched(ctx, tmp, received, progress));
  ctx.locator.rememberCrc(sha256, crc);
  if (size >= TWIN_MIN_BYTES) ctx.locator.rememberSize(size, sha256, received.headCrc);
  return ctx.guard.run(sha256, async () => {
    const copy = await goodCopy(ctx, sha256, size);
    if (copy !== null) {
      if (received.file !== null) {
        await received.file.close(false);
        await rm(tmp, { force: true });
      }
      await recordIn(ctx, { sha256, size, ...copy });
      return stored(ctx, sha256, size, true);
    }
    // Matched the twin throughout, but no good copy is left here (it was collected meanwhile, or
    // its image failed): written now, from the twin (its bytes checked against the upload's CRC32C).
    if (received.file === null) {
      received.file = await startFromTwin(ctx, tmp, twin as StoredTwin, progress, crc, () => undefined);
      await received.file.complete();
    }
    const file = received.file;
    // The bytes are durable before they get their final name: never a torn blob.
    await file.datasync();
    await file.close(true);
    // Indexed before the rename: a crash in between leaves a row without a
    // file (collected later), never a file no index knows about (leaked).
    const row = await recordIn(ctx, { sha256, imageId: image.id, size, packed: null });
    const dir = blobDir(image.volume, sha256);
    const firstCreated = await renameIntoPlace(tmp, dir, blobPath(image.volume, sha256));
    ctx.locator.remember(sha256, image);
    await ctx.syncer.sync(dirsToFlush(dir, firstCreated));
    await clearQuarantine(ctx, row);
    return stored(ctx, sha256, size, false);
  });
}

/**
 * The blob an upload is when every byte of it matched its twin (and nothing
 * was hashed). The twin's own, when the bytes have its CRC32C (as a read
 * checks them). Otherwise the twin's bytes are damaged and the upload is the
 * damaged bytes: it is written from the twin into its temp file, hashed as
 * it is copied.
 */
async function identifyMatched(ctx: CasContext, tmp: string, received: Received, progress: Progress): Promise<string> {
  const { twin, size, crc } = received;
  if (twin === null || twin.compared !== size) throw new Error(`CAS put: ${size} bytes received, neither written nor matched`);
  if (size === twin.size && crc === twin.crc) return twin.sha256;
  const hash = createHash('sha256');
  received.file = await startFromTwin(ctx, tmp, twin, progress, crc, (chunk) => hash.update(chunk));
  await received.file.complete();
  return hash.digest('hex');
}

/**
 * A good copy of the blob already stored here, packed or a file of its own,
 * to deduplicate against (under the sha's guard). A copy on a failed image
 * may not read back: these bytes are stored again instead. A file of the
 * same name and another size is damaged: it is quarantined (the new bytes
 * were just hashed), and null returned.
 */
async function goodCopy(ctx: CasContext, sha256: string, size: number): Promise<{ imageId: string; packed: PackedAt | null } | null> {
  const packed = ctx.packed.get(sha256);
  // Packed by an earlier put, or the packing threshold was higher then.
  if (packed !== undefined && packed.image.state !== 'failed' && packed.size === size) return { imageId: packed.image.id, packed };
  if (size < ctx.packed.packBelowBytes && !ctx.packed.smallFilesIndexed) return null;
  const found = await ctx.locator.find(sha256);
  if (found === null || found.image.state === 'failed') return null;
  if (found.size === size) return { imageId: found.image.id, packed: null };
  await quarantineLocked(ctx, sha256, found, `size ${found.size} instead of ${size}`);
  return null;
}

/** What a put resolves to: the blob, pinned against the collector until the caller's entry names it. */
function stored(ctx: CasContext, sha256: string, size: number, deduplicated: boolean): CasPutResult {
  return { id: sha256, sha256, size, deduplicated, release: ctx.pins.pin(sha256) };
}

/**
 * What a put resolves to when its index row is left to the caller's commit
 * (PutOptions.deferIndex): the blob, pinned, and the row to write. `settle`
 * ends the packed record's wait for its row (see PackedBlobs.awaitRow):
 * called when the row is written, or by release when it never was.
 */
function deferred(
  ctx: CasContext,
  blob: { sha256: string; imageId: string; size: number; packed: PackedAt | null },
  deduplicated: boolean,
  settle: (() => void) | null,
): CasPutResult {
  const { sha256, size } = blob;
  const pinned = stored(ctx, sha256, size, deduplicated);
  // Only the place is written: a PackedLocation also carries its image and size.
  const placement = { sha256, instanceId: ctx.instanceId, imageId: blob.imageId, size, packed: blob.packed === null ? null : { segment: blob.packed.segment, offset: blob.packed.offset } };
  let isWritten = false;
  const index: DeferredIndexRow = {
    blob: placement,
    written: (row) => {
      if (isWritten) return;
      isWritten = true;
      settle?.();
      if (!deduplicated) void clearQuarantine(ctx, row);
    },
    write: async () => {
      if (isWritten) return;
      index.written(await recordIn(ctx, placement));
    },
  };
  return {
    ...pinned,
    index,
    release: () => {
      settle?.();
      pinned.release();
    },
  };
}

/** Good bytes (hashed just now) replaced a quarantined blob: its row is healthy again. */
async function clearQuarantine(ctx: CasContext, row: BlobRecord): Promise<void> {
  if (!row.quarantined) return;
  await ctx.index.markBlobVerified(ctx.instanceId, row.sha256, true).catch((err: unknown) => ctx.logger.warn({ err, sha256: row.sha256 }, 'cannot clear the quarantine flag'));
}

/** The listeners of a read of an upload body. */
interface BodyListeners {
  data: (chunk: Buffer | string) => void;
  end: () => void;
  error: (err: unknown) => void;
  close: () => void;
  abort: () => void;
}

/** Attach the listeners to the body and to the abort signal; returns what detaches them all. */
function listenTo(body: Readable, signal: AbortSignal | undefined, on: BodyListeners): () => void {
  signal?.addEventListener('abort', on.abort, { once: true });
  body.on('data', on.data);
  body.once('end', on.end);
  body.once('error', on.error);
  body.once('close', on.close);
  return () => {
    signal?.removeEventListener('abort', on.abort);
    body.off('data', on.data);
    body.off('end', on.end);
    body.off('error', on.error);
    body.off('close', on.close);
  };
}

/** Why a body can no longer be read, or null: one that failed or closed before anyone listened would never say so, and the upload would hang. */
function bodyGone(body: Readable): unknown {
  if (body.errored === null && !body.destroyed) return null;
  return body.errored ?? new Error('the upload stream closed before its end');
}

/** Record where a blob's bytes are in the index; a failure is the metadata store's 503. */
export async function recordIn(ctx: CasContext, blob: { sha256: string; imageId: string; size: number; packed: PackedAt | null }): Promise<BlobRecord> {
  try {
    return await ctx.index.recordBlob({ ...blob, instanceId: ctx.instanceId });
  } catch (err) {
    throw isCallfsError(err) ? err : unavailable('metadata', 'the CAS blob index cannot be written', err);
  }
}

/** A whole small upload, in memory. */
interface SmallUpload {
  data: Buffer;
  sha256: string;
}

/**
 * Read the body while it stays below `limit` bytes. Resolves with the whole
 * upload when it ends below that; or null once it reaches the limit, with
 * what was read put back at the head of the body (unshift), the body paused
 * and no listener of ours left on it, for the file path to read as usual.
 */
function receiveSmall(body: Readable, limit: number, options: PutOptions): Promise<SmallUpload | null> {
  const { signal, maxBytes } = options;
  return new Promise<SmallUpload | null>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let detach = (): void => undefined;
    function fail(err: unknown): void {
      detach();
      body.destroy();
      reject(err);
    }
    function onAbort(): void {
      fail(signal?.reason ?? new Error('aborted'));
    }
    function onData(chunk: Buffer | string): void {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      chunks.push(buf);
      size += buf.length;
      if (maxBytes !== undefined && size > maxBytes) {
        fail(new CallfsError('PAYLOAD_TOO_LARGE', `upload exceeds the limit of ${maxBytes} bytes`));
        return;
      }
      if (size < limit) return;
      body.pause();
      detach();
      body.unshift(chunks.length === 1 ? buf : Buffer.concat(chunks, size));
      resolve(null);
    }
    function onEnd(): void {
      detach();
      if (signal?.aborted === true) {
        reject(signal.reason);
        return;
      }
      const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      resolve({ data, sha256: createHash('sha256').update(data).digest('hex') });
    }
    function onClose(): void {
      fail(new Error('the upload stream closed before its end'));
    }
    const gone = bodyGone(body);
    if (gone !== null) {
      reject(gone);
      return;
    }
    detach = listenTo(body, signal, { data: onData, end: onEnd, error: fail, close: onClose, abort: onAbort });
  });
}

/**
 * A small upload: deduplicated against a packed or file copy, else appended
 * to the active image's open segment (flushed with the other appends of its
 * batch) and then indexed at its place. Under the sha's guard, as finalize.
 */
async function putPacked(ctx: CasContext, upload: SmallUpload, options: PutOptions): Promise<CasPutResult> {
  const { signal } = options;
  const { data, sha256 } = upload;
  const size = data.length;
  const image = await ctx.images.acquireForWrite(signal);
  let written = 0;
  try {
    signal?.throwIfAborted();
    return await ctx.guard.run(sha256, async () => {
      const copy = await goodCopy(ctx, sha256, size);
      if (copy !== null) {
        if (options.deferIndex === true) {
          const copyImage = copy.packed === null ? undefined : ctx.images.get(copy.imageId);
          const settle = copy.packed === null || copyImage === undefined ? null : ctx.packed.awaitRow(sha256, copyImage, copy.packed.segment, false);
          return deferred(ctx, { sha256, size, ...copy }, true, settle);
        }
        await recordIn(ctx, { sha256, size, ...copy });
        return stored(ctx, sha256, size, true);
      }
      const at = await appendCounted(ctx, image, sha256, data);
      written = RECORD_HEADER_BYTES + size;
      if (options.deferIndex === true) {
        // Known here before it is indexed, so that a put of the same bytes deduplicates against it;
        // a row given up leaves it known (dead bytes until a restart) rather than name bytes that
        // compaction could drop while another put's row still names them.
        ctx.packed.set(sha256, { image, ...at, size });
        return deferred(ctx, { sha256, imageId: image.id, size, packed: at }, false, ctx.packed.awaitRow(sha256, image, at.segment, true));
      }
      let row: BlobRecord;
      try {
        row = await recordIn(ctx, { sha256, imageId: image.id, size, packed: at });
        ctx.packed.set(sha256, { image, ...at, size });
      } finally {
        ctx.packed.settled(image, at);
      }
      await clearQuarantine(ctx, row);
      return stored(ctx, sha256, size, false);
    });
  } catch (err) {
    throw await classify(ctx, image, err, signal, size);
  } finally {
    await ctx.images.release(image, written);
  }
}

/** Append a packed record, its bytes counted against the host's room first, as an upload's writes are (see HostSpace). */
export function appendCounted(ctx: CasContext, image: Image, sha256: string, data: Buffer): Promise<PackedAt> {
  return ctx.images.host.counted(RECORD_HEADER_BYTES + data.length, () => ctx.packed.append(image, sha256, data));
}

/**
 * Rename the temp file to its blob name, creating the fan-out directories
 * only when the rename says they are missing (they exist for nearly every
 * put). Returns the first directory created, as mkdir -p does.
 */
async function renameIntoPlace(tmp: string, dir: string, target: string): Promise<string | undefined> {
  try {
    await rename(tmp, target);
    return undefined;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  const firstCreated = await mkdir(dir, { recursive: true, mode: 0o750 });
  await rename(tmp, target);
  return firstCreated;
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
async function classify(ctx: CasContext, image: Image, err: unknown, signal: AbortSignal | undefined, received: number): Promise<unknown> {
  if (signal?.aborted) return signal.reason;
  if (isCallfsError(err)) return err;
  if (isNoSpace(err)) return ctx.images.refusalAfterNoSpace(image, received, err);
  if (isFilesystemFailure(err)) {
    await ctx.images.fail(image, err);
    return unavailable('cas', `CAS image ${image.id} failed`, err);
  }
  return err;
}
