import { stat } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import { unavailable } from '../../errors.js';
import { errnoCode } from './fs-util.js';
import type { Image, ImageSet } from './images.js';
import { blobPath, quarantinePath } from './layout.js';

export interface BlobLocation {
  image: Image;
  path: string;
  size: number;
  /** Identity of the file, so a later rename/unlink acts on the same inode only. */
  dev: number;
  ino: number;
}

/**
 * Finds which image holds a blob. The disk is the truth (not the index, so
 * reads work while the database is away and never trust a stale row); a
 * small cache of sha → image avoids probing every image for hot blobs, and a
 * miss in the cached image falls back to probing them all.
 */
export class BlobLocator {
  private readonly cache = new LRUCache<string, string>({ max: 100_000 });
  /**
   * CRC32C of blobs' bytes, from the put that stored them or the first read
   * verified against the sha256 since the CAS opened: a whole read is then
   * checked with it instead of SHA-256 (a few times cheaper). A property of
   * the content, so it never goes stale.
   */
  private readonly crcs = new LRUCache<string, number>({ max: 100_000 });
  /** The last large blob stored or deduplicated against, by size, with the CRC32C of its head (see StoredTwin). */
  private readonly bySize = new LRUCache<number, { sha256: string; headCrc: number }>({ max: 10_000 });

  constructor(private readonly images: ImageSet) {}

  /** The blob under blobs/ in some image, or null. */
  async find(sha256: string): Promise<BlobLocation | null> {
    const cachedId = this.cache.get(sha256);
    const cached = cachedId === undefined ? undefined : this.images.get(cachedId);
    if (cached !== undefined) {
      const hit = await this.probe(cached, sha256);
      if (hit !== null) return hit;
      this.cache.delete(sha256);
    }
    const all = await this.findAll(sha256, cached);
    const first = all[0] ?? null;
    if (first !== null) this.cache.set(sha256, first.image.id);
    return first;
  }

  /** Every copy under blobs/ (normally at most one), newest image first. */
  async findAll(sha256: string, skip?: Image): Promise<BlobLocation[]> {
    const found: BlobLocation[] = [];
    let failure: unknown = null;
    // Newest first: recent blobs are the most read, and the active image is newest.
    for (const image of this.images.list().reverse()) {
      // Standby images too: after a crash the manifest may call an image that took writes a standby.
      if (image === skip || image.empty === true) continue;
      try {
        const hit = await this.probe(image, sha256);
        if (hit !== null) found.push(hit);
      } catch (err) {
        failure = err;
      }
    }
    // An image that cannot be read may hold it: do not claim "absent".
    if (found.length === 0 && failure !== null) throw unavailable('cas', 'no CAS image could be searched for the blob', failure);
    return found;
  }

  /** True when some image holds a quarantined copy. */
  async isQuarantined(sha256: string): Promise<boolean> {
    for (const image of this.images.list()) {
      try {
        await stat(quarantinePath(image.volume, sha256));
        return true;
      } catch {
        // not there
      }
    }
    return false;
  }

  /** Where the cache last saw the blob (not probed: the caller opens it and falls back to find on ENOENT). */
  cached(sha256: string): { image: Image; path: string } | null {
    const id = this.cache.get(sha256);
    const image = id === undefined ? undefined : this.images.get(id);
    return image === undefined ? null : { image, path: blobPath(image.volume, sha256) };
  }

  crcOf(sha256: string): number | undefined {
    return this.crcs.get(sha256);
  }

  rememberCrc(sha256: string, crc: number): void {
    this.crcs.set(sha256, crc);
  }

  /** The last large blob of `size` bytes a put stored or deduplicated against, if any, and the CRC32C of its first bytes (TWIN_HEAD_BYTES). */
  lastOfSize(size: number): { sha256: string; headCrc: number } | undefined {
    return this.bySize.get(size);
  }

  rememberSize(size: number, sha256: string, headCrc: number): void {
    this.bySize.set(size, { sha256, headCrc });
  }

  remember(sha256: string, image: Image): void {
    this.cache.set(sha256, image.id);
  }

  forget(sha256: string): void {
    this.cache.delete(sha256);
  }

  private async probe(image: Image, sha256: string): Promise<BlobLocation | null> {
    const path = blobPath(image.volume, sha256);
    try {
      const s = await stat(path);
      return { image, path, size: s.size, dev: s.dev, ino: s.ino };
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw err;
    }
  }
}
