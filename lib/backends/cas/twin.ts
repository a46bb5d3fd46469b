import { close, open } from 'node:fs';
import { promisify } from 'node:util';
import type { CasContext } from './context.js';
import { readFully } from './fs-util.js';

const openAsync = promisify(open);
const closeAsync = promisify(close);

/**
 * Uploads at least this large, of a declared length, are compared with a
 * stored blob of that length as they arrive (see StoredTwin). Below it the
 * write costs about what the read of the stored bytes would.
 */
export const TWIN_MIN_BYTES = 1024 * 1024;

/**
 * The first bytes of an upload, whose CRC32C is checked against the twin's
 * before any of the twin is read: an upload of the same length and other
 * content (the common case) then costs no read at all.
 */
export const TWIN_HEAD_BYTES = 64 * 1024;

/** Bytes of the stored blob copied per read when an upload falls back to being written. */
const COPY_CHUNK_BYTES = 1024 * 1024;

/**
 * A stored blob that an upload of the same declared length is compared with
 * as it arrives, instead of being written: a re-upload of bytes this
 * instance holds then writes nothing (no temp file, no flush, no unlink).
 * An upload that matches throughout is not hashed: its bytes are the
 * blob's, and they are the blob's content when they have its CRC32C (the
 * check every whole read of it makes), so the blob's SHA-256 names it. At
 * the first batch that differs, the stored bytes that matched so far (the
 * upload's own) are copied into the temp file, hashed as they are, and the
 * upload is written and hashed from there on as any other.
 *
 * The descriptor is opened before the first comparison and kept until the
 * upload is done with it, so a collector or quarantine that unlinks the
 * blob meanwhile does not take the bytes away from under the copy.
 */
export class StoredTwin {
  /** Bytes of the upload found equal to the stored bytes so far. */
  private matched = 0;
  private fd: number | null;
  private scratch: Buffer | null = null;

  private constructor(
    readonly sha256: string,
    readonly size: number,
    /** CRC32C of the blob's bytes (BlobLocator.crcOf): what bytes that matched it throughout must have. */
    readonly crc: number,
    /** CRC32C of its first TWIN_HEAD_BYTES. */
    private readonly headCrc: number,
    fd: number,
  ) {
    this.fd = fd;
  }

  /**
   * The stored blob of `size` bytes this instance last wrote or deduplicated
   * against, opened, or null (none known, its CRC32C not known, gone, or not
   * readable: the upload is then simply written).
   */
  static async find(ctx: CasContext, size: number | undefined): Promise<StoredTwin | null> {
    if (size === undefined || size < TWIN_MIN_BYTES) return null;
    const last = ctx.locator.lastOfSize(size);
    const crc = last === undefined ? undefined : ctx.locator.crcOf(last.sha256);
    if (last === undefined || crc === undefined) return null;
    const { sha256, headCrc } = last;
    try {
      const found = await ctx.locator.find(sha256);
      if (found === null || found.size !== size || found.image.state === 'failed') return null;
      return new StoredTwin(sha256, size, crc, headCrc, await openAsync(found.path, 'r'));
    } catch (err) {
      ctx.logger.debug({ err, sha256 }, 'CAS: a stored blob of the same length cannot be opened; the upload is written');
      return null;
    }
  }

  /** The upload's bytes compared so far; all of them equal the stored blob's first bytes. */
  get compared(): number {
    return this.matched;
  }

  /**
   * True when the next `bytes` of the stored blob are `buffers`, which then
   * count as matched. `headCrc` is the CRC32C of the upload's first
   * TWIN_HEAD_BYTES: on the first batch, one that differs from the blob's
   * says so without a read.
   */
  async same(buffers: readonly Buffer[], bytes: number, headCrc: number): Promise<boolean> {
    if (this.matched + bytes > this.size) return false;
    if (this.matched === 0 && headCrc !== this.headCrc) return false;
    if (this.scratch === null || this.scratch.length < bytes) this.scratch = Buffer.allocUnsafe(Math.max(bytes, COPY_CHUNK_BYTES));
    const stored = this.scratch;
    try {
      await this.readAt(stored, bytes, this.matched);
    } catch {
      // Stored bytes that cannot be read are not the upload's: it is written instead.
      return false;
    }
    let at = 0;
    for (const buf of buffers) {
      if (!buf.equals(stored.subarray(at, at + buf.length))) return false;
      at += buf.length;
    }
    this.matched += bytes;
    return true;
  }

  /** Hand the matched bytes, in order, to `write`, a fresh buffer at a time. */
  async copyMatched(write: (chunk: Buffer) => Promise<void>): Promise<void> {
    for (let at = 0; at < this.matched; at += COPY_CHUNK_BYTES) {
      const length = Math.min(COPY_CHUNK_BYTES, this.matched - at);
      const chunk = Buffer.allocUnsafe(length);
      await this.readAt(chunk, length, at);
      await write(chunk);
    }
  }

  /** Close the descriptor; later calls do nothing. */
  async close(): Promise<void> {
    const fd = this.fd;
    this.fd = null;
    this.scratch = null;
    if (fd !== null) await closeAsync(fd);
  }

  /** Fill buffer[0, length) from the stored blob at `position`; a blob that ends before is an error. */
  private async readAt(buffer: Buffer, length: number, position: number): Promise<void> {
    if (this.fd === null) throw new Error('StoredTwin: read after close');
    const read = await readFully(this.fd, buffer, length, position);
    if (read < length) throw new Error(`StoredTwin: ${this.sha256} ended at ${position + read} of ${this.size} bytes`);
  }
}
