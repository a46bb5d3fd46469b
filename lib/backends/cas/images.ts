import { mkdir } from 'node:fs/promises';
import { CallfsError, unavailable } from '../../errors.js';
import type { Logger } from '../../log/index.js';
import type { Metrics } from '../../metrics/index.js';
import { isNoSpace } from './fs-util.js';
import { HostSpace, noRoom } from './host-space.js';
import { imageIdFor, imageSequence, imagesDir, volumeDir, volumesDir } from './layout.js';
import { loadManifest, saveManifest, type Manifest, type ManifestEntry } from './manifest.js';
import type { CasImageState, CasMode } from './types.js';
import { capacityOf, clearTmp, initLayout, isEmptyImage, verifyMarker, type Capacity } from './volume-files.js';
import type { VolumeDriver } from './volumes.js';

/** One image as the running server sees it. */
export interface Image {
  readonly id: string;
  state: CasImageState;
  /** Where its files are: the mount point (loop) or the directory (dir). */
  readonly volume: string;
  /** Puts currently writing into it. */
  inflight: number;
  /**
   * True while it is known to hold no blob: created empty by this process and
   * never active since. Lookups of a blob need not look in it.
   */
  empty?: boolean;
}

export interface ImageSetOptions {
  root: string;
  mode: CasMode;
  driver: VolumeDriver;
  minFreeBytes: number;
  minFreeInodes: number;
  logger: Logger;
  metrics: Metrics;
}

/** How long a put waits for an image to take it before SERVICE_UNAVAILABLE. */
const WRITE_WAIT_MS = 30_000;
/** Retry creating the next image after a failure. */
const CREATE_RETRY_MS = 30_000;
/** Re-read the active image's free space at least this often while writing. */
const CHECK_INTERVAL_MS = 1_000;

/**
 * The set of images and their lifecycle: one `active` image takes new blobs;
 * in loop mode a `standby` image is created in the background ahead of time,
 * so that when the active one falls below a watermark (or hits ENOSPC) it is
 * sealed and the standby takes over at once. A put waits only when no image
 * at all can take it.
 */
export class ImageSet {
  private readonly images = new Map<string, Image>();
  private readonly entries = new Map<string, ManifestEntry>();
  private active: Image | null = null;
  private creating: Promise<void> | null = null;
  private createError: unknown = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private waiters = new Set<() => void>();
  private saving: Promise<void> = Promise.resolve();
  private bytesSinceCheck = 0;
  private lastCheck = 0;
  private checking: Promise<void> | null = null;
  private closed = false;
  /** A standby is wanted but not created while the host is below its watermark. */
  private creationDeferred = false;
  /** Free bytes of a freshly created image: an upload at least this large fits in none. */
  private emptyImageFreeBytes: number | null = null;
  /** The host filesystem under the root, which every image needs room on. */
  readonly host: HostSpace;
  /** Retired images whose removal failed; detached at close. */
  private readonly leftovers = new Set<string>();

  private constructor(private readonly options: ImageSetOptions) {
    this.host = new HostSpace(options.root, options.minFreeBytes, options.logger);
    this.host.onChange((low) => {
      if (!low) this.resumeCreation();
    });
  }

  /** Load the manifest, recover leftovers, mount (or adopt) every image, pick the active one. */
  static async open(options: ImageSetOptions): Promise<ImageSet> {
    const set = new ImageSet(options);
    await set.start();
    return set;
  }

  private get log(): Logger {
    return this.options.logger;
  }

  private async start(): Promise<void> {
    const { root, mode, driver } = this.options;
    await mkdir(volumesDir(root), { recursive: true, mode: 0o750 });
    if (mode === 'loop') await mkdir(imagesDir(root), { recursive: true, mode: 0o750 });
    const { manifest, rebuilt } = await loadManifest(root, mode);
    if (manifest.mode !== mode) {
      throw new Error(`CAS root ${root} holds ${manifest.mode}-mode images; it cannot be opened in ${mode} mode`);
    }
    if (rebuilt) this.log.warn({ root, images: manifest.images.length }, 'CAS manifest missing: rebuilt from disk with every image sealed');
    await this.host.refresh();

    const attached: string[] = [];
    try {
      for (const entry of manifest.images) {
        if (entry.state === 'creating' || entry.state === 'retired') {
          // Crashed while being made or removed: it holds no blob.
          this.log.warn({ image: entry.id, state: entry.state }, 'removing leftover CAS image');
          await driver.destroy(entry.id);
          continue;
        }
        await driver.attach(entry.id);
        attached.push(entry.id);
        const volume = volumeDir(root, entry.id);
        await verifyMarker(volume, entry.id);
        await clearTmp(volume, this.log);
        this.entries.set(entry.id, { ...entry });
        this.images.set(entry.id, { id: entry.id, state: entry.state, volume, inflight: 0 });
      }
      await this.save();

      const actives = this.list().filter((i) => i.state === 'active');
      for (const extra of actives.slice(0, -1)) this.setState(extra, 'sealed');
      const current = actives.at(-1);
      if (current !== undefined) {
        this.active = current;
        if (mode === 'loop' && this.belowWatermark(await capacityOf(current.volume))) this.setState(current, 'sealed');
      }
      if (this.active === null) this.promoteStandby();
      if (this.active === null) {
        // At start there is no request to keep waiting: create the first image now.
        await this.createImage();
        this.promoteStandby();
      }
      await this.save();
    } catch (err) {
      for (const id of attached.reverse()) await driver.detach(id).catch(() => undefined);
      throw err;
    }
    this.updateGauge();
    if (mode === 'loop') this.ensureStandby();
  }

  /** Images in creation order. */
  list(): Image[] {
    return [...this.images.values()].sort((a, b) => (imageSequence(a.id) ?? 0) - (imageSequence(b.id) ?? 0));
  }

  get(id: string): Image | undefined {
    return this.images.get(id);
  }

  get activeImage(): Image | null {
    return this.active;
  }

  /**
   * The image a new put writes into (its `inflight` is incremented; call
   * `release`). Waits only when no image can take writes, up to 30 s.
   */
  async acquireForWrite(signal?: AbortSignal): Promise<Image> {
    if (this.closed) throw unavailable('cas', 'the CAS is closing');
    await this.host.admit();
    const deadline = Date.now() + WRITE_WAIT_MS;
    while (this.active === null) {
      if (this.closed) throw unavailable('cas', 'the CAS is closing');
      signal?.throwIfAborted();
      if (this.creating === null) {
        if (this.host.low || isNoSpace(this.createError)) throw noRoom('no CAS image has room and the host has none for a new one', this.createError);
        if (this.createError !== null || this.options.mode === 'dir') throw unavailable('cas', 'no CAS image has room', this.createError);
        this.ensureStandby();
      }
      const left = deadline - Date.now();
      if (left <= 0) throw unavailable('cas', 'no CAS image has room');
      await this.waitForChange(left, signal);
    }
    this.active.inflight++;
    return this.active;
  }

  /** A put is done with `image`; `bytes` were written. May seal the image. */
  async release(image: Image, bytes: number): Promise<void> {
    image.inflight--;
    if (image !== this.active || this.options.mode !== 'loop') return;
    this.bytesSinceCheck += bytes;
    const due = this.bytesSinceCheck >= this.options.minFreeBytes / 4 || Date.now() - this.lastCheck >= CHECK_INTERVAL_MS;
    if (due) await this.checkActive();
  }

  /** Re-read the active image's free space and seal it when below a watermark. */
  async checkActive(): Promise<void> {
    this.checking ??= (async () => {
      const image = this.active;
      if (image === null) return;
      this.bytesSinceCheck = 0;
      this.lastCheck = Date.now();
      try {
        if (this.belowWatermark(await capacityOf(image.volume))) await this.seal(image, 'below free space or inode watermark');
      } catch (err) {
        this.log.error({ err, image: image.id }, 'cannot read CAS image capacity');
      }
    })().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  /** Stop taking new blobs into `image` (full); the standby takes over. */
  async seal(image: Image, reason: string): Promise<void> {
    if (image.state !== 'active' || this.options.mode !== 'loop') return;
    this.log.info({ image: image.id, reason }, 'sealing CAS image');
    this.setState(image, 'sealed');
    await this.afterDemotion();
  }

  /** An I/O error made `image` unsafe to write: no new blobs; reads are still tried. */
  async fail(image: Image, err: unknown): Promise<void> {
    if (image.state === 'failed') return;
    this.log.error({ image: image.id, err }, 'CAS image failed');
    this.setState(image, 'failed');
    if (this.options.mode === 'dir') {
      this.updateGauge();
      await this.saveLogged();
      return;
    }
    await this.afterDemotion();
  }

  private async afterDemotion(): Promise<void> {
    this.promoteStandby();
    this.updateGauge();
    await this.saveLogged();
    this.ensureStandby();
  }

  /**
   * Remove a sealed image that holds nothing any more (every blob collected,
   * no upload, no quarantined evidence), so that churn does not pile up
   * images. Marked `retired` in the manifest before anything is deleted.
   * Resolves to true when removed.
   */
  async retireIfEmpty(image: Image): Promise<boolean> {
    if (this.closed || image.state !== 'sealed' || image.inflight > 0 || this.images.get(image.id) !== image) return false;
    if (!(await isEmptyImage(image.volume))) return false;
    const entry = this.entries.get(image.id);
    if (entry === undefined) return false;
    entry.state = 'retired';
    entry.changedAt = new Date().toISOString();
    this.images.delete(image.id);
    try {
      await this.save();
    } catch (err) {
      // Nothing deleted yet: keep it as it was.
      entry.state = 'sealed';
      this.images.set(image.id, image);
      throw err;
    }
    this.updateGauge();
    try {
      await this.options.driver.destroy(image.id);
    } catch (err) {
      // Still busy (a reader of a collected blob): the next start finishes the job.
      this.log.warn({ err, image: image.id }, 'retired CAS image not removed yet');
      this.leftovers.add(image.id);
      return true;
    }
    this.entries.delete(image.id);
    await this.saveLogged();
    this.log.info({ image: image.id }, 'retired empty CAS image');
    return true;
  }

  private belowWatermark(c: Capacity): boolean {
    return c.freeBytes < this.options.minFreeBytes || c.inodesFree < this.options.minFreeInodes;
  }

  /**
   * What an upload that hit ENOSPC in `image` after receiving `received`
   * bytes is told. An upload no empty image could hold is refused for good
   * (507) and the image stays active: with the temp file gone it has its
   * room back. Otherwise the image is sealed and the next one takes the
   * retry (503, Retry-After 1 s), unless no next image can be had because
   * the host is full (507).
   */
  async refusalAfterNoSpace(image: Image, received: number, cause: unknown): Promise<CallfsError> {
    if (this.options.mode === 'dir') return noRoom('the filesystem under the CAS root is full', cause);
    const emptyFree = this.emptyImageFreeBytes ?? (await capacityOf(image.volume).then((c) => c.sizeBytes, () => Infinity));
    if (received >= emptyFree) return noRoom(`an upload of ${received} bytes or more does not fit in an empty CAS image (${emptyFree} bytes free)`, cause);
    await this.seal(image, 'ENOSPC');
    if (this.active !== null) return new CallfsError('SERVICE_UNAVAILABLE', `CAS image ${image.id} filled up during the upload; the next image takes the retry`, { cause, retryAfterSeconds: 1, component: 'cas' });
    await this.host.refresh().catch(() => undefined);
    if (this.host.low) return noRoom('every CAS image is full and the host has no room for a new one', cause);
    return unavailable('cas', 'every CAS image is full; the next one is being created', cause);
  }

  /**
   * 'full' when uploads are refused for lack of space (the host below its
   * watermark, or no image can take writes and the host has no room for a
   * new one); throws when the store cannot take writes for another reason.
   */
  async spaceState(): Promise<'ok' | 'full'> {
    await this.host.refresh();
    if (this.host.low) return 'full';
    const active = this.active;
    if (active === null) {
      if (isNoSpace(this.createError)) return 'full';
      if (this.creating === null) throw unavailable('cas', 'no CAS image takes writes', this.createError);
      return 'ok';
    }
    try {
      await capacityOf(active.volume);
    } catch (err) {
      throw unavailable('cas', `CAS image ${active.id} cannot be read`, err);
    }
    return 'ok';
  }

  private setState(image: Image, state: CasImageState): void {
    image.state = state;
    const entry = this.entries.get(image.id);
    if (entry !== undefined) {
      entry.state = state;
      entry.changedAt = new Date().toISOString();
    }
    if (this.active === image && state !== 'active') this.active = null;
  }

  private promoteStandby(): void {
    if (this.active !== null) return;
    const standby = this.list().find((i) => i.state === 'standby');
    if (standby === undefined) return;
    // Cleared before any put can be given the image.
    standby.empty = false;
    this.setState(standby, 'active');
    this.active = standby;
    this.bytesSinceCheck = 0;
    this.log.info({ image: standby.id }, 'CAS image active');
    this.updateGauge();
    this.notify();
  }

  /** Make sure a standby exists (loop mode), creating it in the background. Never throws. */
  ensureStandby(): void {
    if (this.closed || this.creating !== null || this.retryTimer !== null) return;
    if (this.list().some((i) => i.state === 'standby')) {
      this.promoteStandby();
      return;
    }
    if (this.host.low) {
      // A new image takes host space too (its ext4 metadata): wait until some is freed.
      this.creationDeferred = true;
      return;
    }
    this.creationDeferred = false;
    let created = false;
    this.creating = this.createImage()
      .then(() => {
        created = true;
        this.createError = null;
        this.promoteStandby();
        return this.saveLogged();
      })
      .catch((err: unknown) => {
        this.createError = err;
        this.log.error({ err }, 'cannot create the next CAS image; retrying later');
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.ensureStandby();
        }, CREATE_RETRY_MS);
        this.retryTimer.unref();
      })
      .finally(() => {
        this.creating = null;
        this.notify();
        // The new image may have become active at once (a seal during creation): prepare the next.
        if (created) this.ensureStandby();
      });
  }

  /** The host has room again: create a deferred standby, or retry a failed creation now rather than in 30 s. */
  private resumeCreation(): void {
    if (this.options.mode !== 'loop' || this.closed) return;
    if (!this.creationDeferred && this.createError === null) return;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.ensureStandby();
  }

  /** Make a new image in state standby; removes its leftovers on failure. */
  private async createImage(): Promise<Image> {
    const { root, driver } = this.options;
    const sequences = [...this.entries.keys()].map((id) => imageSequence(id) ?? 0);
    const id = imageIdFor(Math.max(0, ...sequences) + 1);
    const now = new Date().toISOString();
    const entry: ManifestEntry = { id, state: 'creating', createdAt: now, changedAt: now };
    this.entries.set(id, entry);
    const volume = volumeDir(root, id);
    try {
      await this.save();
      await driver.create(id);
      await initLayout(volume, id);
      if (driver.mode === 'loop') this.emptyImageFreeBytes = (await capacityOf(volume)).freeBytes;
    } catch (err) {
      await driver.destroy(id).catch((e: unknown) => this.log.error({ err: e, image: id }, 'cannot remove half-created CAS image'));
      this.entries.delete(id);
      await this.saveLogged();
      throw err;
    }
    entry.state = 'standby';
    entry.changedAt = new Date().toISOString();
    await this.save();
    const image: Image = { id, state: 'standby', volume, inflight: 0, empty: true };
    this.images.set(id, image);
    this.log.info({ image: id, mode: driver.mode }, 'created CAS image');
    this.updateGauge();
    return image;
  }

  private waitForChange(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', onAbort);
      };
      const done = (): void => {
        cleanup();
        resolve();
      };
      const onAbort = (): void => {
        cleanup();
        reject(signal?.reason);
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private save(): Promise<void> {
    const manifest: Manifest = {
      version: 1,
      mode: this.options.mode,
      images: [...this.entries.values()].sort((a, b) => (imageSequence(a.id) ?? 0) - (imageSequence(b.id) ?? 0)),
    };
    const body = JSON.parse(JSON.stringify(manifest)) as Manifest;
    // Serialised: the last state written is the last state decided.
    this.saving = this.saving.catch(() => undefined).then(() => saveManifest(this.options.root, body));
    return this.saving;
  }

  private async saveLogged(): Promise<void> {
    try {
      await this.save();
    } catch (err) {
      this.log.error({ err }, 'cannot write the CAS manifest');
    }
  }

  private updateGauge(): void {
    const counts: Record<CasImageState, number> = { standby: 0, active: 0, sealed: 0, failed: 0 };
    for (const image of this.images.values()) counts[image.state]++;
    for (const [state, n] of Object.entries(counts)) this.options.metrics.casImages.set({ state }, n);
  }

  /** Wait for background creation, then unmount and detach every image. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.notify();
    await this.creating;
    await this.saving.catch(() => undefined);
    const errors: unknown[] = [];
    for (const id of [...this.list().map((i) => i.id), ...this.leftovers]) {
      try {
        await this.options.driver.detach(id);
      } catch (err) {
        errors.push(err);
        this.log.error({ err, image: id }, 'cannot unmount CAS image (it will be adopted at next start)');
      }
    }
    for (const state of ['standby', 'active', 'sealed', 'failed']) this.options.metrics.casImages.set({ state }, 0);
    if (errors.length > 0) throw new CallfsError('INTERNAL_ERROR', `${errors.length} CAS image(s) could not be unmounted`, { cause: errors[0] });
  }
}
