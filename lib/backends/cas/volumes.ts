import { mkdir, open, realpath, rm, rmdir, stat } from 'node:fs/promises';
import type { Logger } from '../../log/index.js';
import { errnoCode } from './fs-util.js';
import { imageFile, volumeDir } from './layout.js';
import { backingFileOf, detachLoop, enableDirectIo, enableDiscard, listMounts, loopDevicesFor, makeExt4, mountAt, mountImage, trimMount, unmount } from './system.js';
import type { CasMode } from './types.js';

/**
 * How an image's files become visible at volumes/<id>: an ext4 loop image
 * mounted there (loop), or a plain directory (dir). Everything above this
 * works on volumes/<id> and does not care which.
 */
export interface VolumeDriver {
  readonly mode: CasMode;
  /** The image file (loop) or directory (dir). */
  imagePath(id: string): string;
  /** Create a new, empty image and make its volume usable. */
  create(id: string): Promise<void>;
  /** Make an existing image usable: mount it, or adopt a mount left by a crash. Throws naming the image. */
  attach(id: string): Promise<void>;
  /** Unmount and detach the loop device (loop); nothing for dir. */
  detach(id: string): Promise<void>;
  /** Remove an image and its volume entirely. */
  destroy(id: string): Promise<void>;
  /** Hand the image's free blocks back to the host; resolves to the bytes trimmed. */
  trim(id: string): Promise<number>;
  /** Host bytes the image file occupies; null when not measurable (dir). */
  allocatedBytes(id: string): Promise<number | null>;
}

export interface LoopDriverOptions {
  root: string;
  imageSizeBytes: number;
  bytesPerInode: number;
  logger: Logger;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** ext4 images in sparse files, loop-mounted under volumes/. */
export function createLoopDriver(options: LoopDriverOptions): VolumeDriver {
  const { root, logger } = options;

  function logMount(image: string, mounted: { device: string | null; directIo: boolean }): void {
    if (mounted.directIo) logger.debug({ image, device: mounted.device }, 'CAS image mounted, loop device in direct I/O mode');
    else logger.info({ image, device: mounted.device }, 'CAS image mounted; its loop device could not use direct I/O (writes go through the host page cache twice)');
  }

  async function detachAll(file: string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const devices = await loopDevicesFor(file);
      if (devices.length === 0) return;
      for (const device of devices) await detachLoop(device).catch(() => undefined);
      await sleep(50);
    }
    throw new Error(`loop device still attached to ${file} (in use elsewhere?)`);
  }

  async function unmountWithRetry(dir: string): Promise<void> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 25; attempt++) {
      if ((await mountAt(dir)) === null) return;
      try {
        await unmount(dir);
        return;
      } catch (err) {
        // EBUSY: a reader or an outside process still holds a file; give it a moment.
        lastError = err;
        await sleep(200);
      }
    }
    throw lastError instanceof Error ? lastError : new Error(`could not unmount ${dir}`);
  }

  return {
    mode: 'loop',
    imagePath: (id) => imageFile(root, id),

    async create(id) {
      const file = imageFile(root, id);
      const dir = volumeDir(root, id);
      // A sparse file: ftruncate allocates nothing, mkfs writes only metadata.
      const fh = await open(file, 'wx', 0o600);
      try {
        await fh.truncate(options.imageSizeBytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await makeExt4(file, { bytesPerInode: options.bytesPerInode, label: id });
      await mkdir(dir, { recursive: true, mode: 0o750 });
      logMount(id, await mountImage(file, dir));
    },

    async attach(id) {
      const file = imageFile(root, id);
      const dir = volumeDir(root, id);
      try {
        await stat(file);
      } catch {
        throw new Error(`CAS image ${id}: image file ${file} is missing`);
      }
      const real = await realpath(file);
      await mkdir(dir, { recursive: true, mode: 0o750 });
      const mounted = await mountAt(dir);
      if (mounted !== null) {
        // Left mounted by a crash: reuse it when it is this image.
        if ((await backingFileOf(mounted.source)) === real) {
          logger.info({ image: id, device: mounted.source, directIo: await enableDirectIo(mounted.source), discard: await enableDiscard(dir) }, 'adopted existing mount of CAS image');
          return;
        }
        throw new Error(`CAS image ${id}: ${dir} has ${mounted.source} mounted on it, not ${file}`);
      }
      const devices = await loopDevicesFor(file);
      if (devices.length > 0) {
        const mounts = await listMounts();
        for (const device of devices) {
          const elsewhere = mounts.find((m) => m.source === device);
          if (elsewhere !== undefined) {
            // Mounting it a second time through another device would corrupt it.
            throw new Error(`CAS image ${id}: ${file} is mounted at ${elsewhere.mountPoint} through ${device}; unmount it first`);
          }
        }
        logger.warn({ image: id, devices }, 'detaching stale loop devices of CAS image');
        await detachAll(file);
      }
      try {
        logMount(id, await mountImage(file, dir));
      } catch (err) {
        throw new Error(`CAS image ${id} (${file}) failed to mount: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    },

    async detach(id) {
      const file = imageFile(root, id);
      await unmountWithRetry(volumeDir(root, id));
      // mount -o loop sets autoclear, so umount normally detaches; make sure.
      await detachAll(file).catch((err: unknown) => logger.warn({ image: id, err }, 'loop device not detached'));
    },

    async destroy(id) {
      const file = imageFile(root, id);
      const dir = volumeDir(root, id);
      await unmountWithRetry(dir);
      try {
        await detachAll(file);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
      await rm(file, { force: true });
      await rmdir(dir).catch((err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') throw err;
      });
    },

    trim: (id) => trimMount(volumeDir(root, id)),

    async allocatedBytes(id) {
      const s = await stat(imageFile(root, id));
      return s.blocks * 512;
    },
  };
}

/** Images as plain directories: same layout, no root needed, no capacity of their own. */
export function createDirDriver(options: { root: string }): VolumeDriver {
  const { root } = options;
  return {
    mode: 'dir',
    imagePath: (id) => volumeDir(root, id),
    async create(id) {
      await mkdir(volumeDir(root, id), { recursive: false, mode: 0o750 });
    },
    async attach(id) {
      try {
        const s = await stat(volumeDir(root, id));
        if (!s.isDirectory()) throw new Error('not a directory');
      } catch (err) {
        throw new Error(`CAS image ${id}: directory ${volumeDir(root, id)} is unusable: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    },
    async detach() {},
    async destroy(id) {
      await rm(volumeDir(root, id), { recursive: true, force: true });
    },
    async trim() {
      return 0;
    },
    async allocatedBytes() {
      return null;
    },
  };
}
