/**
 * Blobs handed out by put() whose caller has not yet committed (or given
 * up) the metadata that references them. A put returns before that commit,
 * so until then the index shows the blob unreferenced; a collection without
 * a grace period (under space pressure, or `gc_grace: 0`) would delete bytes
 * about to be referenced. Puts pin under the sha's guard and the collector
 * skips pinned hashes under the same guard, so either the collector's unlink
 * comes first (and the put stores the bytes again) or the blob survives.
 */
export class BlobPins {
  private readonly counts = new Map<string, number>();

  /** Pin `sha256`; the returned function unpins it (once, however often it is called). */
  pin(sha256: string): () => void {
    this.counts.set(sha256, (this.counts.get(sha256) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.counts.get(sha256) ?? 1) - 1;
      if (left > 0) this.counts.set(sha256, left);
      else this.counts.delete(sha256);
    };
  }

  has(sha256: string): boolean {
    return this.counts.has(sha256);
  }

  /** Hashes pinned now (for tests and diagnostics). */
  get size(): number {
    return this.counts.size;
  }
}
