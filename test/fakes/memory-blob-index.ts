import type { BlobIndex } from '../../lib/backends/cas/types.js';
import type { BlobRecord } from '../../lib/metadata/types.js';

/**
 * A working in-memory CAS blob index with the semantics of the metadata
 * store's `blobs` table. Tests set reference counts by hand (the real store
 * derives them from inode rows) and can move the clock.
 */
export class MemoryBlobIndex implements BlobIndex {
  private readonly rows = new Map<string, BlobRecord>();
  /** Time source; tests may replace it. */
  now: () => Date = () => new Date();
  /** Calls per method, for tests that care whether the index was consulted. */
  readonly calls = { recordBlob: 0, forgetBlob: 0, markBlobVerified: 0 };

  private key(instanceId: string, sha256: string): string {
    return `${instanceId}\u0000${sha256}`;
  }

  private copy(row: BlobRecord): BlobRecord {
    return { ...row, createdAt: new Date(row.createdAt), touchedAt: new Date(row.touchedAt), lastVerifiedAt: row.lastVerifiedAt && new Date(row.lastVerifiedAt) };
  }

  async recordBlob(blob: { sha256: string; instanceId: string; imageId: string; size: number }): Promise<BlobRecord> {
    this.calls.recordBlob++;
    const key = this.key(blob.instanceId, blob.sha256);
    const now = this.now();
    const existing = this.rows.get(key);
    if (existing !== undefined) {
      // Touch, and note where the bytes are now. The quarantine flag stays (markBlobVerified clears it).
      existing.touchedAt = now;
      existing.imageId = blob.imageId;
      existing.size = blob.size;
      return this.copy(existing);
    }
    const row: BlobRecord = { ...blob, refCount: 0, createdAt: now, lastVerifiedAt: null, touchedAt: now, quarantined: false };
    this.rows.set(key, row);
    return this.copy(row);
  }

  async getBlob(instanceId: string, sha256: string): Promise<BlobRecord | null> {
    const row = this.rows.get(this.key(instanceId, sha256));
    return row === undefined ? null : this.copy(row);
  }

  async listCollectableBlobs(instanceId: string, olderThan: Date, limit: number): Promise<BlobRecord[]> {
    return [...this.rows.values()]
      .filter((r) => r.instanceId === instanceId && r.refCount === 0 && r.touchedAt.getTime() < olderThan.getTime())
      .sort((a, b) => a.touchedAt.getTime() - b.touchedAt.getTime())
      .slice(0, limit)
      .map((r) => this.copy(r));
  }

  async forgetBlob(instanceId: string, sha256: string, olderThan: Date): Promise<boolean> {
    this.calls.forgetBlob++;
    const key = this.key(instanceId, sha256);
    const row = this.rows.get(key);
    if (row === undefined || row.refCount !== 0 || row.touchedAt.getTime() >= olderThan.getTime()) return false;
    this.rows.delete(key);
    return true;
  }

  async listBlobsForScrub(instanceId: string, limit: number): Promise<BlobRecord[]> {
    const at = (r: BlobRecord): number => r.lastVerifiedAt?.getTime() ?? -1;
    return [...this.rows.values()]
      .filter((r) => r.instanceId === instanceId && !r.quarantined)
      .sort((a, b) => at(a) - at(b) || a.sha256.localeCompare(b.sha256))
      .slice(0, limit)
      .map((r) => this.copy(r));
  }

  async markBlobVerified(instanceId: string, sha256: string, ok: boolean): Promise<void> {
    this.calls.markBlobVerified++;
    const row = this.rows.get(this.key(instanceId, sha256));
    if (row === undefined) return;
    if (ok) {
      row.lastVerifiedAt = this.now();
      row.quarantined = false;
    } else row.quarantined = true;
  }

  async *listBlobs(instanceId: string): AsyncIterable<BlobRecord> {
    for (const row of [...this.rows.values()]) if (row.instanceId === instanceId) yield this.copy(row);
  }

  /** Set a blob's reference count (the real store derives it from inodes). */
  setRefCount(instanceId: string, sha256: string, refCount: number): void {
    const row = this.rows.get(this.key(instanceId, sha256));
    if (row === undefined) throw new Error(`no blob row ${sha256}`);
    row.refCount = refCount;
  }

  /** Move a row's last touch (to make it collectable, or not). */
  setTouchedAt(instanceId: string, sha256: string, at: Date): void {
    const row = this.rows.get(this.key(instanceId, sha256));
    if (row === undefined) throw new Error(`no blob row ${sha256}`);
    row.touchedAt = at;
  }

  /** Every row (any instance). */
  all(): BlobRecord[] {
    return [...this.rows.values()].map((r) => this.copy(r));
  }
}
