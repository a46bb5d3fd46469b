import type { Logger } from '../../log/index.js';
import type { Metrics } from '../../metrics/index.js';
import type { BufferPool } from './buffer-pool.js';
import type { DirectBlocks } from './direct-blocks.js';
import type { DirSyncer } from './group-sync.js';
import type { ImageSet } from './images.js';
import type { KeyedMutex } from './keyed-mutex.js';
import type { BlobLocator } from './locator.js';
import type { BlobPins } from './pins.js';
import type { PackedBlobs } from './segments.js';
import type { BlobIndex } from './types.js';
import type { VolumeDriver } from './volumes.js';

/** Points of a compaction: live records copied and flushed; some rows switched to the copies; an emptied segment about to be deleted. */
export type CompactionStep = 'copied' | 'switched' | 'deleting';

/** What the CAS operations (put, open, collect, scrub) share. Built once by createCasBackend. */
export interface CasContext {
  instanceId: string;
  index: BlobIndex;
  images: ImageSet;
  driver: VolumeDriver;
  locator: BlobLocator;
  /** Small blobs packed into segment files: where each is, and the segments' writers. */
  packed: PackedBlobs;
  /** Told each step of a compaction (tests kill the process there). */
  compactionProbe?: ((step: CompactionStep) => void) | undefined;
  /** Per-sha256 guard: put's finalize, the collector and quarantine take it. */
  guard: KeyedMutex;
  /** Blobs put() handed out whose references are not committed yet; never collected. */
  pins: BlobPins;
  syncer: DirSyncer;
  logger: Logger;
  metrics: Metrics;
  /** Read buffers, of the read chunk size (BlobReadStream.sendTo reuses them). */
  readBuffers: BufferPool;
  /** Aligned blocks for O_DIRECT writes of large uploads; null: every write through the page cache. */
  directBlocks: DirectBlocks | null;
  /** Work started outside any call (quarantine after a failed read); close() waits for it. */
  background: Set<Promise<unknown>>;
}
