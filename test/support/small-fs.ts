import { execFileSync } from 'node:child_process';
import { mkdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './tmp.js';

/** A filesystem of its own, small enough to fill in a test (needs root and loop devices). */
export interface SmallFilesystem {
  /** Where it is mounted. */
  dir: string;
  /** Bytes available to unprivileged writers (what the CAS sees as free), now. */
  freeBytes(): number;
  /** Bytes in use, now. */
  usedBytes(): number;
  /** Unmount it and delete its file. */
  remove(): void;
}

/** Make an ext4 filesystem of `sizeBytes` in a file and loop-mount it on a fresh temp directory. */
export function mountSmallFilesystem(sizeBytes: number, prefix = 'callfs-smallfs-'): SmallFilesystem {
  const tmp = tempDir(prefix);
  const file = join(tmp.dir, 'fs.img');
  const dir = join(tmp.dir, 'mnt');
  mkdirSync(dir);
  try {
    execFileSync('truncate', ['-s', String(sizeBytes), file]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', file]);
    execFileSync('mount', ['-o', 'loop', file, dir]);
  } catch (err) {
    tmp.remove();
    throw err;
  }
  return {
    dir,
    freeBytes() {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    usedBytes() {
      const s = statfsSync(dir);
      return (s.blocks - s.bfree) * s.bsize;
    },
    remove() {
      try {
        execFileSync('umount', [dir], { stdio: 'ignore' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      }
      tmp.remove();
    },
  };
}
