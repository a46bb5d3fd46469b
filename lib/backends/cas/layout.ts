import { join } from 'node:path';

/**
 * Where things live. Under the CAS root:
 *
 *   manifest.json            image ids and states (replaced atomically)
 *   .lock                    the owning process (one server per root)
 *   images/<id>.img          sparse ext4 image files (loop mode)
 *   volumes/<id>/            an image's files: its mount point (loop) or a plain directory (dir)
 *
 * Inside every image:
 *
 *   .callfs-image.json       marker naming the image (checked after mounting)
 *   blobs/ab/cd/<sha256>     blobs, read-only once renamed into place
 *   tmp/                     uploads in progress (same filesystem, so the rename is atomic)
 *   quarantine/<sha256>      blobs whose bytes no longer match their name
 *   segments/<id>.seg        small blobs packed as records, appended only (see segments.ts)
 */

export const MARKER_FILE = '.callfs-image.json';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** True for a lowercase sha256 hex string, the only ids the CAS accepts. */
export function isSha256Hex(id: string): boolean {
  return SHA256_HEX.test(id);
}

export function manifestPath(root: string): string {
  return join(root, 'manifest.json');
}

export function lockPath(root: string): string {
  return join(root, '.lock');
}

export function imagesDir(root: string): string {
  return join(root, 'images');
}

export function imageFile(root: string, id: string): string {
  return join(root, 'images', `${id}.img`);
}

export function volumesDir(root: string): string {
  return join(root, 'volumes');
}

export function volumeDir(root: string, id: string): string {
  return join(root, 'volumes', id);
}

export function blobsDir(volume: string): string {
  return join(volume, 'blobs');
}

export function tmpDir(volume: string): string {
  return join(volume, 'tmp');
}

export function quarantineDir(volume: string): string {
  return join(volume, 'quarantine');
}

export function segmentsDir(volume: string): string {
  return join(volume, 'segments');
}

export function segmentPath(volume: string, id: number): string {
  return join(segmentsDir(volume), `${id}.seg`);
}

/** The id of a segment file name, or null for any other name. */
export function segmentIdOf(name: string): number | null {
  const match = /^(\d{1,15})\.seg$/.exec(name);
  return match?.[1] === undefined ? null : Number(match[1]);
}

/** blobs/ab/cd: the fan-out directory of a blob. */
export function blobDir(volume: string, sha256: string): string {
  return join(volume, 'blobs', sha256.slice(0, 2), sha256.slice(2, 4));
}

export function blobPath(volume: string, sha256: string): string {
  return join(blobDir(volume, sha256), sha256);
}

export function quarantinePath(volume: string, sha256: string): string {
  return join(volume, 'quarantine', sha256);
}

/** Image ids are `img-000001`, … : sortable, and safe as file and label names. */
export function imageIdFor(sequence: number): string {
  return `img-${String(sequence).padStart(6, '0')}`;
}

export function imageSequence(id: string): number | null {
  const match = /^img-(\d{6,})$/.exec(id);
  return match?.[1] === undefined ? null : Number(match[1]);
}
