import type { Backend, PathKeys } from '../backends/types.js';
import type { BackendType } from '../backends/registry.js';
import { CallfsError } from '../errors.js';
import type { Entry, MetadataOps, MetadataStore } from '../metadata/types.js';
import { lockKey, type EngineDeps } from './context.js';

/**
 * S3 keys follow paths (lib/backends/s3/keys.ts), so a rename or move of S3
 * files must move their objects too. The scheme, chosen so that an entry's
 * blobId names an object that exists at every moment and no writer can
 * overwrite an object an entry still uses:
 *
 * 1. Plan: list the S3 files being moved; lock, besides the move's own two
 *    paths, the old and new path of each of them (writers of a path upload
 *    to that path's key under that path's lock). Re-list under the locks
 *    and start over if a file appeared in between.
 * 2. Dry run: the metadata move in a transaction that is rolled back, so a
 *    move that would be refused (permissions, conflicts) copies nothing.
 * 3. Copy each object server-side to its new key. Nothing refers to the
 *    new keys yet (nothing lives at the new paths), so a failure here just
 *    deletes the copies made so far and the move fails (503 when S3 is down):
 *    nothing changed.
 * 4. One transaction: the metadata move and every moved entry's blobId set
 *    to its new key. If it fails, the copies are deleted.
 * 5. After the commit, delete the old keys (a failure leaves an orphan
 *    object, logged, never a dangling entry).
 *
 * Exception: a file moved onto an existing S3 file (overwrite). Copying
 * first would destroy the destination's bytes before the move is decided, so
 * the move commits with the old key, and the copy, the blobId update and the
 * delete of the old key follow under the same locks. Should S3 fail in that
 * window, the entry keeps pointing at its (intact) old key, which is logged.
 *
 * A move carries at most MAX_FOLLOWED_OBJECTS S3 files: each is a copy made
 * while the locks are held.
 */
export const MAX_FOLLOWED_OBJECTS = 10_000;

/** Attempts to lock a tree whose S3 files keep changing under us. */
const PLAN_ATTEMPTS = 3;

/** One S3 file a move carries: where it is, where it goes, its key now and its key to be. */
export interface Follower {
  from: string;
  to: string;
  oldId: string;
  newId: string;
}

/** The metadata part of a move: modify.ts's checks and tx.move, run inside a transaction. */
export type MoveCommit = (tx: MetadataOps, signal: AbortSignal) => Promise<{ entry: Entry; replaced: Entry | null }>;

/** A configured backend that names its objects after paths (S3), with its type. */
type PathKeyedBackend = Backend & { readonly pathKeys: PathKeys; readonly type: BackendType };

/**
 * The configured backend that names objects after paths, if any. One at a
 * time: moves follow the keys of that backend's files (a second one would
 * need its own followers).
 */
function pathKeyedBackend(deps: EngineDeps): PathKeyedBackend | null {
  const keyed = Object.values(deps.backends).filter((b): b is PathKeyedBackend => b?.pathKeys !== undefined);
  if (keyed.length > 1) throw new CallfsError('INTERNAL_ERROR', 'moves follow the keys of one path-addressed backend; several are configured');
  return keyed[0] ?? null;
}

/** The path-keyed files at or under `from`, with their keys at `to`. */
async function planFollowers(ops: MetadataOps, s3: PathKeyedBackend, from: string, to: string): Promise<Follower[]> {
  const root = await ops.get(from);
  if (root === null) return [];
  const followers: Follower[] = [];
  const add = (e: Entry): void => {
    if (e.type !== 'file' || e.backend !== s3.type || e.blobId === null) return;
    if (followers.length >= MAX_FOLLOWED_OBJECTS) {
      throw new CallfsError('BAD_REQUEST', `${from} holds more than ${MAX_FOLLOWED_OBJECTS} S3 files; move its subdirectories one at a time`);
    }
    const dest = to + e.path.slice(from.length);
    followers.push({ from: e.path, to: dest, oldId: e.blobId, newId: s3.pathKeys.keyOf(dest) });
  };
  if (root.type === 'file') add(root);
  else for await (const e of ops.listRecursive(from, { maxDepth: Number.MAX_SAFE_INTEGER })) add(e);
  return followers;
}

/** The paths whose writers could touch a follower's objects: its old path, its new path, and the path its key names. */
function lockKeysOf(s3: PathKeyedBackend, followers: Follower[]): string[] {
  return followers.flatMap((f) => {
    const keyPath = s3.pathKeys.pathOf(f.oldId);
    return [lockKey(f.from), lockKey(f.to), ...(keyPath === null ? [] : [lockKey(keyPath)])];
  });
}

const RETRY = Symbol('retry');

/**
 * Run a move (see modify.ts) so that the S3 objects of the moved files follow
 * their paths. `baseKeys` are the move's own lock keys; `commit` its
 * metadata work. Without an S3 backend this is just the locked transaction.
 */
export async function moveFollowingKeys(deps: EngineDeps, from: string, to: string, baseKeys: string[], commit: MoveCommit, signal?: AbortSignal): Promise<Entry> {
  const lockOptions = signal === undefined ? {} : { signal };
  const s3 = pathKeyedBackend(deps);
  if (s3 === null || from === to) {
    return deps.locks.withLock(baseKeys, async (held) => (await deps.store.transaction((tx) => commit(tx, held))).entry, lockOptions);
  }
  for (let attempt = 1; attempt <= PLAN_ATTEMPTS; attempt++) {
    const planned = await planFollowers(deps.store, s3, from, to);
    const keys = [...new Set([...baseKeys, ...lockKeysOf(s3, planned)])];
    const result = await deps.locks.withLock(
      keys,
      async (held) => {
        const followers = await planFollowers(deps.store, s3, from, to);
        const locked = new Set(keys);
        if (!lockKeysOf(s3, followers).every((k) => locked.has(k))) return RETRY;
        return moveLocked(deps, s3, { from, to, followers, commit, signal: held });
      },
      lockOptions,
    );
    if (result !== RETRY) return result;
  }
  throw new CallfsError('LOCKED', `the files under ${from} kept changing while the move waited for them; retry`);
}

interface LockedMove {
  from: string;
  to: string;
  followers: Follower[];
  commit: MoveCommit;
  signal: AbortSignal;
}

async function moveLocked(deps: EngineDeps, s3: PathKeyedBackend, move: LockedMove): Promise<Entry> {
  const { store, logger } = deps;
  const { followers, commit, signal } = move;
  const dest = await store.get(move.to);
  const deferred = dest !== null && dest.type === 'file' && dest.backend === s3.type;
  const copying = deferred ? [] : followers.filter((f) => f.oldId !== f.newId);
  const copied: string[] = [];
  let moved: { entry: Entry; replaced: Entry | null };
  try {
    if (copying.length > 0) {
      await dryRun(store, (tx) => commit(tx, signal));
      for (const f of copying) {
        await s3.pathKeys.copy(f.oldId, f.newId, { signal });
        copied.push(f.newId);
      }
    }
    moved = await store.transaction(async (tx) => {
      const result = await commit(tx, signal);
      let entry = result.entry;
      for (const f of copying) {
        const current = await tx.get(f.to);
        // Every moved path is locked: anything else means the plan is stale.
        if (current === null || current.backend !== s3.type || current.blobId !== f.oldId) throw new CallfsError('PRECONDITION_FAILED', `${f.from} changed during the move; retry`);
        const updated = await tx.update(f.to, current.version, { blobId: f.newId });
        if (f.to === move.to) entry = updated;
      }
      signal.throwIfAborted();
      return { entry, replaced: result.replaced };
    });
  } catch (err) {
    for (const id of copied) await s3.delete(id).catch((e: unknown) => logger.warn({ err: e, id }, 'could not delete the copy of an S3 object after a failed move; it is orphaned'));
    throw err;
  }
  for (const f of copying) {
    await s3.delete(f.oldId).catch((err: unknown) => logger.warn({ err, id: f.oldId, path: f.to }, 'could not delete the old key of a moved S3 file; it is orphaned'));
  }
  let entry = moved.entry;
  if (deferred) entry = await followAfterCommit(deps, s3, followers, move.to, entry);
  const replaced = moved.replaced;
  if (replaced !== null && replaced.type === 'file' && replaced.backend === s3.type && replaced.blobId !== null && !followers.some((f) => f.newId === replaced.blobId)) {
    await s3.delete(replaced.blobId).catch((err: unknown) => logger.warn({ err, id: replaced.blobId }, 'could not delete the object of a replaced S3 file; it is orphaned'));
  }
  return entry;
}

/** The metadata move in a transaction that never commits: refusals surface before any copy. */
async function dryRun(store: MetadataStore, work: (tx: MetadataOps) => Promise<unknown>): Promise<void> {
  // A CallfsError, so that the store rethrows it as it is.
  const rollback = new CallfsError('INTERNAL_ERROR', 'dry run: rolled back on purpose');
  try {
    await store.transaction(async (tx) => {
      await work(tx);
      throw rollback;
    });
  } catch (err) {
    if (err !== rollback) throw err;
  }
}

/** The deferred case: the move committed with the old key; now copy, re-point, delete. */
async function followAfterCommit(deps: EngineDeps, s3: PathKeyedBackend, followers: Follower[], to: string, entry: Entry): Promise<Entry> {
  let result = entry;
  for (const f of followers) {
    if (f.oldId === f.newId) continue;
    try {
      await s3.pathKeys.copy(f.oldId, f.newId);
      const updated = await deps.store.transaction(async (tx) => {
        const current = await tx.get(f.to);
        if (current === null || current.blobId !== f.oldId) return null;
        return tx.update(f.to, current.version, { blobId: f.newId });
      });
      if (updated === null) continue;
      if (f.to === to) result = updated;
      await s3.delete(f.oldId).catch((err: unknown) => deps.logger.warn({ err, id: f.oldId }, 'could not delete the old key of a moved S3 file; it is orphaned'));
    } catch (err) {
      deps.logger.error({ err, path: f.to, id: f.oldId }, 'an S3 file was moved but its object is still under its old key; a later write to the old path would overwrite it');
    }
  }
  return result;
}
