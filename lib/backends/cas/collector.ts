import { rm, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CasContext } from './context.js';
import { errnoCode, forEachLimit, fsyncDir } from './fs-util.js';
import type { Image } from './images.js';
import { compactSegments } from './compactor.js';
import { quarantinePath, segmentsDir } from './layout.js';
import type { GcResult } from './types.js';

const BATCH = 256;

/**
 * Collect blobs with no references that nobody touched for `graceMs` (0:
 * every unreferenced blob, as under space pressure). Per blob, under its
 * guard: skip it while a put has it pinned (its reference is about to be
 * committed), forget the index row (the store refuses if a reference or a
 * touch arrived meanwhile), then unlink. Then the deletions are flushed
 * (ext4 only trims blocks whose release is committed) and the freed blocks
 * are handed back to the host with fstrim; a sealed image left empty is
 * removed altogether. A packed blob's bytes stay in their segment until
 * compaction (compactor.ts), which runs after the blobs are forgotten.
 */
export async function collectGarbage(ctx: CasContext, graceMs: number, signal?: AbortSignal): Promise<GcResult> {
  const olderThan = new Date(Date.now() - graceMs);
  const touched = new Map<Image, Set<string>>();
  const seen = new Set<string>();
  let collected = 0;
  let bytesFreed = 0;

  for (;;) {
    const batch = await ctx.index.listCollectableBlobs(ctx.instanceId, olderThan, BATCH);
    let fresh = 0;
    for (const blob of batch) {
      if (signal?.aborted) break;
      if (seen.has(blob.sha256)) continue;
      seen.add(blob.sha256);
      fresh++;
      await ctx.guard.run(blob.sha256, async () => {
        if (ctx.pins.has(blob.sha256)) return;
        if (!(await ctx.index.forgetBlob(ctx.instanceId, blob.sha256, olderThan))) return;
        collected++;
        ctx.metrics.casBlobsCollected.inc();
        ctx.locator.forget(blob.sha256);
        // A packed copy's bytes become dead: compaction below gives them back.
        ctx.packed.delete(blob.sha256);
        let copies;
        try {
          copies = await ctx.locator.findAll(blob.sha256);
        } catch (err) {
          ctx.logger.error({ err, sha256: blob.sha256 }, 'collector cannot look for a forgotten blob; its file may stay behind');
          return;
        }
        for (const copy of copies) {
          try {
            await unlink(copy.path);
            bytesFreed += copy.size;
            let dirs = touched.get(copy.image);
            if (dirs === undefined) touched.set(copy.image, (dirs = new Set()));
            dirs.add(dirname(copy.path));
          } catch (err) {
            if (errnoCode(err) !== 'ENOENT') ctx.logger.error({ err, path: copy.path }, 'collector cannot delete blob');
          }
        }
        if (blob.quarantined) {
          // Nobody refers to it any more: the quarantined copy has served its purpose.
          for (const image of ctx.images.list()) await rm(quarantinePath(image.volume, blob.sha256), { force: true }).catch(() => undefined);
        }
      });
    }
    if (signal?.aborted || batch.length < BATCH || fresh === 0) break;
  }

  const compaction = await compactSegments(ctx, graceMs, signal);
  bytesFreed += compaction.bytesFreed;
  for (const image of compaction.images) {
    let dirs = touched.get(image);
    if (dirs === undefined) touched.set(image, (dirs = new Set()));
    dirs.add(segmentsDir(image.volume));
  }

  let trimmedImages = 0;
  for (const [image, dirs] of touched) {
    try {
      await forEachLimit(dirs, 4, fsyncDir);
      // An emptied sealed image goes away whole: nothing left to trim.
      if (await ctx.images.retireIfEmpty(image)) continue;
      if (ctx.driver.mode === 'loop') {
        await ctx.driver.trim(image.id);
        trimmedImages++;
      }
    } catch (err) {
      ctx.logger.warn({ err, image: image.id }, 'cannot return freed CAS space to the host');
    }
  }
  if (collected > 0 || compaction.segmentsDeleted > 0) {
    // Uploads refused for want of room must see the freed space at once, not after the next reading.
    ctx.images.host.invalidate();
    ctx.logger.info({ collected, bytesFreed, trimmedImages, graceMs }, 'CAS collection done');
  }
  return { collected, bytesFreed, trimmedImages, recordsMoved: compaction.recordsMoved, segmentsDeleted: compaction.segmentsDeleted };
}
