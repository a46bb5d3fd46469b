import { randomUUID } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { CallfsError } from '../../errors.js';
import { errnoCode } from './fs-util.js';
import { lockPath } from './layout.js';

/**
 * One server per CAS root. Two processes mounting the same ext4 image through
 * two loop devices would corrupt it, so the root is claimed with a lock file
 * holding the owner's pid. A lock left by a dead process (crash, SIGKILL) is
 * taken over; a live owner makes start fail.
 */
export interface RootLock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

export async function acquireRootLock(root: string): Promise<RootLock> {
  const file = lockPath(root);
  const token = randomUUID();
  const body = JSON.stringify({ pid: process.pid, token });
  const staging = `${file}.${token}`;
  await writeFile(staging, body, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        // link() fails with EEXIST instead of replacing: the claim is atomic.
        await link(staging, file);
        break;
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST' || attempt > 0) throw err;
        let owner: { pid?: unknown } = {};
        try {
          owner = JSON.parse(await readFile(file, 'utf8')) as { pid?: unknown };
        } catch {
          // unreadable or half-written lock: treat as stale
        }
        if (typeof owner.pid === 'number' && alive(owner.pid)) {
          throw new CallfsError('SERVICE_UNAVAILABLE', `CAS root ${root} is in use by process ${owner.pid} (remove ${file} if that is wrong)`, { component: 'cas' });
        }
        await unlink(file).catch(() => undefined);
      }
    }
  } finally {
    await unlink(staging).catch(() => undefined);
  }
  return {
    async release() {
      try {
        const current = JSON.parse(await readFile(file, 'utf8')) as { token?: unknown };
        if (current.token === token) await unlink(file);
      } catch {
        // already gone
      }
    },
  };
}
