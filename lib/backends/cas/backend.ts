import { mkdir, realpath, unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { CallfsError, isCallfsError, unavailable } from '../../errors.js';
import type { CasSpaceReading } from '../../metrics/index.js';
import type { BackendCallOptions, BackendState, BlobStat, OpenOptions, OpenResult, PutOptions, PutResult } from '../types.js';
import { BufferPool } from './buffer-pool.js';
import { DirectBlocks } from './direct-blocks.js';
import { collectGarbage } from './collector.js';
import type { CasContext } from './context.js';
import { DirSyncer } from './group-sync.js';
import { ImageSet, type Image } from './images.js';
import { KeyedMutex } from './keyed-mutex.js';
import { isSha256Hex } from './layout.js';
import { BlobLocator } from './locator.js';
import { resolveCasMode } from './mode.js';
import { BlobPins } from './pins.js';
import { openBlob } from './reader.js';
import { PressureReclaimer } from './reclaimer.js';
import { listSegments, PackedBlobs } from './segments.js';
import { acquireRootLock, type RootLock } from './root-lock.js';
import { scrubBlobs } from './scrubber.js';
import type { CasBackend, CasBackendOptions, CasImageInfo, CasMode, GcResult, ScrubOptions, ScrubResult } from './types.js';
import { capacityOf, countBlobs } from './volume-files.js';
import { createDirDriver, createLoopDriver } from './volumes.js';
import { putBlob, WRITE_BATCH_BYTES } from './writer.js';
import { capabilitiesOf } from '../registry.js';
import { CAS_DEFAULT_VALUES } from './defaults.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const DEFAULTS = {
  ...CAS_DEFAULT_VALUES,
  readChunkBytes: MiB,
  directWriteBytes: 64 * MiB,
};

/** At most this much memory stays in idle read buffers between requests. */
const IDLE_READ_BUFFER_BYTES = 16 * MiB;

/** Packing is for small blobs: they are read whole into memory. */
const MAX_PACK_BELOW = 1024 * 1024;

/** How long close() lets in-flight puts finish before unmounting. */
const CLOSE_DRAIN_MS = 10_000;

function positive(name: string, value: number, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) throw new CallfsError('BAD_REQUEST', `CAS option ${name} must be an integer ≥ ${min} (got ${value})`);
  return value;
}

/**
 * Open (or create) the CAS under `options.rootDir`: resolve the mode, claim
 * the root, mount or adopt every image (throwing, naming the image, when one
 * cannot be mounted), clear interrupted uploads, and start the collector and
 * scrubber.
 */
export async function createCasBackend(options: CasBackendOptions): Promise<CasBackend> {
  const logger = options.logger.child({ component: 'cas' });
  const resolution = await resolveCasMode(options.mode ?? 'auto');
  if (resolution.problem !== null) throw new CallfsError('SERVICE_UNAVAILABLE', `CAS loop mode is unavailable: ${resolution.problem}`, { component: 'cas' });
  const mode = resolution.mode;
  logger.info({ mode, reason: resolution.reason }, 'CAS mode');

  const imageSizeBytes = positive('imageSizeBytes', options.imageSizeBytes ?? DEFAULTS.imageSizeBytes, 16 * MiB);
  const bytesPerInode = positive('bytesPerInode', options.bytesPerInode ?? DEFAULTS.bytesPerInode, 1024);
  const inodes = Math.floor(imageSizeBytes / bytesPerInode);
  const minFreeBytes = positive('minFreeBytes', options.minFreeBytes ?? Math.min(GiB, Math.floor(imageSizeBytes / 8)), 0);
  const minFreeInodes = positive('minFreeInodes', options.minFreeInodes ?? Math.min(10_000, Math.floor(inodes / 8)), 0);
  if (mode === 'loop' && (minFreeBytes > imageSizeBytes / 2 || minFreeInodes > inodes / 2)) {
    // Otherwise every fresh image would be sealed at once and images would pile up.
    throw new CallfsError('BAD_REQUEST', `CAS watermarks (${minFreeBytes} bytes, ${minFreeInodes} inodes) must be at most half of an image (${imageSizeBytes} bytes, ${inodes} inodes)`);
  }

  await mkdir(options.rootDir, { recursive: true, mode: 0o750 });
  const root = await realpath(options.rootDir);
  const lock = await acquireRootLock(root);
  try {
    const driver = mode === 'loop' ? createLoopDriver({ root, imageSizeBytes, bytesPerInode, logger }) : createDirDriver({ root });
    const images = await ImageSet.open({ root, mode, driver, minFreeBytes, minFreeInodes, logger, metrics: options.metrics });
    const packBelowBytes = positive('packBelowBytes', options.packBelowBytes ?? DEFAULTS.packBelowBytes, 0);
    if (packBelowBytes > MAX_PACK_BELOW) throw new CallfsError('BAD_REQUEST', `CAS option packBelowBytes must be at most ${MAX_PACK_BELOW} (got ${packBelowBytes})`);
    const packed = new PackedBlobs(images, packBelowBytes, positive('segmentBytes', options.segmentBytes ?? DEFAULTS.segmentBytes, 64 * 1024));
    // Packed blobs are found through the index: load where each is (also with packing now off).
    await packed.load(options.index, options.instanceId, logger);
    const ctx: CasContext = {
      instanceId: options.instanceId,
      index: options.index,
      images,
      driver,
      locator: new BlobLocator(images),
      packed,
      compactionProbe: options.compactionProbe,
      guard: new KeyedMutex(),
      pins: new BlobPins(),
      syncer: new DirSyncer(options.groupCommit ?? true),
      logger,
      metrics: options.metrics,
      readBuffers: new BufferPool(positive('readChunkBytes', options.readChunkBytes ?? DEFAULTS.readChunkBytes, 4096), IDLE_READ_BUFFER_BYTES),
      directBlocks: directBlocksFor(positive('directWriteBytes', options.directWriteBytes ?? DEFAULTS.directWriteBytes, 0)),
      background: new Set(),
    };
    const backend = new LoopImageCasBackend(ctx, mode, lock, {
      gcGraceMs: positive('gcGraceMs', options.gcGraceMs ?? DEFAULTS.gcGraceMs, 0),
      gcIntervalMs: positive('gcIntervalMs', options.gcIntervalMs ?? DEFAULTS.gcIntervalMs, 0),
      scrubBytesPerSecond: positive('scrubBytesPerSecond', options.scrubBytesPerSecond ?? DEFAULTS.scrubBytesPerSecond, 0),
      scrubIntervalMs: positive('scrubIntervalMs', options.scrubIntervalMs ?? DEFAULTS.scrubIntervalMs, 0),
    });
    backend.startJobs();
    return backend;
  } catch (err) {
    await lock.release();
    throw err;
  }
}

function directBlocksFor(maxBytes: number): DirectBlocks | null {
  return maxBytes >= WRITE_BATCH_BYTES ? new DirectBlocks(WRITE_BATCH_BYTES, maxBytes) : null;
}

interface JobSettings {
  gcGraceMs: number;
  gcIntervalMs: number;
  scrubBytesPerSecond: number;
  scrubIntervalMs: number;
}

type Outcome = 'ok' | 'dedup' | 'not_found' | 'error';

class LoopImageCasBackend implements CasBackend {
  readonly type = 'cas' as const;
  readonly capabilities = capabilitiesOf('cas');
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly jobs = new AbortController();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly streams = new Set<Readable>();
  private gcRun: Promise<unknown> = Promise.resolve();
  private scrubRun: Promise<unknown> = Promise.resolve();
  private puts = 0;
  private readonly reclaimer: PressureReclaimer;
  private readonly readSpace = (): Promise<CasSpaceReading> => this.space();

  constructor(
    private readonly ctx: CasContext,
    readonly mode: CasMode,
    private readonly lock: RootLock,
    private readonly settings: JobSettings,
  ) {
    const { host } = ctx.images;
    this.reclaimer = new PressureReclaimer({
      collect: () => this.collect(0),
      stillShort: async () => {
        await host.refresh();
        return host.low;
      },
      logger: ctx.logger,
    });
    host.onChange((low) => {
      if (low) this.reclaimer.trigger();
    });
  }

  private observe(operation: string, started: number, outcome: Outcome): void {
    this.ctx.metrics.backendOperations.inc({ backend: 'cas', operation, outcome });
    this.ctx.metrics.backendDuration.observe({ backend: 'cas', operation }, (performance.now() - started) / 1000);
  }

  private ensureOpen(): void {
    if (this.closed) throw unavailable('cas', 'the CAS is closed');
  }

  async put(body: Readable, options: PutOptions = {}): Promise<PutResult> {
    const started = performance.now();
    if (this.closed) {
      body.destroy();
      throw unavailable('cas', 'the CAS is closed');
    }
    this.puts++;
    try {
      const result = await putBlob(this.ctx, body, options);
      this.observe('put', started, result.deduplicated ? 'dedup' : 'ok');
      return { id: result.id, size: result.size, sha256: result.sha256, release: result.release, ...(result.index === undefined ? {} : { index: result.index }) };
    } catch (err) {
      this.observe('put', started, 'error');
      if (isCallfsError(err, 'INSUFFICIENT_STORAGE')) this.reclaimer.trigger();
      throw err;
    } finally {
      this.puts--;
    }
  }

  async open(id: string, options: OpenOptions = {}): Promise<OpenResult> {
    const started = performance.now();
    this.ensureOpen();
    try {
      const result = await openBlob(this.ctx, id, options, (stream) => {
        this.streams.add(stream);
        stream.once('close', () => this.streams.delete(stream));
      });
      this.observe('open', started, 'ok');
      return result;
    } catch (err) {
      this.observe('open', started, isCallfsError(err, 'FILE_NOT_FOUND') ? 'not_found' : 'error');
      throw err;
    }
  }

  async stat(id: string, options: BackendCallOptions = {}): Promise<BlobStat | null> {
    const started = performance.now();
    this.ensureOpen();
    options.signal?.throwIfAborted();
    if (!isSha256Hex(id)) {
      this.observe('stat', started, 'not_found');
      return null;
    }
    const packed = this.ctx.packed.get(id);
    const location = packed ?? (await this.ctx.locator.find(id));
    this.observe('stat', started, location === null ? 'not_found' : 'ok');
    return location === null ? null : { id, size: location.size };
  }

  /** Blobs are shared through reference counts: the collector removes them once unreferenced. */
  async delete(_id: string, options: BackendCallOptions = {}): Promise<void> {
    this.ensureOpen();
    options.signal?.throwIfAborted();
  }

  /**
   * Unlink this CAS's copy of a blob now, under its guard; not while a put
   * has it pinned (it is about to be referenced here). A reader that has the
   * file open keeps reading it (POSIX). The space comes back to the host with
   * the collector's next trim.
   */
  async evict(id: string, options: BackendCallOptions = {}): Promise<boolean> {
    this.ensureOpen();
    options.signal?.throwIfAborted();
    if (!isSha256Hex(id)) return true;
    return this.ctx.guard.run(id, async () => {
      if (this.ctx.pins.has(id)) return false;
      // A packed copy: its bytes are dead from now on (compaction gives them back).
      this.ctx.packed.delete(id);
      this.ctx.locator.forget(id);
      for (const copy of await this.ctx.locator.findAll(id)) {
        await unlink(copy.path).catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        });
      }
      this.ctx.locator.forget(id);
      return true;
    });
  }

  /** 'full' while uploads are refused for want of space (and the reclaimer is then busy freeing some). */
  async check(): Promise<BackendState> {
    this.ensureOpen();
    const state = await this.ctx.images.spaceState();
    if (state === 'full') this.reclaimer.trigger();
    return state;
  }

  /** Free space of the host under the root and of every image, for the gauges read at scrape time. */
  async space(): Promise<CasSpaceReading> {
    const host = await capacityOf(this.ctx.images.host.root);
    const images: CasSpaceReading['images'] = [];
    for (const image of this.ctx.images.list()) {
      const c = await capacityOf(image.volume).catch(() => null);
      if (c !== null) images.push({ id: image.id, usedBytes: c.usedBytes, freeBytes: c.freeBytes, freeInodes: c.inodesFree });
    }
    return { host: { freeBytes: host.freeBytes, freeInodes: host.inodesFree }, images };
  }

  async images(): Promise<CasImageInfo[]> {
    this.ensureOpen();
    const infos: CasImageInfo[] = [];
    for (const image of this.ctx.images.list()) infos.push(await this.describe(image));
    return infos;
  }

  private async describe(image: Image): Promise<CasImageInfo> {
    const empty = { sizeBytes: 0, usedBytes: 0, freeBytes: 0, inodesTotal: 0, inodesFree: 0 };
    const capacity = await capacityOf(image.volume).catch(() => empty);
    const allocatedBytes = await this.ctx.driver.allocatedBytes(image.id).catch(() => null);
    const segments = await listSegments(image).catch(() => []);
    const packedBlobs = this.ctx.packed.countIn(image);
    return {
      id: image.id,
      state: image.state,
      ...capacity,
      blobCount: (await countBlobs(image.volume).catch(() => 0)) + packedBlobs,
      packedBlobs,
      segments: segments.length,
      segmentBytes: segments.reduce((sum, s) => sum + s.bytes, 0),
      segmentLiveBytes: segments.reduce((sum, s) => sum + this.ctx.packed.live(image, s.id).bytes, 0),
      allocatedBytes,
      path: this.ctx.driver.imagePath(image.id),
      mountPoint: image.volume,
    };
  }

  scrub(options: ScrubOptions = {}): Promise<ScrubResult> {
    this.ensureOpen();
    const run = this.scrubRun.catch(() => undefined).then(() => scrubBlobs(this.ctx, { ...options, signal: anySignal(options.signal, this.jobs.signal) }));
    this.scrubRun = run;
    return run;
  }

  gc(): Promise<GcResult> {
    this.ensureOpen();
    return this.collect(this.settings.gcGraceMs);
  }

  /** One collection at a time, whoever asks (the timer, an admin, the pressure reclaimer). */
  private collect(graceMs: number): Promise<GcResult> {
    const run = this.gcRun.catch(() => undefined).then(() => collectGarbage(this.ctx, graceMs, this.jobs.signal));
    this.gcRun = run;
    return run;
  }

  /** Background collector and scrubber (each disabled by a 0 interval), and the free-space gauges. */
  startJobs(): void {
    this.ctx.metrics.casSpace.read = this.readSpace;
    const { gcIntervalMs, scrubIntervalMs, scrubBytesPerSecond } = this.settings;
    if (gcIntervalMs > 0) this.every(gcIntervalMs, 'collector', () => this.gc());
    if (scrubIntervalMs > 0) this.every(scrubIntervalMs, 'scrubber', () => this.scrub({ bytesPerSecond: scrubBytesPerSecond }));
  }

  private every(intervalMs: number, name: string, job: () => Promise<unknown>): void {
    const schedule = (): void => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (this.closed) return;
        job()
          .catch((err: unknown) => this.ctx.logger.error({ err }, `CAS ${name} failed`))
          .finally(() => {
            if (!this.closed) schedule();
          });
      }, intervalMs);
      timer.unref();
      this.timers.add(timer);
    };
    schedule();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.jobs.abort(unavailable('cas', 'the CAS is closing'));
    if (this.ctx.metrics.casSpace.read === this.readSpace) this.ctx.metrics.casSpace.read = null;
    await this.reclaimer.stop();
    await Promise.allSettled([this.gcRun, this.scrubRun]);
    for (const stream of this.streams) stream.destroy(unavailable('cas', 'the CAS is closing'));
    const deadline = Date.now() + CLOSE_DRAIN_MS;
    while (this.puts > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await Promise.allSettled([...this.ctx.background]);
    this.ctx.packed.close();
    try {
      await this.ctx.images.close();
    } finally {
      await this.lock.release();
    }
  }
}

function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a === undefined ? b : AbortSignal.any([a, b]);
}
