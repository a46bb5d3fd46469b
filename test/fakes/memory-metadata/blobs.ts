import { CallfsError } from '../../../lib/errors.js';
import { assertBlobPlacement, type BlobPlacement } from '../../../lib/metadata/blobs-links-sql.js';
import type { BlobListing, BlobRecord } from '../../../lib/metadata/types.js';
import { assertCount, assertDate } from '../../../lib/metadata/validate.js';
import { compareBytes, type Table } from './table.js';

/**
 * The rules of the CAS blob index (the `blobs` table of
 * lib/metadata/migrations and lib/metadata/blobs-links-sql.ts), over an
 * in-memory table keyed by (instance id, sha256). Shared by the in-memory
 * metadata store and MemoryBlobIndex.
 */

export type Clock = () => Date;

export const blobKey = (instanceId: string, sha256: string): string => `${instanceId}\u0000${sha256}`;

/** A copy the caller may change without changing the table. */
export function copyBlob(row: BlobRecord): BlobRecord {
  return { ...row, packed: row.packed === null ? null : { ...row.packed }, createdAt: new Date(row.createdAt), touchedAt: new Date(row.touchedAt), lastVerifiedAt: row.lastVerifiedAt === null ? null : new Date(row.lastVerifiedAt) };
}

function packedOf(blob: BlobPlacement): BlobRecord['packed'] {
  return blob.packed === undefined || blob.packed === null ? null : { segment: blob.packed.segment, offset: blob.packed.offset };
}

/** Insert, or note where the bytes are now and touch the row (restarting the collector's grace period). */
export function recordBlob(blobs: Table<BlobRecord>, blob: BlobPlacement, now: Date): BlobRecord {
  assertBlobPlacement(blob);
  const key = blobKey(blob.instanceId, blob.sha256);
  const existing = blobs.get(key);
  const row: BlobRecord =
    existing === undefined
      ? { sha256: blob.sha256, instanceId: blob.instanceId, imageId: blob.imageId, size: blob.size, refCount: 0, createdAt: now, touchedAt: now, lastVerifiedAt: null, quarantined: false, packed: packedOf(blob) }
      : { ...existing, imageId: blob.imageId, size: blob.size, touchedAt: now, packed: packedOf(blob) };
  blobs.set(key, row);
  return copyBlob(row);
}

export function getBlob(blobs: Table<BlobRecord>, instanceId: string, sha256: string): BlobRecord | null {
  const row = blobs.get(blobKey(instanceId, sha256));
  return row === undefined ? null : copyBlob(row);
}

/**
 * A file entry naming the blob appeared (+1) or `count` of them went (-count),
 * as the reference-count triggers do: a first reference creates the row
 * (its image still unknown), a last one lost touches it. A count going below
 * zero is refused, as the CHECK constraint refuses it.
 */
export function addReferences(blobs: Table<BlobRecord>, instanceId: string, sha256: string, delta: number, size: number, now: Date): void {
  const key = blobKey(instanceId, sha256);
  const row = blobs.get(key);
  if (row === undefined) {
    // The delete trigger only updates existing rows; the insert trigger creates them.
    if (delta > 0) blobs.set(key, { sha256, instanceId, imageId: '', size, refCount: delta, createdAt: now, touchedAt: now, lastVerifiedAt: null, quarantined: false, packed: null });
    return;
  }
  const refCount = row.refCount + delta;
  if (refCount < 0) throw new CallfsError('BAD_REQUEST', 'the entry is not valid', { cause: new Error(`reference count of ${sha256} would go below zero`) });
  blobs.set(key, { ...row, refCount, touchedAt: delta < 0 && refCount === 0 ? now : row.touchedAt });
}

/** Whether an entry names the content on any instance (a replica is kept while one does). */
export function isReferenced(blobs: Table<BlobRecord>, sha256: string): boolean {
  for (const r of blobs.values()) if (r.sha256 === sha256 && r.refCount > 0) return true;
  return false;
}

/** Unreferenced blobs of an instance untouched since `olderThan`, least recently touched first. */
export function listCollectableBlobs(blobs: Table<BlobRecord>, instanceId: string, olderThan: Date, limit: number): BlobRecord[] {
  assertDate(olderThan, 'olderThan');
  assertCount(limit, 'limit');
  return [...blobs.values()]
    .filter((r) => r.instanceId === instanceId && r.refCount === 0 && r.touchedAt.getTime() < olderThan.getTime() && !isReferenced(blobs, r.sha256))
    .sort((a, b) => a.touchedAt.getTime() - b.touchedAt.getTime())
    .slice(0, limit)
    .map(copyBlob);
}

export function forgetBlob(blobs: Table<BlobRecord>, instanceId: string, sha256: string, olderThan: Date): boolean {
  assertDate(olderThan, 'olderThan');
  const key = blobKey(instanceId, sha256);
  const row = blobs.get(key);
  if (row === undefined || row.refCount !== 0 || row.touchedAt.getTime() >= olderThan.getTime() || isReferenced(blobs, sha256)) return false;
  blobs.delete(key);
  return true;
}

/** Copies only, never verified first, then least recently verified; quarantined blobs are left out. */
export function listBlobsForScrub(blobs: Table<BlobRecord>, instanceId: string, limit: number): BlobRecord[] {
  assertCount(limit, 'limit');
  const verifiedAt = (r: BlobRecord): number => r.lastVerifiedAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  return [...blobs.values()]
    .filter((r) => r.instanceId === instanceId && !r.quarantined && r.imageId !== '')
    .sort((a, b) => verifiedAt(a) - verifiedAt(b) || compareBytes(a.sha256, b.sha256))
    .slice(0, limit)
    .map(copyBlob);
}

/** ok: verified now and no longer quarantined; bad: quarantined. An unknown blob is ignored. */
export function markBlobVerified(blobs: Table<BlobRecord>, instanceId: string, sha256: string, ok: boolean, now: Date): void {
  const key = blobKey(instanceId, sha256);
  const row = blobs.get(key);
  if (row === undefined) return;
  blobs.set(key, ok ? { ...row, lastVerifiedAt: now, quarantined: false } : { ...row, quarantined: true });
}

/** Every blob of an instance (or only its packed copies, and files below `filesBelow` bytes), by sha256. */
export function listBlobs(blobs: Table<BlobRecord>, instanceId: string, options: BlobListing = {}): BlobRecord[] {
  const wanted = (r: BlobRecord): boolean => options.packedOnly !== true || ((r.packed !== null || r.size < (options.filesBelow ?? 0)) && r.imageId !== '');
  return [...blobs.values()]
    .filter((r) => r.instanceId === instanceId && wanted(r))
    .sort((a, b) => compareBytes(a.sha256, b.sha256))
    .map(copyBlob);
}
