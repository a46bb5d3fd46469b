import { crc32c } from '@node-rs/crc32';
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fstatSync, open, read } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { promisify } from 'node:util';
import { CallfsError } from '../../errors.js';
import type { ByteRange, DirectSend, OpenOptions, OpenResult } from '../types.js';
import type { BufferPool } from './buffer-pool.js';
import type { CasContext } from './context.js';
import { errnoCode, readFully } from './fs-util.js';
import type { Image } from './images.js';
import { integrityError, quarantine, quarantinePacked } from './integrity.js';
import { readPacked } from './segments.js';
import { isSha256Hex } from './layout.js';

const openFd = promisify(open);

/**
 * Close a read-only descriptor. Synchronous, like the fstat after open: both
 * act on in-memory state only and never wait on the disk, and a threadpool
 * round trip costs more than the call (see fs-util.ts).
 */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // EBADF/EIO on close of a read-only descriptor: nothing to undo
  }
}

/** Reads shorter than this are not worth a pooled buffer. */
const SMALL_READ_BYTES = 64 * 1024;

/** A buffer holding bytes to send, and how to hand it back once nothing refers to it. */
interface HeldChunk {
  chunk: Buffer;
  release: () => void;
}

export interface BlobReadStreamOptions {
  fd: number;
  /** First byte to read. */
  start: number;
  /** One past the last byte to read. */
  end: number;
  /** Buffers for sendTo; their size is also the chunk size of an ordinary read. */
  buffers: BufferPool;
  /** Verify the bytes against this sha256 (full reads only). */
  expectedSha256: string | null;
  /** Their CRC32C, when known: checked instead of hashing them again. */
  expectedCrc32c?: number | undefined;
  /** Told the bytes' CRC32C once they matched the sha256 (to check later reads with it). */
  onVerified?: (crc: number) => void;
  /** Builds the error the stream is destroyed with on a mismatch (and reports it). */
  onMismatch: (detail: string) => Error;
  /**
   * The whole range, already read and verified (the fd is then -1): the
   * stream only hands it on, with no read of its own.
   */
  prefetched?: HeldChunk;
}

/**
 * Streams a byte range of an open file. On a full read it hashes as it goes
 * and checks the digest before releasing the chunk that completes the file,
 * so a consumer of bad bytes always sees an error, never a clean end. Owns
 * the fd: closed on end, error or destroy (never while a read is in flight).
 * A whole blob that open() already read and verified is only handed on.
 *
 * Read as a stream, each chunk is a new buffer (it leaves with the reader);
 * an HTTP response is served by sendTo instead, with reused buffers.
 */
export class BlobReadStream extends Readable implements DirectSend {
  private fd: number;
  private position: number;
  private readonly end: number;
  private readonly buffers: BufferPool;
  private sending = false;
  private readonly hash: Hash | null;
  private readonly expected: string | null;
  private readonly expectedCrc: number | undefined;
  private readonly onVerified: ((crc: number) => void) | undefined;
  private crc = 0;
  private readonly onMismatch: (detail: string) => Error;
  private reading = false;
  private verified = false;
  private prefetched: HeldChunk | null;
  private closeWhenIdle: ((err: Error | null) => void) | null = null;

  constructor(options: BlobReadStreamOptions) {
    super({ highWaterMark: options.buffers.size });
    this.fd = options.fd;
    this.position = options.start;
    this.end = options.end;
    this.buffers = options.buffers;
    this.expected = options.expectedSha256;
    this.expectedCrc = options.expectedSha256 === null ? undefined : options.expectedCrc32c;
    this.onVerified = options.onVerified;
    this.hash = options.expectedSha256 === null || this.expectedCrc !== undefined ? null : createHash('sha256');
    this.onMismatch = options.onMismatch;
    this.prefetched = options.prefetched ?? null;
    if (this.prefetched !== null) {
      this.position = this.end;
      this.verified = true;
    }
  }

  override _read(): void {
    const held = this.takePrefetched();
    if (held !== null) {
      // The chunk leaves with the reader: its buffer is not given back.
      if (held.chunk.length > 0) this.push(held.chunk);
      this.push(null);
      return;
    }
    const remaining = this.end - this.position;
    if (remaining <= 0) {
      // Only a 0-byte object gets here with its digest unchecked.
      if (!this.verified && !this.verify()) return;
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafe(Math.min(this.buffers.size, remaining));
    this.reading = true;
    read(this.fd, buf, 0, buf.length, this.position, (err, bytesRead) => {
      const chunk = this.landed(err, buf, bytesRead);
      if (chunk !== null) this.push(chunk);
    });
  }

  /**
   * What a read into `buf` brought, for _read and sendTo alike: the chunk,
   * hashed and, when it completes a full read, verified; or null when the
   * stream stopped instead (destroyed meanwhile, read error, file shorter
   * than its size, digest mismatch).
   */
  private landed(err: Error | null, buf: Buffer, bytesRead: number): Buffer | null {
    this.reading = false;
    if (this.closeWhenIdle !== null) {
      this.closeWhenIdle(null);
      return null;
    }
    if (err || bytesRead === 0) {
      this.destroy(err ?? this.shrank());
      return null;
    }
    const chunk = bytesRead < buf.length ? buf.subarray(0, bytesRead) : buf;
    this.position += bytesRead;
    if (this.expected !== null) {
      this.crc = crc32c(chunk, this.crc);
      this.hash?.update(chunk);
      if (this.position >= this.end && !this.verify()) return null;
    }
    return chunk;
  }

  /**
   * Write the bytes into `dest` and end it, instead of being read: each chunk
   * is read into a buffer of the pool, which goes back to the pool when the
   * write's callback reports it done (a stream's chunks cannot be reused,
   * since nothing says when their reader is done with them). One read runs
   * ahead while the socket drains the previous chunk, so at most two buffers
   * are in use. The digest of a full read is checked before its last chunk
   * is written. Any failure — a read error, a mismatch, destroy() by the
   * abort signal or the backend's close — destroys `dest` (a broken transfer,
   * never a clean end) and is reported to `onError`; `dest` closing first
   * (the client went away) destroys this stream, which closes the fd.
   */
  sendTo(dest: Writable, onError: (err: Error) => void): void {
    if (this.sending || this.readableFlowing !== null || this.readableLength > 0 || this.destroyed) {
      throw new CallfsError('INTERNAL_ERROR', 'sendTo needs a blob stream nobody has read');
    }
    this.sending = true;
    let finished = false;
    // A chunk read and waiting for the socket to drain the one before it.
    let pending: { chunk: Buffer; release: () => void } | null = null;
    let draining = false;
    this.on('error', onError);
    this.once('close', () => {
      if (!finished) dest.destroy();
    });
    dest.once('close', () => this.destroy());
    dest.on('error', () => this.destroy());

    const finish = (): void => {
      finished = true;
      dest.end();
      this.destroy();
    };
    const write = (): void => {
      if (pending === null || this.destroyed) return;
      const { chunk, release } = pending;
      pending = null;
      const more = dest.write(chunk, (err) => {
        if (!err) release();
      });
      if (this.position >= this.end) {
        finish();
        return;
      }
      if (!more) {
        draining = true;
        dest.once('drain', () => {
          draining = false;
          write();
        });
      }
      readNext();
    };
    const readNext = (): void => {
      if (this.destroyed) return;
      const remaining = this.end - this.position;
      // A small file gets a buffer of its own size (young garbage, cheap), not a pooled 1 MiB.
      const pooled = remaining >= SMALL_READ_BYTES;
      const buf = pooled ? this.buffers.take() : Buffer.allocUnsafe(remaining);
      const release = (): void => {
        if (pooled) this.buffers.give(buf);
      };
      this.reading = true;
      read(this.fd, buf, 0, Math.min(buf.length, remaining), this.position, (err, bytesRead) => {
        const chunk = this.landed(err, buf, bytesRead);
        if (chunk === null) {
          // Not handed to the socket: the buffer is free again.
          release();
          return;
        }
        pending = { chunk, release };
        if (!draining) write();
      });
    };

    pending = this.takePrefetched();
    if (pending !== null) {
      if (pending.chunk.length > 0) write();
      else finish();
      return;
    }
    if (this.position >= this.end) {
      // Only a 0-byte object: nothing to read, its digest still checked.
      if (this.verify()) finish();
      return;
    }
    readNext();
  }

  private takePrefetched(): HeldChunk | null {
    const held = this.prefetched;
    this.prefetched = null;
    return held;
  }

  private shrank(): Error {
    return this.expected !== null ? this.onMismatch('file shorter than its size') : new CallfsError('INTERNAL_ERROR', 'blob file shrank while reading');
  }

  /** Check the digest; on mismatch destroy the stream and return false. */
  private verify(): boolean {
    this.verified = true;
    if (this.expected === null) return true;
    if (this.expectedCrc !== undefined) {
      if (this.crc === this.expectedCrc) return true;
      this.destroy(this.onMismatch(`CRC32C ${this.crc.toString(16)} instead of ${this.expectedCrc.toString(16)}`));
      return false;
    }
    const actual = this.hash?.digest('hex');
    if (actual === this.expected) {
      this.onVerified?.(this.crc);
      return true;
    }
    this.destroy(this.onMismatch(`read ${String(actual)}`));
    return false;
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.takePrefetched()?.release();
    const fd = this.fd;
    this.fd = -1;
    const finish = (): void => {
      if (fd < 0) {
        callback(err);
        return;
      }
      closeQuietly(fd);
      callback(err);
    };
    if (this.reading) this.closeWhenIdle = finish;
    else finish();
  }
}

/**
 * Read a whole blob of at most one read buffer and check it against its
 * name; closes the fd. A mismatch (or a file shorter than its size) is
 * quarantined before INTEGRITY_ERROR is thrown, so the next open finds it
 * quarantined.
 */
async function readVerified(ctx: CasContext, id: string, blob: OpenedBlob, quarantineBlob: (detail: string) => Promise<void>): Promise<HeldChunk> {
  // As sendTo does: a small file gets a buffer of its own size, a larger one a pooled buffer.
  const pooled = blob.size >= SMALL_READ_BYTES;
  const buf = pooled ? ctx.readBuffers.take() : Buffer.allocUnsafe(blob.size);
  const release = (): void => {
    if (pooled) ctx.readBuffers.give(buf);
  };
  let filled: number;
  try {
    filled = await readFully(blob.fd, buf, blob.size, 0);
  } catch (err) {
    release();
    throw err;
  } finally {
    closeQuietly(blob.fd);
  }
  const chunk = buf.subarray(0, filled);
  const known = ctx.locator.crcOf(id);
  let detail: string;
  if (known !== undefined) {
    // Stored by a put, or verified against the sha256 by an earlier read: the CRC32C suffices.
    const crc = crc32c(chunk);
    if (filled === blob.size && crc === known) return { chunk, release };
    detail = filled < blob.size ? 'file shorter than its size' : `CRC32C ${crc.toString(16)} instead of ${known.toString(16)}`;
  } else {
    const actual = createHash('sha256').update(chunk).digest('hex');
    if (filled === blob.size && actual === id) {
      ctx.locator.rememberCrc(id, crc32c(chunk));
      return { chunk, release };
    }
    detail = filled < blob.size ? 'file shorter than its size' : `read ${actual}`;
  }
  release();
  await quarantineBlob(detail);
  throw integrityError(id, detail);
}

/**
 * A packed blob's bytes, read and checked (see readPacked), or null when it
 * is not packed here. A record that moved meanwhile (compaction) is read
 * again where the index now says; bad bytes are quarantined and answered
 * with INTEGRITY_ERROR.
 */
async function readPackedBlob(ctx: CasContext, id: string): Promise<Buffer | null> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const location = ctx.packed.get(id);
    if (location === undefined) return null;
    const got = await readPacked(location, id);
    if (got.kind === 'ok') return got.data;
    if (got.kind === 'corrupt') {
      await quarantinePacked(ctx, id, location, got.detail, got.data);
      throw integrityError(id, got.detail);
    }
    if (ctx.packed.get(id) === location) break;
  }
  // Still named there, and the record is not this blob's: the index is wrong about it.
  const location = ctx.packed.get(id);
  if (location !== undefined) {
    await quarantinePacked(ctx, id, location, 'the segment record is not this blob', null);
    throw integrityError(id, 'the segment record is not this blob');
  }
  return null;
}

/** The first and last byte of `range` (the whole blob when absent) in a blob of `size` bytes; RANGE_NOT_SATISFIABLE when it starts past the end or is malformed. */
function byteSpan(range: ByteRange | undefined, size: number): { start: number; end: number } {
  if (range === undefined) return { start: 0, end: size - 1 };
  const valid = Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start;
  if (!valid || range.start >= size) {
    throw new CallfsError('RANGE_NOT_SATISFIABLE', `range ${range.start}-${range.end} is outside 0-${size - 1}`, { details: { size } });
  }
  return { start: range.start, end: Math.min(range.end, size - 1) };
}

/** A stream over a packed blob's bytes (or the requested range of them), already checked. */
function streamPacked(ctx: CasContext, data: Buffer, options: OpenOptions, track: (stream: Readable) => void): OpenResult {
  const { range, signal } = options;
  const { start, end } = byteSpan(range, data.length);
  const chunk = start === 0 && end === data.length - 1 ? data : data.subarray(start, end + 1);
  signal?.throwIfAborted();
  const stream = new BlobReadStream({
    fd: -1,
    start: 0,
    end: chunk.length,
    buffers: ctx.readBuffers,
    expectedSha256: null,
    onMismatch: (detail) => new CallfsError('INTERNAL_ERROR', detail),
    prefetched: { chunk, release: () => undefined },
  });
  track(stream);
  return { size: data.length, stream };
}

/** Where open() found the bytes, for quarantine on a mismatch. */
interface OpenedBlob {
  fd: number;
  size: number;
  image: Image;
  path: string;
  dev: number;
  ino: number;
}

/** The blob file opened, or null when `path` does not exist. */
async function openAt(image: Image, path: string): Promise<OpenedBlob | null> {
  let fd: number;
  try {
    fd = await openFd(path, 'r');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
  try {
    const s = fstatSync(fd);
    return { fd, size: s.size, image, path, dev: s.dev, ino: s.ino };
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
}

async function openLocated(ctx: CasContext, id: string): Promise<OpenedBlob | null> {
  // A hot blob: open it where it was last seen, without probing first.
  const seen = ctx.locator.cached(id);
  if (seen !== null) {
    const opened = await openAt(seen.image, seen.path);
    if (opened !== null) return opened;
    ctx.locator.forget(id);
  }
  // Two tries: the collector or quarantine may move the file between find and open.
  for (let attempt = 0; attempt < 2; attempt++) {
    const location = await ctx.locator.find(id);
    if (location === null) return null;
    const opened = await openAt(location.image, location.path);
    if (opened !== null) return opened;
    ctx.locator.forget(id);
  }
  return null;
}

/**
 * open(): FILE_NOT_FOUND (or INTEGRITY_ERROR for a quarantined blob) before
 * the first byte; a range must start inside the object and is clamped at its
 * end; a read of the whole object is verified against its sha256: here, when
 * one read buffer takes it (INTEGRITY_ERROR thrown), else while streaming.
 */
export async function openBlob(ctx: CasContext, id: string, options: OpenOptions, track: (stream: Readable) => void): Promise<OpenResult> {
  const { signal, range } = options;
  signal?.throwIfAborted();
  if (!isSha256Hex(id)) throw new CallfsError('FILE_NOT_FOUND', `no blob ${id}`);
  if (options.sha256 !== undefined && options.sha256 !== id) throw integrityError(id, `expected content ${options.sha256}`);
  const packed = await readPackedBlob(ctx, id);
  if (packed !== null) return streamPacked(ctx, packed, options, track);
  const blob = await openLocated(ctx, id);
  if (blob === null) {
    if (await ctx.locator.isQuarantined(id)) throw integrityError(id, 'quarantined');
    throw new CallfsError('FILE_NOT_FOUND', `no blob ${id}`);
  }
  if (signal?.aborted) {
    closeQuietly(blob.fd);
    throw signal.reason;
  }
  let span: { start: number; end: number };
  try {
    span = byteSpan(range, blob.size);
  } catch (err) {
    closeQuietly(blob.fd);
    throw err;
  }
  const { start, end } = span;
  const whole = start === 0 && end === blob.size - 1;
  const quarantineBlob = (detail: string): Promise<void> => {
    const task = quarantine(ctx, id, blob, detail)
      .catch((err: unknown) => ctx.logger.error({ err, sha256: id }, 'quarantine failed'))
      .finally(() => ctx.background.delete(task));
    ctx.background.add(task);
    return task;
  };
  // A whole blob that one read takes is read and verified here, before any
  // header is sent: bad bytes then get a proper INTEGRITY_ERROR answer
  // instead of a connection closed without one. The read is the one the
  // stream would make, so a good blob costs nothing more.
  const prefetched = whole && blob.size <= ctx.readBuffers.size ? await readVerified(ctx, id, blob, quarantineBlob) : undefined;
  if (prefetched !== undefined && signal?.aborted) {
    prefetched.release();
    throw signal.reason;
  }
  const stream = new BlobReadStream({
    fd: prefetched === undefined ? blob.fd : -1,
    start,
    end: end + 1,
    buffers: ctx.readBuffers,
    expectedSha256: whole && prefetched === undefined ? id : null,
    expectedCrc32c: ctx.locator.crcOf(id),
    onVerified: (crc) => ctx.locator.rememberCrc(id, crc),
    onMismatch: (detail) => {
      void quarantineBlob(detail);
      return integrityError(id, detail);
    },
    ...(prefetched === undefined ? {} : { prefetched }),
  });
  if (signal !== undefined) {
    const onAbort = (): void => {
      stream.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  track(stream);
  return { size: blob.size, stream };
}
