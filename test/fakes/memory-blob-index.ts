import type { BlobIndex } from '../../lib/backends/cas/types.js';
import type { BlobPlacement } from '../../lib/metadata/blobs-links-sql.js';
import type { BlobListing, BlobRecord } from '../../lib/metadata/types.js';
import * as blobs from './memory-metadata/blobs.js';
import { Table } from './memory-metadata/table.js';

/**
 * The CAS blob index alone, in memory, with the rules of the metadata store's
 * `blobs` table (the same code as the in-memory metadata store's). For tests
 * of the CAS by itself: no file entries exist here, so tests set reference
 * counts by hand (the store derives them from its entries) and can move the
 * clock.
 */
export class MemoryBlobIndex implements BlobIndex {
  private readonly rows = Table.base<BlobRecord>();
  /** Time source; tests may replace it. */
  now: () => Date = () => new Date();

  async recordBlob(blob: BlobPlacement): Promise<BlobRecord> {
    return blobs.recordBlob(this.rows, blob, this.now());
  }

  async getBlob(instanceId: string, sha256: string): Promise<BlobRecord | null> {
    return blobs.getBlob(this.rows, instanceId, sha256);
  }

  async listCollectableBlobs(instanceId: string, olderThan: Date, limit: number): Promise<BlobRecord[]> {
    return blobs.listCollectableBlobs(this.rows, instanceId, olderThan, limit);
  }

  async forgetBlob(instanceId: string, sha256: string, olderThan: Date): Promise<boolean> {
    return blobs.forgetBlob(this.rows, instanceId, sha256, olderThan);
  }

  async listBlobsForScrub(instanceId: string, limit: number): Promise<BlobRecord[]> {
    return blobs.listBlobsForScrub(this.rows, instanceId, limit);
  }

  async markBlobVerified(instanceId: string, sha256: string, ok: boolean): Promise<void> {
    blobs.markBlobVerified(this.rows, instanceId, sha256, ok, this.now());
  }

  async *listBlobs(instanceId: string, options?: BlobListing): AsyncIterable<BlobRecord> {
    yield* blobs.listBlobs(this.rows, instanceId, options);
  }

  /** Set a blob's reference count (the real store derives it from its entries). */
  setRefCount(instanceId: string, sha256: string, refCount: number): void {
    this.rows.set(blobs.blobKey(instanceId, sha256), { ...this.existing(instanceId, sha256), refCount });
  }

  /** Move a row's last touch (to make it collectable, or not). */
  setTouchedAt(instanceId: string, sha256: string, at: Date): void {
    this.rows.set(blobs.blobKey(instanceId, sha256), { ...this.existing(instanceId, sha256), touchedAt: at });
  }

  /** Every row (any instance). */
  all(): BlobRecord[] {
    return [...this.rows.values()].map(blobs.copyBlob);
  }

  private existing(instanceId: string, sha256: string): BlobRecord {
    const row = this.rows.get(blobs.blobKey(instanceId, sha256));
    if (row === undefined) throw new Error(`no blob row ${sha256}`);
    return row;
  }
}
