import { close, closeSync, constants, fdatasync, open as openCallback, writev } from 'node:fs';
import { promisify } from 'node:util';
import { DIRECT_ALIGN, type DirectBlocks } from './direct-blocks.js';
import { errnoCode } from './fs-util.js';

const openAsync = promisify(openCallback);
const writevAsync = promisify(writev);
const fdatasyncAsync = promisify(fdatasync);
const closeAsync = promisify(close);

/** Linux's O_DIRECT; undefined elsewhere, where every write goes through the page cache. */
const O_DIRECT: number | undefined = constants.O_DIRECT;

/** A failed O_DIRECT open or first write with one of these means: not here, write buffered. */
const DIRECT_REFUSED = new Set(['EINVAL', 'EOPNOTSUPP', 'EACCES', 'EPERM']);

export type WriteMode = 'direct' | 'buffered';

/**
 * An upload's temp file, on raw descriptors (lighter than a FileHandle: no
 * close through the threadpool, no GC tracking of the handle).
 *
 * A large upload is written around the page cache (O_DIRECT, through a
 * second descriptor): its bytes go from one reused aligned block straight to
 * the device, instead of being copied into page-cache pages that the kernel
 * must first allocate and then write back (on the bench machine, 256 MiB
 * written and flushed in an image took dd 0.15-0.19 s direct and 0.20-0.53 s
 * through the page cache). The final partial 4 KiB goes through the page
 * cache; fdatasync flushes it with the metadata. Small uploads, and any
 * upload when no block is free or the filesystem refuses O_DIRECT (or the
 * second open of the read-only temp file, for a server not run as root), are
 * written through the page cache.
 *
 * One append() or complete() at a time; close() waits for the one running,
 * so that no descriptor is closed (and its number reused) under a write.
 */
export class TempFile {
  private fd: number | null;
  private directFd: number | null = null;
  private block: Buffer | null = null;
  /** Bytes at the start of `block` not yet written. */
  private staged = 0;
  /** File offset of the next write. */
  private position = 0;
  /** The append() or complete() running. */
  private running: Promise<void> | null = null;
  private chosen: WriteMode | null = null;

  private constructor(
    private readonly path: string,
    fd: number,
    private readonly blocks: DirectBlocks | null,
    private readonly onWritten: (mode: WriteMode, bytes: number) => void,
  ) {
    this.fd = fd;
  }

  /** Create `path` (it must not exist) read-only: blobs are immutable, the descriptor still writes. */
  static async create(path: string, blocks: DirectBlocks | null, onWritten: (mode: WriteMode, bytes: number) => void = () => undefined): Promise<TempFile> {
    return new TempFile(path, await openAsync(path, 'wx', 0o400), blocks, onWritten);
  }

  /** How the bytes are written; decided by the first append(). */
  get mode(): WriteMode | null {
    return this.chosen;
  }

  /**
   * Append `buffers` (`bytes` in all). Direct writes go out a whole block at a
   * time; what does not fill one waits in it for the next call or complete().
   */
  append(buffers: readonly Buffer[], bytes: number): Promise<void> {
    return this.run(async () => {
      if (this.chosen === null) this.chosen = await this.choose(bytes);
      for (let i = 0; i < buffers.length; i++) {
        const buf = buffers[i] as Buffer;
        let from = 0;
        while (from < buf.length) {
          const block = this.block;
          if (block === null) {
            await this.writeBuffered([from > 0 ? buf.subarray(from) : buf, ...buffers.slice(i + 1)]);
            return;
          }
          const copied = buf.copy(block, this.staged, from);
          this.staged += copied;
          from += copied;
          if (this.staged === block.length) await this.writeStaged(block.length);
        }
      }
    });
  }

  /** Write what append() left staged: afterwards the file holds every byte appended. */
  complete(): Promise<void> {
    return this.run(async () => {
      const block = this.block;
      if (block === null || this.staged === 0) return;
      const whole = this.staged - (this.staged % DIRECT_ALIGN);
      if (whole > 0) await this.writeStaged(whole);
      if (this.block !== null && this.staged > 0) {
        await this.writeBuffered([this.block.subarray(0, this.staged)]);
        this.staged = 0;
      }
    });
  }

  datasync(): Promise<void> {
    return fdatasyncAsync(this.descriptor());
  }

  /**
   * Close both descriptors; later calls do nothing. The buffered one closes
   * synchronously when the bytes were flushed (close then only releases it),
   * otherwise on the threadpool, since the filesystem may act on the close of
   * a dirty file. The direct one never holds dirty pages.
   */
  async close(flushed: boolean): Promise<void> {
    await this.running?.catch(() => undefined);
    const fd = this.fd;
    this.fd = null;
    this.releaseBlock();
    if (fd === null) return;
    if (flushed) closeSync(fd);
    else await closeAsync(fd);
  }

  private async choose(firstBytes: number): Promise<WriteMode> {
    const blocks = this.blocks;
    if (blocks === null || O_DIRECT === undefined || firstBytes < blocks.blockBytes) return 'buffered';
    const block = blocks.take();
    if (block === null) return 'buffered';
    try {
      this.directFd = await openAsync(this.path, constants.O_WRONLY | O_DIRECT);
    } catch (err) {
      blocks.give(block);
      if (DIRECT_REFUSED.has(errnoCode(err) ?? '')) return 'buffered';
      throw err;
    }
    this.block = block;
    return 'direct';
  }

  /** Write the first `length` staged bytes (a multiple of DIRECT_ALIGN) with O_DIRECT. */
  private async writeStaged(length: number): Promise<void> {
    const block = this.block as Buffer;
    let written: number;
    try {
      ({ bytesWritten: written } = await writevAsync(this.directFd as number, [block.subarray(0, length)], this.position));
    } catch (err) {
      // A filesystem may take the O_DIRECT open and refuse the write: then the
      // first one tells, before anything went to the file.
      if (this.position !== 0 || !DIRECT_REFUSED.has(errnoCode(err) ?? '')) throw err;
      const staged = Buffer.from(block.subarray(0, this.staged));
      this.chosen = 'buffered';
      this.releaseBlock();
      await this.writeBuffered([staged]);
      return;
    }
    this.onWritten('direct', written);
    if (written < length) {
      // Short (the device filled up, say): the rest through the page cache,
      // which fails with the real error instead of a misaligned EINVAL.
      await writeFully(this.descriptor(), [block.subarray(written, length)], this.position + written);
      this.onWritten('buffered', length - written);
    }
    this.position += length;
    if (length < this.staged) block.copy(block, 0, length, this.staged);
    this.staged -= length;
  }

  private async writeBuffered(buffers: Buffer[]): Promise<void> {
    const written = await writeFully(this.descriptor(), buffers, this.position);
    this.position += written;
    this.onWritten('buffered', written);
  }

  /** Close the direct descriptor and give the block back (no write is using them). */
  private releaseBlock(): void {
    const { block, directFd } = this;
    this.block = null;
    this.directFd = null;
    this.staged = 0;
    if (directFd !== null) closeSync(directFd);
    if (block !== null) this.blocks?.give(block);
  }

  private run(work: () => Promise<void>): Promise<void> {
    if (this.running !== null) return Promise.reject(new Error('TempFile: overlapping writes'));
    try {
      this.descriptor();
    } catch (err) {
      return Promise.reject(err);
    }
    const op = work().finally(() => {
      this.running = null;
    });
    this.running = op;
    return op;
  }

  private descriptor(): number {
    if (this.fd === null) throw new Error('file already closed');
    return this.fd;
  }
}

/** Write every byte of `buffers`, in order, at `position`; returns the byte count. */
async function writeFully(fd: number, buffers: readonly Buffer[], position: number): Promise<number> {
  let rest = buffers;
  let total = 0;
  while (rest.length > 0) {
    const { bytesWritten } = await writevAsync(fd, rest as Buffer[], position + total);
    if (bytesWritten <= 0) throw new Error('short write');
    total += bytesWritten;
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
  return total;
}
