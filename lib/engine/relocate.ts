import type { Readable } from 'node:stream';
import type { User } from '../auth/users.js';
import { CallfsError } from '../errors.js';
import type { Entry } from '../metadata/types.js';
import { backendOf, heldElsewhere, lockKey, type EngineDeps, type WritePreconditions } from './context.js';
import { inspectMovableFile } from './transfer.js';

/**
 * Bring a file's bytes into this instance's CAS (PATCH {"instance": <this
 * instance>}): streamed from wherever they are — another instance's CAS
 * through the peer proxy, S3, or already here — and switched in one update
 * against the version that was read, once the copy hashes to the entry's
 * ETag. The old holder's blob loses its reference (its collector reclaims
 * it); an old S3 object is deleted after the switch.
 */
export async function relocateHere(deps: EngineDeps, user: User, path: string, options: WritePreconditions & { signal?: AbortSignal } = {}): Promise<Entry> {
  const first = await inspectMovableFile(deps.store, user, path, options);
  if (first.backend === 'cas' && heldElsewhere(deps, first) === null) return first;
  return deps.locks.withLock(
    [lockKey(path)],
    async (signal) => {
      const entry = await inspectMovableFile(deps.store, user, path, options);
      const holder = heldElsewhere(deps, entry);
      if (entry.backend === 'cas' && holder === null) return entry;
      if (entry.backend === null || entry.blobId === null || entry.etag === null) throw new CallfsError('INTERNAL_ERROR', `${path} has no stored bytes to move`);
      let source: Readable;
      if (holder !== null) {
        if (deps.remote === undefined) throw new CallfsError('BAD_GATEWAY', `instance ${holder} holds ${path} but is not a configured peer`, { component: 'peer' });
        source = await deps.remote.open(entry, { onBehalfOf: user.name, signal });
      } else {
        source = (await backendOf(deps, entry.backend).open(entry.blobId, { sha256: entry.etag, signal })).stream;
      }
      const stored = await deps.backends.cas.put(source, { signal });
      let updated: Entry;
      try {
        if (stored.sha256 !== entry.etag || stored.size !== entry.size) {
          throw new CallfsError('INTEGRITY_ERROR', `the bytes of ${path} arrived as sha256 ${stored.sha256}, not ${entry.etag}`);
        }
        updated = await deps.store.transaction(async (tx) => {
          const result = await tx.update(path, entry.version, { backend: 'cas', blobId: stored.id, etag: stored.sha256, size: stored.size, instanceId: deps.instanceId });
          signal.throwIfAborted();
          return result;
        });
      } finally {
        stored.release?.();
      }
      if (entry.backend !== 'cas') {
        await backendOf(deps, entry.backend).delete(entry.blobId).catch((err: unknown) => deps.logger.warn({ err, path, backend: entry.backend }, 'could not delete the old bytes of a relocated file; they are orphaned'));
      }
      return updated;
    },
    options.signal === undefined ? {} : { signal: options.signal },
  );
}
