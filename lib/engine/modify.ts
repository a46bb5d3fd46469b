import type { User } from '../auth/users.js';
import { assertAccess, assertChmod, assertChown, assertRemoveFromDirectory, mayRemoveFromDirectory, isRoot } from '../auth/permissions.js';
import { randomUUID } from 'node:crypto';
import type { Entry, MetadataOps, TreeJob } from '../metadata/types.js';
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
export async function move(deps: EngineDeps, user: User, from: string, to: string, options: MoveOptions = {}): Promise<{ entry: Entry | null; job: TreeJob | null }> {
  if (from === '/' || to === '/') throw new CallfsError('BAD_REQUEST', 'the root cannot be moved or replaced');
  if (to !== from && isWithin(to, from)) throw new CallfsError('BAD_REQUEST', 'cannot move a directory into itself');
  const job = await moveBigTree(deps, user, from, to, options);
  if (job !== null) return { entry: null, job };
  // S3 objects are named after paths: moveFollowingKeys moves them with their entries (see follow-keys.ts).
  const entry = await moveFollowingKeys(
    deps,
    from,
    to,
    [lockKey(from), lockKey(to)],
    async (tx, signal) => {
      const decided = await decideMove(tx, user, from, to, options);
      if (decided.noop) return { entry: decided.source, replaced: null };
      const moved = await tx.move(from, to, { overwrite: options.overwrite === true, ...(decided.parents === undefined ? {} : { parents: decided.parents }) });
      signal.throwIfAborted();
      return moved;
    },
    options.signal,
  );
  return { entry, job: null };
}

/**
 * The checks of a move against the namespace as `tx` reads it: the source,
 * whether there is nothing to do (a move onto itself), and the attributes
 * of any parents to create.
 */
async function decideMove(tx: MetadataOps, user: User, from: string, to: string, options: MoveOptions): Promise<{ source: Entry; noop: boolean; parents: { mode: number; uid: number; gid: number } | undefined }> {
  const source = await resolveExisting(tx, user, from);
  if (source.parent !== null) assertRemoveFromDirectory(user, source.parent, source.entry);
  if (to === from) return { source: source.entry, noop: true, parents: undefined };
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
  return { source: source.entry, noop: false, parents: options.createParents === true ? parentsFor(user, destParent) : undefined };
}

/**
 * A move of a directory with more than `jobEntries` entries below it: the
 * same checks as any move, then both ends are marked in one short
 * transaction and a tree job moves the tree in one transaction of its own
 * (readers see it whole at the old path, then whole at the new one), so the
 * namespace lock is not held for the length of the move. Null when the move
 * is not such a move, where the store has no tree jobs, or where S3 objects
 * named after paths would have to follow (follow-keys.ts does those).
 */
async function moveBigTree(deps: EngineDeps, user: User, from: string, to: string, options: MoveOptions): Promise<TreeJob | null> {
  if (from === to || deps.store.startMove === undefined) return null;
  if (Object.values(deps.backends).some((b) => b?.pathKeys !== undefined)) return null;
  if (!(await isBigTree(deps, from))) return null;
  return startTreeJob(deps, [lockKey(from), lockKey(to)], options.signal, async (tx, job) => {
    const decided = await decideMove(tx, user, from, to, options);
    if (decided.noop || tx.startMove === undefined) throw new CallfsError('INTERNAL_ERROR', 'a big move without a move to make');
    return tx.startMove(from, to, { ...job, uid: user.uid, expectedVersion: decided.source.version, overwrite: options.overwrite === true, parents: decided.parents ?? null })
      .catch(raced(['PRECONDITION_FAILED', 'FILE_NOT_FOUND']));
  });
}

/** Whether `path` is a directory with more than `jobEntries` entries below it, where there is a tree-job worker. */
async function isBigTree(deps: EngineDeps, path: string): Promise<boolean> {
  if (deps.trees === undefined) return false;
  const peek = await deps.store.get(path);
  if (peek === null || peek.type !== 'directory') return false;
  return (await deps.store.count(path, { maxDepth: Number.MAX_SAFE_INTEGER })) > deps.trees.settings.jobEntries;
}

/**
 * Start a tree job: `start` decides and marks it in one transaction, under
 * the locks of `keys`, decided again while it loses races (a WriteRace);
 * then the worker is told. `start` gets the job's id, owner (this instance)
 * and lease.
 */
async function startTreeJob(
  deps: EngineDeps,
  keys: string[],
  signal: AbortSignal | undefined,
  start: (tx: MetadataOps, job: { id: string; leaseOwner: string; leaseMs: number }) => Promise<TreeJob>,
): Promise<TreeJob | null> {
  const { trees } = deps;
  if (trees === undefined) return null;
  const id = randomUUID();
  const job = await deps.locks.withLock(
    keys,
    (held) => retryRaces(RACE_ATTEMPTS, () => deps.store.transaction(async (tx) => {
      const started = await start(tx, { id, leaseOwner: deps.instanceId, leaseMs: trees.settings.leaseMs });
      held.throwIfAborted();
      return started;
    })),
    signal === undefined ? {} : { signal },
  );
  trees.kick();
  return job;
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
export async function remove(deps: EngineDeps, user: User, path: string, options: WritePreconditions & { recursive?: boolean; signal?: AbortSignal } = {}): Promise<{ removed: Entry[]; job: TreeJob | null }> {
  if (path === '/') throw new CallfsError('BAD_REQUEST', 'the root cannot be deleted');
  if (options.recursive === true) {
    const job = await removeBigTree(deps, user, path, options);
    if (job !== null) return { removed: [], job };
  }
  return { removed: await removeNow(deps, user, path, options), job: null };
}

/**
 * A recursive delete of a directory with more than `jobEntries` entries
 * below it: the tree leaves the namespace in one short transaction (after
 * the same permission checks as removeNow) and a tree job removes its rows in
 * batches (tree-jobs.ts). Null when the path is not such a directory, or
 * where the store has no tree jobs: removeNow then does the delete.
 */
async function removeBigTree(deps: EngineDeps, user: User, path: string, options: WritePreconditions & { signal?: AbortSignal }): Promise<TreeJob | null> {
  if (deps.store.detachTree === undefined || !(await isBigTree(deps, path))) return null;
  return startTreeJob(deps, [lockKey(path)], options.signal, async (tx, job) => {
    const { entry, parent } = await resolveExisting(tx, user, path);
    if (parent !== null) assertRemoveFromDirectory(user, parent, entry);
    if (entry.type === 'directory' && !isRoot(user)) await assertMayRemoveTree(tx, user, entry);
    checkPreconditions(entry, options);
    if (tx.detachTree === undefined) throw new CallfsError('INTERNAL_ERROR', 'the metadata transaction has no detachTree');
    return tx.detachTree(path, { ...job, uid: user.uid, expectedVersion: entry.version }).catch(raced(['PRECONDITION_FAILED', 'FILE_NOT_FOUND']));
  });
}

/** A non-root user may remove a tree when they may remove every entry from its directory and read every directory, as `rm -r`. */
async function assertMayRemoveTree(tx: MetadataOps, user: User, root: Entry): Promise<void> {
  if (tx.firstUnremovable !== undefined) {
    // One statement, however big the tree.
    const refused = await tx.firstUnremovable(root.path, user);
    if (refused !== null) throw new CallfsError('PERMISSION_DENIED', `permission denied: removal of ${refused}`);
    return;
  }
  const dirs = new Map<string, Entry>([[root.path, root]]);
  for await (const item of tx.listRecursive(root.path, { maxDepth: Number.MAX_SAFE_INTEGER })) {
    const dir = dirs.get(parentOf(item.path));
    if (dir === undefined || !mayRemoveFromDirectory(user, dir, item) || (item.type === 'directory' && !(assertReadable(user, item)))) {
      throw new CallfsError('PERMISSION_DENIED', `permission denied: removal of ${item.path}`);
    }
    if (item.type === 'directory') dirs.set(item.path, item);
  }
}

/** The delete in one transaction. */
async function removeNow(deps: EngineDeps, user: User, path: string, options: WritePreconditions & { recursive?: boolean; signal?: AbortSignal }): Promise<Entry[]> {
  // Objects named after paths are deleted after the commit, still under the locks of
  // those paths: nobody can re-create one of them in between and lose it to the delete.
  const guarded = await pathKeyedPaths(deps, path, options.recursive === true);
  return deps.locks.withLock(
    [lockKey(path), ...[...guarded].map(lockKey)],
    async (signal) => {
      const removed = await retryRaces(RACE_ATTEMPTS, () => deps.store.transaction(async (tx) => {
        const { entry, parent } = await resolveExisting(tx, user, path);
        if (parent !== null) assertRemoveFromDirectory(user, parent, entry);
        if (entry.type === 'directory' && options.recursive === true && !isRoot(user)) await assertMayRemoveTree(tx, user, entry);
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
