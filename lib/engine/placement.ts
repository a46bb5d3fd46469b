import { createHash } from 'node:crypto';
import type { Backend } from '../backends/types.js';
import { isContentAddressed, isInstanceLocal, type BackendType } from '../backends/registry.js';
import type { ClusterView } from '../cluster/membership.js';
import { CallfsError } from '../errors.js';
import type { Entry } from '../metadata/types.js';

/**
 * Where a file's bytes live, and so where they are read from and written to:
 * the one place the engine decides it. A file's content is (sha256, size,
 * backend, blob id) plus the places that hold it: instances (for a backend
 * whose bytes are instance-local, the CAS) or a store every instance shares
 * (S3). An instance-local blob has the copies the metadata store records
 * (replication); the entry's `instanceId` is the one its reference is
 * counted on, its primary.
 */
export type Location = { readonly kind: 'instance'; readonly instanceId: string } | { readonly kind: 'shared'; readonly backend: BackendType };

/** A file's content and the places that hold it. */
export interface Content {
  sha256: string;
  size: number;
  backend: BackendType;
  blobId: string;
  locations: Location[];
}

/** What placement needs of the engine's dependencies. */
export interface PlacementDeps {
  /** This instance's id. */
  instanceId: string;
  /** The backends of this instance by type (its own CAS, the shared S3). */
  backends: Partial<Record<BackendType, Backend>>;
  /** The other instances of the cluster, each as a Backend over its instance-local bytes. */
  peers?: ReadonlyMap<string, Backend>;
  /** Backend of new files. */
  defaultBackend: BackendType;
  /** Replication: how many copies, and which instances are up (none: one copy, every configured instance up). */
  cluster?: ClusterView;
}

/** One place to read bytes from: the backend to ask and the location it stands for. */
export interface Source {
  backend: Backend;
  location: Location;
}

/** Where new bytes go: the backend to put them into, and what the entry records. */
export interface Target {
  type: BackendType;
  backend: Backend;
  /** The holder recorded on the entry (instance-local backends), or null (shared). */
  instanceId: string | null;
  location: Location;
}

/** The content of a file entry; null for a directory or a file without bytes. */
export function contentOf(entry: Entry): Content | null {
  if (entry.type !== 'file' || entry.backend === null || entry.blobId === null || entry.etag === null) return null;
  return { sha256: entry.etag, size: entry.size, backend: entry.backend, blobId: entry.blobId, locations: locationsOf(entry) };
}

/** The places that hold an entry's bytes (none for a directory). */
export function locationsOf(entry: Entry): Location[] {
  if (entry.type !== 'file' || entry.backend === null) return [];
  if (!isInstanceLocal(entry.backend)) return [{ kind: 'shared', backend: entry.backend }];
  return entry.instanceId === null ? [] : [{ kind: 'instance', instanceId: entry.instanceId }];
}

/** The instance holding an entry's instance-local bytes when that is another one; null otherwise. */
export function holderElsewhere(deps: PlacementDeps, entry: Entry): string | null {
  const here = locationsOf(entry).some((l) => l.kind !== 'instance' || l.instanceId === deps.instanceId);
  if (here) return null;
  const other = locationsOf(entry).find((l) => l.kind === 'instance');
  return other?.kind === 'instance' ? other.instanceId : null;
}

/** This instance's backend of a type (SERVICE_UNAVAILABLE when it is not configured here). */
export function localBackend(deps: PlacementDeps, type: BackendType): Backend {
  const backend = deps.backends[type];
  if (backend === undefined) throw new CallfsError('SERVICE_UNAVAILABLE', `the ${type} backend is not configured`, { retryAfterSeconds: 30, component: type });
  return backend;
}

/** The backend through which a location's bytes of `type` are reached from here. */
function backendAt(deps: PlacementDeps, type: BackendType, location: Location): Backend {
  if (location.kind === 'shared' || location.instanceId === deps.instanceId) return localBackend(deps, type);
  const peer = deps.peers?.get(location.instanceId);
  if (peer === undefined) {
    throw new CallfsError('BAD_GATEWAY', `the bytes are on instance ${location.instanceId}, which is not a configured peer`, { component: 'peer' });
  }
  return peer;
}

/** Whether `instanceId` is this instance or a configured peer. */
export function knowsInstance(deps: PlacementDeps, instanceId: string): boolean {
  return instanceId === deps.instanceId || deps.peers?.has(instanceId) === true;
}

/**
 * Where to read an entry's bytes from, best first: a copy on this instance
 * (or the shared store), then the other holders. BAD_GATEWAY when no holder
 * can be reached from here at all.
 */
export function readSources(deps: PlacementDeps, entry: Entry): Source[] {
  const content = contentOf(entry);
  if (content === null) throw new CallfsError('IS_A_DIRECTORY', `is a directory: ${entry.path}`);
  const here = (l: Location): boolean => l.kind === 'shared' || l.instanceId === deps.instanceId;
  const ordered = [...content.locations.filter(here), ...content.locations.filter((l) => !here(l))];
  if (ordered.length === 0) throw new CallfsError('INTERNAL_ERROR', `${entry.path} has no location for its bytes`);
  const sources: Source[] = [];
  let unreachable: unknown = null;
  for (const location of ordered) {
    try {
      sources.push({ backend: backendAt(deps, content.backend, location), location });
    } catch (err) {
      unreachable ??= err;
    }
  }
  if (sources.length === 0) throw unreachable;
  return sources;
}

/**
 * Where bytes of `type` go when written into `instanceId` (this instance by
 * default; instance-local backends only): this instance's backend, or the
 * peer. A shared backend is the same from everywhere.
 */
export function writeTarget(deps: PlacementDeps, type: BackendType, instanceId: string = deps.instanceId): Target {
  if (!isInstanceLocal(type)) return { type, backend: localBackend(deps, type), instanceId: null, location: { kind: 'shared', backend: type } };
  if (!knowsInstance(deps, instanceId)) throw new CallfsError('BAD_REQUEST', `no instance ${instanceId} in this cluster (this instance or a configured peer)`);
  const location: Location = { kind: 'instance', instanceId };
  return { type, backend: backendAt(deps, type, location), instanceId, location };
}

/**
 * Where the new content of a file written at a path goes: a replaced file
 * keeps its backend and its holder (the bytes stay where the file lives); a
 * new file goes to the default backend, on this instance. New content does
 * not depend on where the old one was: a holder that is no longer a
 * configured peer gets nothing, the bytes stay here.
 */
export function targetForWrite(deps: PlacementDeps, existing: Entry | null): Target {
  if (existing === null || existing.backend === null) return writeTarget(deps, deps.defaultBackend);
  const holder = isInstanceLocal(existing.backend) && existing.instanceId !== null && knowsInstance(deps, existing.instanceId) ? existing.instanceId : deps.instanceId;
  return writeTarget(deps, existing.backend, holder);
}

/**
 * True when targetForWrite's answer cannot depend on the file it replaces:
 * one backend and no other instance, so that new and replaced files go to
 * the same place and a write may be placed before the file is read.
 */
export function placementIgnoresExisting(deps: PlacementDeps): boolean {
  return (deps.peers === undefined || deps.peers.size === 0) && Object.keys(deps.backends).length === 1;
}

/** The instance-local backend type bytes are moved into when they move onto an instance. */
export function instanceLocalType(deps: PlacementDeps, preferred: BackendType | null): BackendType {
  if (preferred !== null && isInstanceLocal(preferred)) return preferred;
  const local = (Object.keys(deps.backends) as BackendType[]).find((t) => isInstanceLocal(t));
  if (local === undefined) throw new CallfsError('SERVICE_UNAVAILABLE', 'no instance-local backend is configured');
  return local;
}

/** A number in (0, 1) drawn from `key` and `id`, the same on every instance. */
function unitHash(key: string, id: string): number {
  const digest = createHash('sha256').update(key).update('\u0000').update(id).digest();
  return (Number(digest.readBigUInt64BE(0) >> 11n) + 0.5) / 2 ** 53;
}

/**
 * `ids` ranked for `key` by weighted rendezvous hashing (highest random
 * weight): every instance computes the same order, an instance joining or
 * leaving moves only the keys it wins or held, and an instance with more
 * free space wins proportionally more keys.
 */
export function rankInstances(key: string, ids: readonly string[], weight: (id: string) => number = () => 1): string[] {
  const score = (id: string): number => Math.max(weight(id), 1) / -Math.log(unitHash(key, id));
  return ids.map((id) => ({ id, s: score(id) })).sort((a, b) => b.s - a.s || (a.id < b.id ? -1 : 1)).map((x) => x.id);
}

/** Every instance of the cluster: this one and the configured peers. */
export function clusterInstances(deps: PlacementDeps): string[] {
  return [deps.instanceId, ...(deps.peers?.keys() ?? [])];
}

/**
 * Where the new content of a file goes when it is replicated: `replicas`
 * distinct instances that take copies, this one first when it does (the
 * body arrives here: no store-then-forward), the others ranked for `key` by
 * rendezvous hashing weighted by free space. Without replication, the one
 * target of targetForWrite. May return fewer targets than `replicas` when
 * fewer instances are up; the caller decides whether that is enough.
 */
export function targetsForWrite(deps: PlacementDeps, existing: Entry | null, key: string): Target[] {
  const first = targetForWrite(deps, existing);
  const view = deps.cluster;
  if (view === undefined || view.replicas <= 1 || first.instanceId === null || !isContentAddressed(first.type)) return [first];
  const candidates = clusterInstances(deps).filter((id) => view.takesCopies(id));
  const ranked = rankInstances(key, candidates.filter((id) => id !== deps.instanceId), (id) => view.freeBytes(id));
  const chosen = (candidates.includes(deps.instanceId) ? [deps.instanceId, ...ranked] : ranked).slice(0, view.replicas);
  return chosen.map((id) => writeTarget(deps, first.type, id));
}
