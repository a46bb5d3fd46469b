import type { Readable } from 'node:stream';
import type { BlobStat, ByteRange, OpenResult, PutResult } from '../backends/types.js';
import { isContentAddressed } from '../backends/registry.js';
import { CallfsError } from '../errors.js';
import type { EngineDeps } from './context.js';
import { instanceLocalType, localBackend } from './placement.js';
import { assertUploadFits } from './write.js';

/**
 * This instance's instance-local bytes as its peers reach them: the other
 * side of the peer proxy backend (lib/backends/proxy/peer-backend.ts), served
 * by the internal routes. Blobs only, named by their hash: the instance that
 * asks has already checked the caller's permissions against the shared
 * metadata, and it records where the bytes went.
 */

/**
 * How long bytes stored for a peer stay pinned against this instance's
 * collector: the peer commits the entry naming them after its put returns,
 * and may first wait for the path's lock there. Pins only delay collection,
 * so a generous bound costs nothing.
 */
export const PEER_PIN_LEASE_MS = 5 * 60 * 1000;

const notContentId = (id: string): CallfsError => new CallfsError('BAD_REQUEST', `not a blob id: ${JSON.stringify(id)}`);

/** Store a peer's upload in this instance's instance-local backend; PAYLOAD_TOO_LARGE past the upload limit. */
export async function storeBlob(deps: EngineDeps, body: Readable, options: { length?: number; signal?: AbortSignal } = {}): Promise<PutResult> {
  let backend;
  try {
    assertUploadFits(deps, options.length);
    backend = localBackend(deps, instanceLocalType(deps, null));
  } catch (err) {
    body.resume();
    throw err;
  }
  const stored = await backend.put(body, {
    maxBytes: deps.maxUploadBytes,
    ...(options.length === undefined ? {} : { expectedSize: options.length }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  const { release } = stored;
  if (release !== undefined) setTimeout(release, PEER_PIN_LEASE_MS).unref();
  return { id: stored.id, size: stored.size, sha256: stored.sha256 };
}

function blobBackend(deps: EngineDeps, id: string) {
  const type = instanceLocalType(deps, null);
  if (!isContentAddressed(type) || !/^[0-9a-f]{64}$/.test(id)) throw notContentId(id);
  return localBackend(deps, type);
}

/** Open a blob of this instance by id (its sha256, so a whole read is verified against it). */
export function openBlob(deps: EngineDeps, id: string, options: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<OpenResult> {
  return blobBackend(deps, id).open(id, { sha256: id, ...(options.range === undefined ? {} : { range: options.range }), ...(options.signal === undefined ? {} : { signal: options.signal }) });
}

/** The size of a blob of this instance, or null. */
export function statBlob(deps: EngineDeps, id: string, options: { signal?: AbortSignal } = {}): Promise<BlobStat | null> {
  return blobBackend(deps, id).stat(id, options);
}

/**
 * Drop this instance's copy of a blob (rebalancing, asked by the repairer,
 * which made sure enough copies exist elsewhere): the record first, so that
 * readers stop coming here, then the bytes. False when a put is using the
 * blob right now; a put that records it again makes it a copy again.
 */
export async function evictBlob(deps: EngineDeps, id: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
  const backend = blobBackend(deps, id);
  if (backend.evict === undefined) throw new CallfsError('BAD_REQUEST', 'this store cannot drop single copies');
  await deps.store.cluster.dropCopy(deps.instanceId, id);
  return backend.evict(id, options);
}
