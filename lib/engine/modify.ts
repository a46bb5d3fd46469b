import type { User } from '../auth/users.js';
import { assertAccess, assertChmod, assertChown, assertRemoveFromDirectory, mayRemoveFromDirectory, isRoot } from '../auth/permissions.js';
import type { Entry } from '../metadata/types.js';
import { CallfsError } from '../errors.js';
import { isContentAddressed } from '../backends/registry.js';
import { isWithin, parentOf } from '../paths.js';
import { checkPreconditions, lockKey, raced, resolve, resolveExisting, retryRaces, type EngineDeps, type WritePreconditions } from './context.js';
import { localBackend } from './placement.js';
import { parentsFor } from './write.js';
import { moveFollowingKeys } from './follow-keys.js';

/** How often a version-checked change is decided again after losing to a concurrent content-addressed PUT. */
const RACE_ATTEMPTS = 5;

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
        // A directory that changes parent has its '..' rewritten: rename(2) wants write on it.
        if (source.entry.type === 'directory' && parentOf(to) !== parentOf(from)) assertAccess(user, source.entry, 'w');
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
        const parents = options.createParents === true ? { parents: parentsFor(user, destParent) } : {};
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
      // The lock keeps out every writer but a content-addressed PUT (which takes none): a lost race is decided again.
      retryRaces(RACE_ATTEMPTS, () =>
        deps.store.transaction(async (tx) => {
          const { entry } = await resolveExisting(tx, user, path);
          if (change.mode !== undefined) assertChmod(user, { ...entry, path });
          if (change.uid !== undefined || change.gid !== undefined) assertChown(user);
          // Preconditions only once the request is allowed (RFC 9110 §13.2.1): a 403 wins over a 412.
          checkPreconditions(entry, options);
          const updated = await tx.update(path, entry.version, change).catch(raced(['PRECONDITION_FAILED', 'FILE_NOT_FOUND']));
          signal.throwIfAborted();
          return updated;
        }),
      ),
    options.signal === undefined ? {} : { signal: options.signal },
  );
}

/**
 * Delete a file or directory (with `recursive`, a whole tree). A non-root
 * user needs, for a tree, the right to remove every entry from its directory,
 * as `rm -r` would. Resolves with the entries removed (for a tree, all of them).
 */
export async function remove(deps: EngineDeps, user: User, path: string, options: WritePreconditions & { recursive?: boolean; signal?: AbortSignal } = {}): Promise<Entry[]> {
  if (path === '/') throw new CallfsError('BAD_REQUEST', 'the root cannot be deleted');
  // Objects named after paths are deleted after the commit, still under the locks of
  // those paths: nobody can re-create one of them in between and lose it to the delete.
  const guarded = await pathKeyedPaths(deps, path, options.recursive === true);
  return deps.locks.withLock(
    [lockKey(path), ...[...guarded].map(lockKey)],
    async (signal) => {
      const removed = await retryRaces(RACE_ATTEMPTS, () => deps.store.transaction(async (tx) => {
        const { entry, parent } = await resolveExisting(tx, user, path);
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
        checkPreconditions(entry, options);
        const result = await tx.delete(path, { recursive: options.recursive === true, expectedVersion: entry.version }).catch(raced(['PRECONDITION_FAILED', 'FILE_NOT_FOUND']));
        signal.throwIfAborted();
        return result.removed;
      }));
      // Content-addressed bytes are reference-counted and reclaimed by their collector.
      for (const entry of removed) {
        if (entry.type !== 'file' || entry.backend === null || isContentAddressed(entry.backend) || entry.blobId === null) continue;
        const backend = localBackend(deps, entry.backend);
        const keyPath = backend.pathKeys !== undefined ? backend.pathKeys.pathOf(entry.blobId) : entry.path;
        if (!guarded.has(entry.path) || (keyPath !== null && !guarded.has(keyPath))) {
          // Appeared after we looked: without its lock the delete could hit a new object of the same name.
          deps.logger.warn({ path: entry.path, backend: entry.backend }, 'left the bytes of a file removed in a concurrent recursive delete; they are orphaned');
          continue;
        }
        await backend.delete(entry.blobId).catch((err: unknown) => deps.logger.warn({ err, path: entry.path, backend: entry.backend }, 'could not delete the bytes of a removed file; they are orphaned'));
      }
      return removed;
    },
    options.signal === undefined ? {} : { signal: options.signal },
  );
}

/** Most path-keyed files one delete locks individually. */
const MAX_GUARDED_OBJECTS = 10_000;

/** The paths (entry paths and the paths their object keys name) of the path-keyed files a delete will remove. */
async function pathKeyedPaths(deps: EngineDeps, path: string, recursive: boolean): Promise<Set<string>> {
  const out = new Set<string>();
  const add = (e: Entry): void => {
    if (e.type !== 'file' || e.backend === null || isContentAddressed(e.backend) || e.blobId === null) return;
    const backend = deps.backends[e.backend];
    out.add(e.path);
    const keyPath = backend?.pathKeys !== undefined ? backend.pathKeys.pathOf(e.blobId) : null;
    if (keyPath !== null) out.add(keyPath);
    if (out.size > MAX_GUARDED_OBJECTS) throw new CallfsError('BAD_REQUEST', `${path} holds more than ${MAX_GUARDED_OBJECTS} S3 files; delete its subdirectories one at a time`);
  };
  const entry = await deps.store.get(path);
  if (entry === null) return out;
  add(entry);
  if (entry.type === 'directory' && recursive) for await (const e of deps.store.listRecursive(path, { maxDepth: Number.MAX_SAFE_INTEGER })) add(e);
  return out;
}

/** A directory must be readable to know what is in it before removing it. */
function assertReadable(user: User, dir: Entry): boolean {
  assertAccess(user, dir, 'r');
  return true;
}
