import { GroupCommit } from '../../group-commit.js';
import { fsyncDir, forEachLimit } from './fs-util.js';

/**
 * Group commit for directory fsyncs: a put arriving while no flush runs
 * flushes at once; puts arriving during a flush join the next batch, which
 * flushes the union of their directories when the current one ends. On ext4
 * the first fsync of a batch commits the journal transaction holding every
 * rename before it, so the others return almost at once and a burst of N puts
 * costs about two journal commits instead of N.
 */
export class DirSyncer {
  private readonly group = new GroupCommit<Iterable<string>, void>(async (batches) => {
    const dirs = new Set<string>();
    for (const batch of batches) for (const dir of batch) dirs.add(dir);
    await flush(dirs);
    return batches.map(() => undefined);
  });

  constructor(private readonly grouped: boolean) {}

  /** Resolves once every directory in `dirs` has been fsynced after this call. */
  sync(dirs: Iterable<string>): Promise<void> {
    return this.grouped ? this.group.submit(dirs) : flush(new Set(dirs));
  }
}

async function flush(dirs: Set<string>): Promise<void> {
  // Bounded: libuv's default pool has 4 threads and reads share it.
  await forEachLimit(dirs, 4, fsyncDir);
}
