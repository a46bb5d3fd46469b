import type { User } from '../auth/users.js';
import { assertAccess } from '../auth/permissions.js';
import type { Backend, PutResult } from '../backends/types.js';
import { isContentAddressed, isInstanceLocal, type BackendType } from '../backends/registry.js';
import { CallfsError } from '../errors.js';
import type { Entry, MetadataOps } from '../metadata/types.js';
import { checkPreconditions, lockKey, raced, resolveExisting, retryRaces, type EngineDeps, type WritePreconditions } from './context.js';
import { contentOf, instanceLocalType, localBackend, locationsOf, readSources, writeTarget, type Content, type Target } from './placement.js';

export interface TransferOptions extends WritePreconditions {
  signal?: AbortSignal;
}

/** Where a file's bytes are to go: a backend, and for an instance-local one the instance (this one by default). */
export interface Destination {
  backend?: BackendType;
  instanceId?: string;
}

/** The file at `path`, checked for moving its bytes: it exists, is a file, and the user may write it. */
export async function inspectMovableFile(ops: MetadataOps, user: User, path: string, options: WritePreconditions): Promise<Entry> {
  const { entry } = await resolveExisting(ops, user, path);
  if (entry.type !== 'file') throw new CallfsError('BAD_REQUEST', `${path} is a directory: only a file's bytes can be moved`);
  assertAccess(user, { ...entry, path }, 'w');
  checkPreconditions(entry, options);
  return entry;
}

/** The target of a destination for `entry`: `backend` on this instance, or `instanceId`'s instance-local backend. */
function targetOf(deps: EngineDeps, entry: Entry, to: Destination): Target {
  if (to.instanceId !== undefined) {
    const type = instanceLocalType(deps, to.backend ?? entry.backend);
    if (to.backend !== undefined && !isInstanceLocal(to.backend)) throw new CallfsError('BAD_REQUEST', `bytes moved onto an instance cannot be on ${to.backend}, which every instance shares`);
    return writeTarget(deps, type, to.instanceId);
  }
  const type = to.backend ?? entry.backend;
  if (type === null) throw new CallfsError('INTERNAL_ERROR', `${entry.path} has no backend`);
  if (deps.backends[type] === undefined) throw new CallfsError('BAD_REQUEST', `the ${type} backend is not configured on this server`);
  return writeTarget(deps, type);
}

/** Whether the entry's bytes are already where the target would put them. */
function alreadyThere(entry: Entry, target: Target): boolean {
  if (entry.backend !== target.type) return false;
  return locationsOf(entry).some((l) => (l.kind === 'shared' ? target.location.kind === 'shared' : target.location.kind === 'instance' && l.instanceId === target.location.instanceId));
}

/**
 * Move a file's bytes to another place — another backend (PATCH
 * {"backend": …}) or another instance (PATCH {"instance": …}) — streaming
 * from wherever placement reads them (this instance, a peer, S3) into the
 * target (this instance's backend, or a peer's through the peer proxy) under
 * the path's lock. The entry is switched (backend, blobId, holder, etag) in
 * one update against the version that was read, and only once the copy is
 * complete and its SHA-256 equals the entry's ETag: until then readers get
 * the old bytes, and a failure leaves the file as it was (a partial
 * path-keyed copy is deleted). After the switch the old bytes go: a
 * path-keyed object is deleted, content-addressed bytes lose a reference and
 * their collector reclaims them. Bytes already there change nothing.
 */
export async function moveBytes(deps: EngineDeps, user: User, path: string, to: Destination, options: TransferOptions = {}): Promise<Entry> {
  const before = await inspectMovableFile(deps.store, user, path, options);
  if (alreadyThere(before, targetOf(deps, before, to))) return before;
  // A path-keyed source whose key names another path (see follow-keys.ts): its writers must wait too.
  const keys = [lockKey(path), ...keyPathLocks(deps, before, path)];
  return deps.locks.withLock(
    keys,
    // A lost race (the file was replaced meanwhile) moves the new content instead, from the start.
    (signal) => retryRaces(MOVE_ATTEMPTS, () => moveOnce(deps, user, path, to, options, signal)),
    options.signal === undefined ? {} : { signal: options.signal },
  );
}

/** Moves of a file's bytes begun again after a concurrent PUT replaced the file under them. */
const MOVE_ATTEMPTS = 3;

async function moveOnce(deps: EngineDeps, user: User, path: string, to: Destination, options: TransferOptions, signal: AbortSignal): Promise<Entry> {
  const entry = await inspectMovableFile(deps.store, user, path, options);
  const target = targetOf(deps, entry, to);
  if (alreadyThere(entry, target)) return entry;
  const content = contentOf(entry);
  if (content === null || entry.backend === null) throw new CallfsError('INTERNAL_ERROR', `${path} has no stored bytes to move`);
  const stored = await copyBytes(deps, entry, content, target, signal);
  let updated: Entry;
  try {
    updated = await deps.store.transaction(async (tx) => {
      // The path lock keeps out every writer but a content-addressed PUT (it takes none): one that
      // replaced the file meanwhile wins, and the copy of the old content is not switched in.
      const result = await tx.update(path, entry.version, { backend: target.type, blobId: stored.id, etag: stored.sha256, size: stored.size, instanceId: target.instanceId }).catch(raced(['PRECONDITION_FAILED', 'FILE_NOT_FOUND']));
      signal.throwIfAborted();
      return result;
    });
  } catch (err) {
    await dropCopy(deps, target, stored.id);
    throw err;
  } finally {
    stored.release?.();
  }
  if (!isContentAddressed(entry.backend) && !(target.type === entry.backend && stored.id === content.blobId)) {
    const old = localBackend(deps, entry.backend);
    await old.delete(content.blobId).catch((err: unknown) => deps.logger.warn({ err, path, backend: entry.backend, id: content.blobId }, 'could not delete the old bytes of a file moved elsewhere; they are orphaned'));
  }
  return updated;
}

/** The lock of the path a path-keyed entry's object key names, when that is not the entry's own path. */
function keyPathLocks(deps: EngineDeps, entry: Entry, path: string): string[] {
  if (entry.backend === null || entry.blobId === null) return [];
  const keyPath = deps.backends[entry.backend]?.pathKeys?.pathOf(entry.blobId) ?? null;
  return keyPath === null || keyPath === path ? [] : [lockKey(keyPath)];
}

/** Stream the entry's bytes from where they are into the target; the copy must hash to the entry's ETag. */
async function copyBytes(deps: EngineDeps, entry: Entry, content: Content, target: Target, signal: AbortSignal): Promise<PutResult> {
  let opened: Awaited<ReturnType<Backend['open']>> | null = null;
  let failure: unknown = null;
  // A whole read: backends that can verify it against the sha256 do so while it streams.
  for (const source of readSources(deps, entry)) {
    try {
      opened = await source.backend.open(content.blobId, { signal, sha256: content.sha256 });
      break;
    } catch (err) {
      failure = err;
    }
  }
  if (opened === null) throw failure;
  const stored = await target.backend.put(opened.stream, { key: entry.path, signal });
  if (stored.sha256 !== content.sha256 || stored.size !== content.size) {
    stored.release?.();
    await dropCopy(deps, target, stored.id);
    throw new CallfsError('INTEGRITY_ERROR', `the bytes of ${entry.path} read back as sha256 ${stored.sha256} (${stored.size} bytes), not ${content.sha256} (${content.size} bytes)`);
  }
  return stored;
}

/** Delete a copy that no entry will use. Content-addressed copies are left to their collector. */
async function dropCopy(deps: EngineDeps, target: Target, id: string): Promise<void> {
  if (isContentAddressed(target.type)) return;
  await target.backend.delete(id).catch((err: unknown) => deps.logger.warn({ err, id, backend: target.type }, 'could not delete an unused copy; it is orphaned'));
}
