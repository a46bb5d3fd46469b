import type { Logger } from '../../log/index.js';
import type { MetadataStore } from '../../metadata/types.js';
import type { CasSpaceReading, Metrics } from '../../metrics/index.js';
import type { Backend, BackendCallOptions } from '../types.js';
import type { CompactionStep } from './context.js';

/**
 * The part of the metadata store the CAS uses: its blob index. The store keeps
 * reference counts itself (from inode rows); the CAS only records blobs (ref
 * count 0, touched now), collects unreferenced ones and records verification.
 */
export type BlobIndex = Pick<
  MetadataStore,
  'recordBlob' | 'getBlob' | 'listCollectableBlobs' | 'forgetBlob' | 'listBlobsForScrub' | 'markBlobVerified' | 'listBlobs'
>;

/** How images are stored: ext4 loop images (root) or plain directories. */
export type CasMode = 'loop' | 'dir';

/** A configured mode: `auto` picks loop when this process can make loop mounts. */
export type CasModeSetting = CasMode | 'auto';

export interface CasBackendOptions {
  /** The CAS root; images, mount points and the manifest live under it. */
  rootDir: string;
  /** Default 'auto'. */
  mode?: CasModeSetting;
  /** This instance's id; blobs are indexed under it. */
  instanceId: string;
  index: BlobIndex;
  logger: Logger;
  metrics: Metrics;
  /** Size of each sparse image file (loop mode). Default 64 GiB. */
  imageSizeBytes?: number;
  /** Seal the active image when its free space falls below this. Default min(1 GiB, image/8). */
  minFreeBytes?: number;
  /** Seal the active image when its free inodes fall below this. Default min(10000, inodes/8). */
  minFreeInodes?: number;
  /** mkfs.ext4 -i. Default 16 KiB. */
  bytesPerInode?: number;
  /** Unreferenced blobs untouched for this long are collected. Default 1 h. */
  gcGraceMs?: number;
  /** Pause between background collections; 0 disables. Default 10 min. */
  gcIntervalMs?: number;
  /** Rate of the background scrubber. Default 32 MiB/s. */
  scrubBytesPerSecond?: number;
  /** Pause between background scrub passes; 0 disables. Default 24 h. */
  scrubIntervalMs?: number;
  /**
   * Share directory fsyncs between concurrent puts (one flush batch at a time,
   * later puts join the next batch). Default true; false fsyncs per put.
   */
  groupCommit?: boolean;
  /** Read size and stream high-water mark for opens. Default 1 MiB. */
  readChunkBytes?: number;
  /**
   * Blobs of fewer bytes are packed into segment files (group-committed
   * appends) instead of being files of their own; 0 packs nothing. Default 64 KiB.
   */
  packBelowBytes?: number;
  /** A segment file takes no more appends once this big. Default 64 MiB. */
  segmentBytes?: number;
  /** Told each step of a compaction; for crash tests only. */
  compactionProbe?: (step: CompactionStep) => void;
  /**
   * Memory for the aligned blocks (1 MiB each, one per upload) through which
   * uploads of 1 MiB or more are written with O_DIRECT; uploads that find no
   * free block go through the page cache. Less than 1 MiB (0) disables direct
   * writes. Default 64 MiB.
   */
  directWriteBytes?: number;
}

/**
 * Image lifecycle: `standby` (created ahead of time, takes nothing yet) →
 * `active` (takes new blobs) → `sealed` (full: read and collect only).
 * `failed`: an I/O error made it unsafe to write; reads are still tried.
 */
export type CasImageState = 'standby' | 'active' | 'sealed' | 'failed';

export interface CasImageInfo {
  id: string;
  state: CasImageState;
  /** Filesystem size. */
  sizeBytes: number;
  usedBytes: number;
  /** Space still available to blobs. */
  freeBytes: number;
  inodesTotal: number;
  inodesFree: number;
  /** Blobs in it: files of their own plus packed ones. */
  blobCount: number;
  /** Of those, blobs packed into its segment files. */
  packedBlobs: number;
  /** Its segment files, their bytes on disk, and the bytes of their live records (the rest is dead until compaction). */
  segments: number;
  segmentBytes: number;
  segmentLiveBytes: number;
  /** Bytes the image file really occupies on the host (sparse); the directory's usage in dir mode is not measured (null). */
  allocatedBytes: number | null;
  /** The image file (loop) or directory (dir). */
  path: string;
  /** Where the image's blobs are visible. */
  mountPoint: string;
}

export interface ScrubOptions {
  /** Verify at most this many blobs (default: every blob once). */
  limit?: number;
  /** Rate limit; 0 or absent = as fast as possible. */
  bytesPerSecond?: number;
  signal?: AbortSignal;
}

export interface ScrubResult {
  /** Blobs looked at. */
  checked: number;
  ok: number;
  /** Bytes no longer matching their sha256 (now quarantined). */
  corrupted: number;
  /** Referenced blobs whose file is gone. */
  missing: number;
  /** Bytes read. */
  bytes: number;
}

export interface GcResult {
  /** Blobs removed from the index and the disk. */
  collected: number;
  /** Their total size. */
  bytesFreed: number;
  /** Images whose free blocks were handed back to the host (fstrim). */
  trimmedImages: number;
  /** Live packed blobs copied out of mostly dead segments. */
  recordsMoved: number;
  /** Segment files deleted, holding no live packed blob. */
  segmentsDeleted: number;
}

/** The loop-image CAS: a Backend (ids are sha256 hex) plus admin members. */
export interface CasBackend extends Backend {
  readonly type: 'cas';
  /** The resolved mode. */
  readonly mode: CasMode;
  /** Every image with its state and usage. */
  images(): Promise<CasImageInfo[]>;
  /** Verify blobs now (see ScrubOptions). */
  scrub(options?: ScrubOptions): Promise<ScrubResult>;
  /** Collect unreferenced blobs past the grace period now. */
  gc(): Promise<GcResult>;
  evict(id: string, options?: BackendCallOptions): Promise<boolean>;
  /** Free space of the host under the root, and used and free space of every image (statfs only). */
  space(): Promise<CasSpaceReading>;
}
