import type { Backend } from '../backends/types.js';
import type { LockManager } from '../locks/types.js';
import type { BackendType, Entry, MetadataOps, MetadataStore } from '../metadata/types.js';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import type { RemoteBytes } from '../backends/proxy/remote-bytes.js';
import type { User } from '../auth/users.js';
import { assertSearchPath } from '../auth/permissions.js';
import { CallfsError, notFound } from '../errors.js';
import { parentOf } from '../paths.js';

/** What every use case needs; built once in cmd/ and passed in. */
export interface EngineDeps {
  store: MetadataStore;
  locks: LockManager;
  /** Backends by type; 'cas' is always present. */
  backends: Partial<Record<BackendType, Backend>> & { cas: Backend };
  /** Backend for new files. */
  defaultBackend: BackendType;
  /** This instance's id (recorded on entries whose bytes are instance-local). */
  instanceId: string;
  /** Largest accepted upload in bytes. */
  maxUploadBytes: number;
  /** Bytes of CAS files held by other instances (the peer proxy); absent without peers. */
  remote?: RemoteBytes;
  logger: Logger;
  /** callfs_file_operations_total, counted where the use cases are bound (index.ts). */
  metrics?: Pick<Metrics, 'fileOperations'>;
}

/** The instance holding an entry's bytes when that is another instance (instance-local backends only). */
export function heldElsewhere(deps: EngineDeps, entry: Entry): string | null {
  return entry.type === 'file' && CONTENT_ADDRESSED.has(entry.backend as BackendType) && entry.instanceId !== null && entry.instanceId !== deps.instanceId ? entry.instanceId : null;
}

/** Backends whose ids are content hashes: uploads can run before the path lock is taken. */
export const CONTENT_ADDRESSED: ReadonlySet<BackendType> = new Set(['cas']);

/** The lock key of a path. */
export const lockKey = (path: string): string => `path:${path}`;

export function backendOf(deps: EngineDeps, type: BackendType): Backend {
  const backend = deps.backends[type];
  if (backend === undefined) throw new CallfsError('SERVICE_UNAVAILABLE', `the ${type} backend is not configured`, { retryAfterSeconds: 30 });
  return backend;
}

/** A path resolved against the namespace: the existing ancestors and the entry, if any. */
export interface Resolved {
  path: string;
  /** Existing ancestor directories, root first (all of them when the entry exists). */
  ancestors: Entry[];
  /** The entry at `path`, or null. */
  entry: Entry | null;
  /** True when every ancestor exists (the parent is ancestors' last element). */
  parentExists: boolean;
}

/**
 * Look a path up in one round trip and apply the checks every operation shares:
 * an ancestor that is a file → NOT_A_DIRECTORY; no search (x) permission on an
 * existing ancestor → PERMISSION_DENIED.
 */
export async function resolve(ops: MetadataOps, user: User, path: string): Promise<Resolved> {
  const chain = await ops.getChain(path);
  const last = chain[chain.length - 1];
  const entry = last !== undefined && last.path === path && path !== '/' ? last : null;
  const ancestors = path === '/' ? [] : entry === null ? chain : chain.slice(0, -1);
  const blocker = ancestors.find((a) => a.type !== 'directory');
  if (blocker !== undefined) throw new CallfsError('NOT_A_DIRECTORY', `not a directory: ${blocker.path}`);
  assertSearchPath(user, ancestors);
  const parent = ancestors[ancestors.length - 1];
  return { path, ancestors, entry, parentExists: parent !== undefined && parent.path === parentOf(path) };
}

/** As resolve, but the entry must exist (FILE_NOT_FOUND otherwise). The root resolves to itself. */
export async function resolveExisting(ops: MetadataOps, user: User, path: string): Promise<{ entry: Entry; parent: Entry | null; ancestors: Entry[] }> {
  if (path === '/') {
    const root = await ops.get('/');
    if (root === null) throw notFound('/');
    return { entry: root, parent: null, ancestors: [] };
  }
  const r = await resolve(ops, user, path);
  if (r.entry === null) throw notFound(path);
  return { entry: r.entry, parent: r.ancestors[r.ancestors.length - 1] ?? null, ancestors: r.ancestors };
}

/** Strong ETag comparison for If-Match ("*" matches any existing entry). */
export function etagMatches(header: string, entry: Entry | null): boolean {
  if (entry === null) return false;
  if (header.trim() === '*') return true;
  const tags = header.split(',').map((t) => t.trim().replace(/^W\//, '').replace(/^"|"$/g, ''));
  return entry.etag !== null && tags.includes(entry.etag);
}

/** Preconditions a client can attach to a write. */
export interface WritePreconditions {
  /** If-Match header value. */
  ifMatch?: string;
  /** If-Unmodified-Since as a date. */
  ifUnmodifiedSince?: Date;
}

/** PRECONDITION_FAILED unless the entry satisfies the client's preconditions. */
export function checkPreconditions(entry: Entry | null, pre: WritePreconditions): void {
  if (pre.ifMatch !== undefined && !etagMatches(pre.ifMatch, entry)) {
    throw new CallfsError('PRECONDITION_FAILED', 'If-Match does not match the current ETag');
  }
  if (pre.ifUnmodifiedSince !== undefined && entry !== null && Math.floor(entry.mtime.getTime() / 1000) > Math.floor(pre.ifUnmodifiedSince.getTime() / 1000)) {
    throw new CallfsError('PRECONDITION_FAILED', 'modified since If-Unmodified-Since');
  }
}
