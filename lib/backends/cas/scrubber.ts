import { open } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { BlobRecord } from '../../metadata/types.js';
import type { CasContext } from './context.js';
import { errnoCode } from './fs-util.js';
import { quarantine, quarantinePackedLocked } from './integrity.js';
import { readPackedHashed } from './segments.js';
import type { ScrubOptions, ScrubResult } from './types.js';

const BATCH = 100;
const READ_BYTES = 1 << 20;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Keeps a reader at or below `bytesPerSecond` on average (0 = unlimited). */
class RateLimiter {
  private readonly startedAt = Date.now();
  private bytes = 0;
  constructor(private readonly bytesPerSecond: number) {}

  async consume(n: number, signal?: AbortSignal): Promise<void> {
    if (this.bytesPerSecond <= 0) return;
    this.bytes += n;
    const dueAt = this.startedAt + (this.bytes / this.bytesPerSecond) * 1000;
    const wait = dueAt - Date.now();
    if (wait > 0) await sleep(wait, signal);
  }
}

/**
 * One scrub pass: re-read blobs, least recently verified first, hashing them
 * at a bounded rate. Good → last_verified_at; bad → quarantined (as a bad
 * full read would); a referenced blob whose file is gone is reported and
 * flagged. Each blob is looked at once per pass.
 */
export async function scrubBlobs(ctx: CasContext, options: ScrubOptions = {}): Promise<ScrubResult> {
  const { signal } = options;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const limiter = new RateLimiter(options.bytesPerSecond ?? 0);
  const result: ScrubResult = { checked: 0, ok: 0, corrupted: 0, missing: 0, bytes: 0 };
  const seen = new Set<string>();
  // Rows the pass cannot mark (no file, no reference: the collector's business) stay at the head of the order.
  let unmarked = 0;

  while (result.checked < limit && !signal?.aborted) {
    const want = Math.min(BATCH, limit - result.checked) + unmarked;
    const batch = await ctx.index.listBlobsForScrub(ctx.instanceId, want);
    let fresh = 0;
    for (const blob of batch) {
      if (seen.has(blob.sha256) || blob.quarantined) continue;
      seen.add(blob.sha256);
      fresh++;
      if (signal?.aborted || result.checked >= limit) break;
      const marked = await scrubOne(ctx, blob, result, limiter, signal);
      if (!marked) unmarked++;
    }
    if (fresh === 0 || batch.length < want) break;
  }
  return result;
}

async function scrubOne(ctx: CasContext, blob: BlobRecord, result: ScrubResult, limiter: RateLimiter, signal?: AbortSignal): Promise<boolean> {
  if (ctx.packed.get(blob.sha256) !== undefined) return scrubPacked(ctx, blob, result, limiter, signal);
  const location = await ctx.locator.find(blob.sha256);
  if (location === null) {
    // A copy whose file is gone: flagged, so that it no longer counts as a copy (the repairer makes another where replicas are kept).
    result.checked++;
    result.missing++;
    ctx.metrics.casIntegrityErrors.inc();
    if (blob.refCount > 0) ctx.logger.error({ sha256: blob.sha256, refCount: blob.refCount }, 'CAS blob referenced but missing from every image');
    else ctx.logger.warn({ sha256: blob.sha256 }, 'a CAS copy is missing from every image');
    await ctx.index.markBlobVerified(ctx.instanceId, blob.sha256, false);
    return true;
  }
  let fh;
  try {
    fh = await open(location.path, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false; // collected meanwhile
    throw err;
  }
  const hash = createHash('sha256');
  let size = 0;
  try {
    const s = await fh.stat();
    const identity = { image: location.image, path: location.path, dev: s.dev, ino: s.ino };
    const buf = Buffer.allocUnsafe(READ_BYTES);
    for (;;) {
      if (signal?.aborted) return false;
      const { bytesRead } = await fh.read(buf, 0, buf.length, size);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      size += bytesRead;
      result.bytes += bytesRead;
      ctx.metrics.casBytesScrubbed.inc(bytesRead);
      await limiter.consume(bytesRead, signal);
    }
    result.checked++;
    const actual = hash.digest('hex');
    if (actual === blob.sha256) {
      result.ok++;
      await ctx.index.markBlobVerified(ctx.instanceId, blob.sha256, true);
    } else {
      result.corrupted++;
      await quarantine(ctx, blob.sha256, identity, `scrub read ${actual}`);
    }
    return true;
  } finally {
    await fh.close();
  }
}

/** A packed blob: its record read and its bytes hashed (SHA-256, not only the CRC32C reads check). */
async function scrubPacked(ctx: CasContext, blob: BlobRecord, result: ScrubResult, limiter: RateLimiter, signal?: AbortSignal): Promise<boolean> {
  const bytes = await ctx.guard.run(blob.sha256, async () => {
    const location = ctx.packed.get(blob.sha256);
    if (location === undefined || signal?.aborted) return null; // collected or evicted meanwhile
    const got = await readPackedHashed(location, blob.sha256);
    const read = got.data?.length ?? 0;
    result.checked++;
    result.bytes += read;
    ctx.metrics.casBytesScrubbed.inc(read);
    if (got.detail === null) {
      result.ok++;
      await ctx.index.markBlobVerified(ctx.instanceId, blob.sha256, true);
    } else {
      result.corrupted++;
      await quarantinePackedLocked(ctx, blob.sha256, location, `scrub: ${got.detail}`, got.data);
    }
    return read;
  });
  if (bytes === null) return false;
  await limiter.consume(bytes, signal);
  return true;
}
