/**
 * Read buffers of one size, handed out and given back, so that serving a
 * file does not allocate a fresh external buffer per chunk. Each such buffer
 * is garbage V8 only frees after a scavenge or, once promoted, a full
 * mark-compact of the whole heap; on a long-lived server that cost grows
 * with the heap (measured with --trace-gc: 133 mark-compacts while
 * streaming 2 × 256 MiB after a small-file load; with reused buffers, 7 in
 * the whole run of both).
 *
 * A buffer may only be given back once nothing refers to it any more (for a
 * write: its callback, without error). One that never comes back is simply
 * collected; the pool keeps at most `maxIdleBytes` of idle buffers.
 */
export class BufferPool {
  private readonly idle: Buffer[] = [];
  private readonly maxIdle: number;

  constructor(
    readonly size: number,
    maxIdleBytes: number,
  ) {
    this.maxIdle = Math.max(1, Math.floor(maxIdleBytes / size));
  }

  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(buf: Buffer): void {
    if (buf.length === this.size && this.idle.length < this.maxIdle && !this.idle.includes(buf)) this.idle.push(buf);
  }
}
