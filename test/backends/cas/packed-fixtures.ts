/** What the compaction crash test and its child agree on. */

/** Small blobs the child stores. */
export const PACKED_UPLOADS = 160;

/** Segments of 64 KiB: the uploads fill several, so that compaction has sealed ones to work on. */
export const PACKED_SEGMENT_BYTES = 64 * 1024;

/** Size of upload #i: 1-3 KiB, packed. */
export function packedSize(i: number): number {
  return 1024 + ((i * 7919) % 2048);
}

/** Every third upload keeps a reference; the rest are collected, leaving segments mostly dead. */
export function isKept(i: number): boolean {
  return i % 3 === 0;
}
