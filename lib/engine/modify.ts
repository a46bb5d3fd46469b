import type { User } from '../auth/users.js';
import { assertAccess, assertChmod, assertChown, assertRemoveFromDirectory, mayRemoveFromDirectory, isRoot } from '../auth/permissions.js';
import type { Entry } from '../metadata/types.js';
import { CallfsError } from '../errors.js';
import { isWithin, parentOf } from '../paths.js';
import { backendOf, checkPreconditions, lockKey, resolve, resolveExisting, type EngineDeps, type WritePreconditions } from './context.js';
import { DEFAULT_DIR_MODE } from './write.js';
import { moveFollowingKeys } from './follow-keys.js';

export interface MoveOptions {
  overwrite?: boolean;
  createParents?: boolean;
  signal?: AbortSignal;
}

/**
 * Rename or move an entry (a whole directory tree at once) in one metadata
 * transaction. Needs write+search on both parents, and the sticky-bit right
 * to remove the entry (and any replaced one).
 */
export async function move(deps: EngineDeps, user: User, from: string, to: string, options: MoveOptions = {}): Promise<Entry> {
  if (from === '/' || to === '/') throw new CallfsError('BAD_REQUEST', 'the root cannot be moved or replaced');
  if (to !== from && isWithin(to, from)) throw new CallfsError('BAD_REQUEST', 'cannot move a directory into itself');
  // S3 objects are named after paths: moveFollowingKeys moves them with their entries (see follow-keys.ts).
  return moveFollowingKeys(
    deps,
    from,
    to,
    [lockKey(from), lockKey(to)],
    async (tx, signal) => {
        const source = await resolveExisting(tx, user, from);
        if (source.parent !== null) assertRemoveFromDirectory(user, source.parent, source.entry);
        if (to === from) return { entry: source.entry, replaced: null };
        const dest = await resolve(tx, user, to);
        const destParent = dest.ancestors[dest.ancestors.length - 1];
        if (!dest.parentExists && options.createParents !== true) throw new CallfsError('FILE_NOT_FOUND', `no such directory: ${parentOf(to)}`);
        if (destParent !== undefined) {
          assertAccess(user, destParent, 'w');
          assertAccess(user, destParent, 'x');
        }
        if (dest.entry !== null) {
          if (options.overwrite !== true) throw new CallfsError('FILE_ALREADY_EXISTS', `destination exists: ${to}`);
          if (destParent !== undefined) assertRemoveFromDirectory(user, destParent, dest.entry);
        }
        const parents = options.createParents === true ? { parents: { mode: DEFAULT_DIR_MODE, uid: user.uid, gid: user.gid } } : {};
        const moved = await tx.move(from, to, { overwrite: options.overwrite === true, ...parents });
        signal.throwIfAborted();
        return moved;
    },
    options.signal,
  );
}

export interface AttributeChange {
  mode?: number;
  uid?: number;
  gid?: number;
}

/** chmod (owner or root) and chown (root only), as one update. */
export async function setAttributes(deps: EngineDeps, user: User, path: string, change: AttributeChange, options: WritePreconditions & { signal?: AbortSignal } = {}): Promise<Entry> {
  return deps.locks.withLock(
    [lockKey(path)],
    (signal) =>
      deps.store.transaction(async (tx) => {
        const { entry } = await resolveExisting(tx, user, path);
        checkPreconditions(entry, options);
        if (change.mode !== undefined) assertChmod(user, { ...entry, path });
        if (change.uid !== undefined || change.gid !== undefined) assertChown(user);
        const updated = await tx.update(path, entry.version, change);
        signal.throwIfAborted();
        return updated;
      }),
    options.signal === undefined ? {} : { signal: options.signal },
  );
}

/**
 * Delete a file or directory (with `recursive`, a whole tree). A non-root
 * user needs, for a tree, the right to remove every entry from its directory,
 * as `rm -r` would.
 */
export async function remove(deps: EngineDeps, user: User, path: string, options: WritePreconditions & { recursive?: boolean; signal?: AbortSignal } = {}): Promise<void> {
  if (path === '/') throw new CallfsError('BAD_REQUEST', 'the root cannot be deleted');
  const removed = await deps.locks.withLock(
    [lockKey(path)],
    (signal) =>
      deps.store.transaction(async (tx) => {
        const { entry, parent } = await resolveExisting(tx, user, path);
        checkPreconditions(entry, options);
        if (parent !== null) assertRemoveFromDirectory(user, parent, entry);
        if (entry.type === 'directory' && options.recursive === true && !isRoot(user)) {
          const dirs = new Map<string, Entry>([[entry.path, entry]]);
          for await (const item of tx.listRecursive(path, { maxDepth: Number.MAX_SAFE_INTEGER })) {
            const dir = dirs.get(parentOf(item.path));
            if (dir === undefined || !mayRemoveFromDirectory(user, dir, item) || (item.type === 'directory' && !(assertReadable(user, item)))) {
              throw new CallfsError('PERMISSION_DENIED', `permission denied: removal of ${item.path}`);
            }
            if (item.type === 'directory') dirs.set(item.path, item);
          }
        }
        const result = await tx.delete(path, { recursive: options.recursive === true, expectedVersion: entry.version });
        signal.throwIfAborted();
        return result.removed;
      }),
    options.signal === undefined ? {} : { signal: options.signal },
  );
  // Path-keyed bytes go once the entries are gone; content-addressed ones are
  // reference-counted and reclaimed by their collector.
  for (const entry of removed) {
    if (entry.type !== 'file' || entry.backend === null || entry.backend === 'cas' || entry.blobId === null) continue;
    try {
      await backendOf(deps, entry.backend).delete(entry.blobId);
    } catch (err) {
      deps.logger.warn({ err, path: entry.path, backend: entry.backend }, 'could not delete the bytes of a removed file; they are orphaned');
    }
  }
}

/** A directory must be readable to know what is in it before removing it. */
function assertReadable(user: User, dir: Entry): boolean {
  assertAccess(user, dir, 'r');
  return true;
}
