import type { CasContext } from './context.js';
import { forEachLimit } from './fs-util.js';
import type { Image } from './images.js';
import { quarantinePackedLocked } from './integrity.js';
import { deleteSegment, listSegments, RECORD_HEADER_BYTES, readPackedHashed, segmentKey } from './segments.js';
import { appendCounted, recordIn } from './writer.js';

/** Records copied at once (their appends share flushes). */
const MOVE_CONCURRENCY = 16;

export interface CompactionResult {
  /** Live records copied out of segments being compacted. */
  recordsMoved: number;
  segmentsDeleted: number;
  bytesFreed: number;
  /** Images whose files were deleted (to flush and trim). */
  images: Set<Image>;
}

/**
 * Compaction of packed blobs' segments, after the collector forgot what it
 * could. A segment other than an open one is compacted when at least half
 * of it (and at least `minDeadBytes`) is dead: each live record is read and
 * checked against its sha256 (copy → verify), appended to the active image's
 * open segment and flushed, and only then is its index row switched to the
 * copy (switch). A segment with no live record and nothing being appended
 * to it is deleted by a later collection than the one that found it empty
 * (the grace: a reader that looked it up just before still finds it), or at
 * once when `graceMs` is 0 (space pressure).
 *
 * A kill -9 at any point loses nothing: before the switch the old record is
 * still the indexed one (the copy is dead bytes, dropped by a later
 * compaction of its segment); after it the copy is already flushed; a
 * segment left with no indexed record is deleted by the next pass.
 */
export async function compactSegments(ctx: CasContext, graceMs: number, signal?: AbortSignal): Promise<CompactionResult> {
  const result: CompactionResult = { recordsMoved: 0, segmentsDeleted: 0, bytesFreed: 0, images: new Set() };
  const minDeadBytes = Math.min(ctx.packed.segmentBytes / 4, 1024 * 1024);
  for (const image of ctx.images.list()) {
    if (signal?.aborted) break;
    let segments;
    try {
      segments = await listSegments(image);
    } catch (err) {
      ctx.logger.warn({ err, image: image.id }, 'cannot list the segments of a CAS image');
      continue;
    }
    for (const segment of segments) {
      if (signal?.aborted) break;
      if (segment.id === ctx.packed.openSegment(image)) continue;
      const live = ctx.packed.live(image, segment.id);
      if (live.count > 0) {
        const dead = segment.bytes - live.bytes;
        if (dead * 2 < segment.bytes || dead < minDeadBytes) continue;
        result.recordsMoved += await moveLive(ctx, image, segment.id, signal);
        if (ctx.packed.live(image, segment.id).count > 0) continue;
      }
      if (ctx.packed.unsettledIn(image, segment.id) > 0) continue;
      const key = segmentKey(image.id, segment.id);
      if (graceMs > 0 && !ctx.packed.emptySince.has(key)) {
        ctx.packed.emptySince.set(key, Date.now());
        continue;
      }
      ctx.compactionProbe?.('deleting');
      try {
        if (await deleteSegment(image, segment.id)) {
          result.segmentsDeleted++;
          result.bytesFreed += segment.bytes;
          result.images.add(image);
        }
        ctx.packed.emptySince.delete(key);
      } catch (err) {
        ctx.logger.error({ err, image: image.id, segment: segment.id }, 'cannot delete an empty CAS segment');
      }
    }
  }
  if (result.recordsMoved > 0 || result.segmentsDeleted > 0) ctx.logger.info({ recordsMoved: result.recordsMoved, segmentsDeleted: result.segmentsDeleted, bytesFreed: result.bytesFreed }, 'CAS segments compacted');
  return result;
}

/** Copy every live record of a segment to the open segment of the active image; how many moved. */
async function moveLive(ctx: CasContext, image: Image, segment: number, signal?: AbortSignal): Promise<number> {
  let moved = 0;
  await forEachLimit(ctx.packed.blobsIn(image, segment), MOVE_CONCURRENCY, (sha256) =>
    moveOne(sha256).catch((err: unknown) => {
      // Left where it is (still indexed there); the next collection tries again.
      if (!signal?.aborted) ctx.logger.warn({ err, sha256, image: image.id, segment }, 'compaction cannot move a packed blob');
    }),
  );
  return moved;

  function moveOne(sha256: string): Promise<void> {
    return ctx.guard.run(sha256, async () => {
      if (signal?.aborted) return;
      const location = ctx.packed.get(sha256);
      if (location === undefined || location.image !== image || location.segment !== segment) return;
      // A row naming this place is still to be written by a put's commit: moved now, it would name dead bytes.
      if (ctx.packed.rowAwaited(sha256)) return;
      const got = await readPackedHashed(location, sha256);
      if (got.detail !== null) {
        await quarantinePackedLocked(ctx, sha256, location, `compaction: ${got.detail}`, got.data);
        return;
      }
      const target = await ctx.images.acquireForWrite(signal);
      let written = 0;
      try {
        const at = await appendCounted(ctx, target, sha256, got.data);
        written = RECORD_HEADER_BYTES + got.data.length;
        try {
          ctx.compactionProbe?.('copied');
          await recordIn(ctx, { sha256, imageId: target.id, size: got.data.length, packed: at });
          ctx.packed.set(sha256, { image: target, ...at, size: got.data.length });
          moved++;
          ctx.compactionProbe?.('switched');
        } finally {
          ctx.packed.settled(target, at);
        }
      } finally {
        await ctx.images.release(target, written);
      }
    });
  }
}
