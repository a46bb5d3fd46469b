import { AsyncResource } from 'node:async_hooks';

/**
 * Group commit: callers submit items and each gets its own item's result,
 * but at most one batch runs at a time. An item submitted while none runs
 * starts a batch at once (no added latency when alone); items submitted
 * while one runs join the next batch, which starts when the running one
 * ends. Under load N callers then cost about one round trip, one flush or
 * one statement per batch instead of N.
 */
export class GroupCommit<I, O> {
  private running = false;
  private queue: Array<{ item: I; resolve: (out: O) => void; reject: (err: unknown) => void }> = [];

  private readonly run: (items: I[]) => Promise<O[]>;

  /**
   * @param run does the work for a batch; resolves with one result per item, in their order.
   * @param maxBatch most items in one batch (the rest wait for the next).
   */
  constructor(
    run: (items: I[]) => Promise<O[]>,
    private readonly maxBatch = 256,
  ) {
    // Batches run in the async context the group was made in, not in that of whichever caller
    // happened to start them (an AsyncLocalStorage of that request or transaction).
    this.run = AsyncResource.bind(run);
  }

  /** A batch is running or items wait for one. */
  get busy(): boolean {
    return this.running || this.queue.length > 0;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) this.next();
    });
  }

  private next(): void {
    if (this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.running = true;
    let work: Promise<O[]>;
    try {
      work = this.run(batch.map((b) => b.item));
    } catch (err) {
      work = Promise.reject(err);
    }
    work
      .then(
        (out) => {
          if (out.length !== batch.length) throw new Error(`group commit: ${out.length} results for ${batch.length} items`);
          batch.forEach((b, i) => b.resolve(out[i] as O));
        },
        (err: unknown) => {
          for (const b of batch) b.reject(err);
        },
      )
      .catch((err: unknown) => {
        for (const b of batch) b.reject(err);
      })
      .finally(() => {
        this.running = false;
        this.next();
      });
  }
}
