import type { User } from '../auth/users.js';
import { assertAccess } from '../auth/permissions.js';
import { isPathKeyed } from '../backends/s3/types.js';
import type { Backend, PutResult } from '../backends/types.js';
import { CallfsError } from '../errors.js';
import type { BackendType, Entry, MetadataOps } from '../metadata/types.js';
import { CONTENT_ADDRESSED, backendOf, checkPreconditions, heldElsewhere, lockKey, resolveExisting, type EngineDeps, type WritePreconditions } from './context.js';

export interface TransferOptions extends WritePreconditions {
  signal?: AbortSignal;
}

/** The file at `path`, checked for moving its bytes: it exists, is a file, and the user may write it. */
export async function inspectMovableFile(ops: MetadataOps, user: User, path: string, options: WritePreconditions): Promise<Entry> {
  const { entry } = await resolveExisting(ops, user, path);
  if (entry.type !== 'file') throw new CallfsError('BAD_REQUEST', `${path} is a directory: only a file's bytes can be moved`);
  checkPreconditions(entry, options);
  assertAccess(user, { ...entry, path }, 'w');
  return entry;
}

/** Bytes on another instance's CAS cannot be read here: the request belongs to that instance. */
function assertLocal(deps: EngineDeps, entry: Entry): void {
  const holder = heldElsewhere(deps, entry);
  if (holder !== null) {
    throw new CallfsError('CROSS_SERVER_CONFLICT', `the bytes of ${entry.path} are on instance ${holder}; send the request to it`, { details: { existing_path: entry.path, instance_id: holder, backend_type: entry.backend } });
  }
}

/**
 * Move a file's bytes to another backend (PATCH {"backend": …}), streaming
 * from the old backend into the new one under the path's lock. The entry
 * is switched (backend, blobId, instance, etag) in one update against the
 * version that was read, and only after the copy is complete and its
 * SHA-256 equals the entry's ETag: until then readers get the old bytes,
 * and a failure leaves the file as it was (a partial copy is deleted).
 * After the switch the old bytes go: an S3 object is deleted, CAS bytes
 * lose a reference (the store counts) and their collector reclaims them.
 * Moving to the backend the file is already on changes nothing.
 */
export async function transferFile(deps: EngineDeps, user: User, path: string, target: BackendType, options: TransferOptions = {}): Promise<Entry> {
  const targetBackend = deps.backends[target];
  if (targetBackend === undefined) throw new CallfsError('BAD_REQUEST', `the ${target} backend is not configured on this server`);
  const before = await inspectMovableFile(deps.store, user, path, options);
  if (before.backend === target) return before;
  assertLocal(deps, before);
  // A path-keyed source whose key names another path (see follow-keys.ts): its writers must wait too.
  const source = before.backend === null ? null : (deps.backends[before.backend] ?? null);
  const keyPath = source !== null && before.blobId !== null && isPathKeyed(source) ? source.pathOf(before.blobId) : null;
  const keys = [lockKey(path), ...(keyPath === null || keyPath === path ? [] : [lockKey(keyPath)])];
  return deps.locks.withLock(
    keys,
    async (signal) => {
      const entry = await inspectMovableFile(deps.store, user, path, options);
      if (entry.backend === target) return entry;
      assertLocal(deps, entry);
      if (entry.backend === null || entry.blobId === null || entry.etag === null) throw new CallfsError('INTERNAL_ERROR', `${path} has no stored bytes to move`);
      const from = backendOf(deps, entry.backend);
      const stored = await copyBytes(from, targetBackend, entry, signal);
      let updated: Entry;
      try {
        updated = await deps.store.transaction(async (tx) => {
          const result = await tx.update(path, entry.version, {
            backend: target,
            blobId: stored.id,
            etag: stored.sha256,
            size: stored.size,
            instanceId: CONTENT_ADDRESSED.has(target) ? deps.instanceId : null,
          });
          signal.throwIfAborted();
          return result;
        });
      } catch (err) {
        await dropCopy(deps, targetBackend, target, stored.id);
        throw err;
      } finally {
        stored.release?.();
      }
      if (!CONTENT_ADDRESSED.has(entry.backend)) {
        await from.delete(entry.blobId).catch((err: unknown) => deps.logger.warn({ err, path, backend: entry.backend, id: entry.blobId }, 'could not delete the old bytes of a file moved to another backend; they are orphaned'));
      }
      return updated;
    },
    options.signal === undefined ? {} : { signal: options.signal },
  );
}

/** Stream the entry's bytes from one backend into the other; the copy must hash to the entry's ETag. */
async function copyBytes(from: Backend, to: Backend, entry: Entry, signal: AbortSignal): Promise<PutResult> {
  const blobId = entry.blobId as string;
  const etag = entry.etag as string;
  // A whole read: backends that can verify it against the sha256 do so while it streams.
  const opened = await from.open(blobId, { signal, sha256: etag });
  const stored = await to.put(opened.stream, { key: entry.path, signal });
  if (stored.sha256 !== etag || stored.size !== entry.size) {
    stored.release?.();
    if (!CONTENT_ADDRESSED.has(to.type as BackendType)) await to.delete(stored.id).catch(() => undefined);
    throw new CallfsError('INTEGRITY_ERROR', `the bytes of ${entry.path} read back as sha256 ${stored.sha256} (${stored.size} bytes), not ${etag} (${entry.size} bytes)`);
  }
  return stored;
}

/** Delete a copy that no entry will use. Content-addressed copies are left to their collector. */
async function dropCopy(deps: EngineDeps, backend: Backend, type: BackendType, id: string): Promise<void> {
  if (CONTENT_ADDRESSED.has(type)) return;
  await backend.delete(id).catch((err: unknown) => deps.logger.warn({ err, id, backend: type }, 'could not delete an unused copy; it is orphaned'));
}
