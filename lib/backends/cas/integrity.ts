import { rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CallfsError } from '../../errors.js';
import type { CasContext } from './context.js';
import { errnoCode, fsyncDir } from './fs-util.js';
import { quarantineDir, quarantinePath } from './layout.js';
import type { BlobLocation } from './locator.js';
import type { PackedLocation } from './segments.js';

/** The error a reader of bad bytes gets. */
export function integrityError(sha256: string, detail: string): CallfsError {
  return new CallfsError('INTEGRITY_ERROR', `stored bytes of blob ${sha256} do not match their sha256 (${detail})`);
}

/**
 * Bytes at `location` no longer match their name: count it, log it, move the
 * file to the image's quarantine/ (kept for inspection, out of every read and
 * dedup path) and flag the index row. The caller must hold the sha's guard.
 */
export async function quarantineLocked(ctx: CasContext, sha256: string, location: Pick<BlobLocation, 'image' | 'path' | 'dev' | 'ino'>, detail: string): Promise<void> {
  ctx.metrics.casIntegrityErrors.inc();
  ctx.logger.error({ sha256, image: location.image.id, path: location.path, detail }, 'CAS integrity error: blob quarantined');
  try {
    const current = await stat(location.path);
    // Only the inode that was found bad; a re-upload may have replaced it since.
    if (current.dev === location.dev && current.ino === location.ino) {
      await rename(location.path, quarantinePath(location.image.volume, sha256));
      ctx.locator.forget(sha256);
      await fsyncDir(quarantineDir(location.image.volume));
      await fsyncDir(dirname(location.path));
    }
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') ctx.logger.error({ err, sha256 }, 'cannot quarantine CAS blob');
  }
  try {
    await ctx.index.markBlobVerified(ctx.instanceId, sha256, false);
  } catch (err) {
    ctx.logger.error({ err, sha256 }, 'cannot flag quarantined blob in the index');
  }
}

/** quarantineLocked under the sha's guard. */
export function quarantine(ctx: CasContext, sha256: string, location: Pick<BlobLocation, 'image' | 'path' | 'dev' | 'ino'>, detail: string): Promise<void> {
  return ctx.guard.run(sha256, () => quarantineLocked(ctx, sha256, location, detail));
}

/**
 * A packed blob's record is bad: as quarantineLocked, but the bytes stay in
 * their segment (dead from now on, dropped by compaction) and what was read
 * of them is written to quarantine/ for inspection. Only if the blob is
 * still at `location` (a re-upload may have packed it again meanwhile).
 */
export function quarantinePacked(ctx: CasContext, sha256: string, location: PackedLocation, detail: string, data: Buffer | null): Promise<void> {
  return ctx.guard.run(sha256, () => quarantinePackedLocked(ctx, sha256, location, detail, data));
}

/** quarantinePacked for a caller that holds the sha's guard. */
export async function quarantinePackedLocked(ctx: CasContext, sha256: string, location: PackedLocation, detail: string, data: Buffer | null): Promise<void> {
  if (ctx.packed.get(sha256) !== location) return;
  ctx.metrics.casIntegrityErrors.inc();
  ctx.logger.error({ sha256, image: location.image.id, segment: location.segment, offset: location.offset, detail }, 'CAS integrity error: packed blob quarantined');
  ctx.packed.delete(sha256);
  try {
    await writeFile(quarantinePath(location.image.volume, sha256), data ?? Buffer.alloc(0), { mode: 0o440 });
    await fsyncDir(quarantineDir(location.image.volume));
  } catch (err) {
    ctx.logger.error({ err, sha256 }, 'cannot keep the quarantined packed blob');
  }
  try {
    await ctx.index.markBlobVerified(ctx.instanceId, sha256, false);
  } catch (err) {
    ctx.logger.error({ err, sha256 }, 'cannot flag quarantined blob in the index');
  }
}
