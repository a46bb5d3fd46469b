import { fsyncDir, forEachLimit } from './fs-util.js';

interface Batch {
  dirs: Set<string>;
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for directory fsyncs. At most one flush runs at a time: a put
 * arriving while none runs flushes at once (no added latency when alone);
 * puts arriving during a flush join the next batch, which flushes the union
 * of their directories when the current one ends. On ext4 the first fsync of
 * a batch commits the journal transaction holding every rename before it, so
 * the others return almost at once and a burst of N puts costs about two
 * journal commits instead of N.
 */
export class DirSyncer {
  private running = false;
  private next: Batch | null = null;

  constructor(private readonly grouped: boolean) {}

  /** Resolves once every directory in `dirs` has been fsynced after this call. */
  sync(dirs: Iterable<string>): Promise<void> {
    if (!this.grouped) return flush(new Set(dirs));
    const batch = (this.next ??= newBatch());
    for (const dir of dirs) batch.dirs.add(dir);
    if (!this.running) this.kick();
    return batch.promise;
  }

  private kick(): void {
    const batch = this.next;
    if (batch === null) return;
    this.next = null;
    this.running = true;
    flush(batch.dirs)
      .then(batch.resolve, batch.reject)
      .finally(() => {
        this.running = false;
        this.kick();
      });
  }
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { dirs: new Set(), promise, resolve, reject };
}

async function flush(dirs: Set<string>): Promise<void> {
  // Bounded: libuv's default pool has 4 threads and reads share it.
  await forEachLimit(dirs, 4, fsyncDir);
}
