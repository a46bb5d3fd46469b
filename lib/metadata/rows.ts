import type { BackendType, BlobRecord, Entry, EntryType, SingleUseLink } from './types.js';
import type { Row } from './driver.js';

/**
 * Column lists and row → object mapping. pg returns bigint columns as strings
 * and PGlite as numbers, so every numeric column goes through Number() and
 * ids through String(); timestamps arrive as Dates from both.
 */

/** The inode columns every entry query selects. */
export const ENTRY_COLUMNS =
  'id, path, parent_id, name, depth, type, size, mode, uid, gid, atime, mtime, ctime, backend, instance_id, blob_id, etag, version, created_at, updated_at';

export const BLOB_COLUMNS = 'instance_id, sha256, image_id, size, ref_count, created_at, touched_at, last_verified_at, quarantined, segment, seg_offset';

export const LINK_COLUMNS = 'id, path, created_by, created_at, expires_at, used_at';

function date(value: unknown): Date {
  return value instanceof Date ? value : new Date(String(value));
}

function dateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : date(value);
}

function textOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

/** An inode row as an Entry, plus its absolute depth (segment count). */
export function toEntry(row: Row): Entry & { depth: number } {
  return {
    id: String(row.id),
    path: String(row.path),
    parentId: textOrNull(row.parent_id),
    name: String(row.name),
    type: row.type as EntryType,
    size: Number(row.size),
    mode: Number(row.mode),
    uid: Number(row.uid),
    gid: Number(row.gid),
    atime: date(row.atime),
    mtime: date(row.mtime),
    ctime: date(row.ctime),
    backend: textOrNull(row.backend) as BackendType | null,
    instanceId: textOrNull(row.instance_id),
    blobId: textOrNull(row.blob_id),
    etag: textOrNull(row.etag),
    version: Number(row.version),
    createdAt: date(row.created_at),
    updatedAt: date(row.updated_at),
    depth: Number(row.depth),
  };
}

/** Drop the internal depth field (entries handed to callers are plain Entries). */
export function plainEntry(entry: Entry & { depth?: number }): Entry {
  const { depth: _depth, ...rest } = entry;
  return rest;
}

export function toBlob(row: Row): BlobRecord {
  return {
    sha256: String(row.sha256),
    instanceId: String(row.instance_id),
    imageId: String(row.image_id),
    size: Number(row.size),
    refCount: Number(row.ref_count),
    createdAt: date(row.created_at),
    lastVerifiedAt: dateOrNull(row.last_verified_at),
    touchedAt: date(row.touched_at),
    quarantined: row.quarantined === true,
    packed: row.segment === null || row.segment === undefined ? null : { segment: Number(row.segment), offset: Number(row.seg_offset) },
  };
}

export function toLink(row: Row): SingleUseLink {
  return {
    id: String(row.id),
    path: String(row.path),
    createdBy: Number(row.created_by),
    createdAt: date(row.created_at),
    expiresAt: date(row.expires_at),
    usedAt: dateOrNull(row.used_at),
  };
}
