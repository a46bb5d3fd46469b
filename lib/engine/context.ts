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

/**
 * CROSS_SERVER_CONFLICT for a create onto `entry`, whose bytes `holder` keeps.
 * Thrown only after the caller passed every permission check of the create.
 */
export function crossServerConflict(entry: Entry, holder: string): CallfsError {
  return new CallfsError('CROSS_SERVER_CONFLICT', `${entry.path} exists on instance ${holder}`, {
    details: {
      existing_path: entry.path,
      instance_id: holder,
      backend_type: entry.backend,
      suggestion: 'use PUT to replace its content (it is forwarded to the instance that holds it), or choose another path',
    },
  });
}

/** Backends whose ids are content hashes: uploads can run before the path lock is taken. */
export const CONTENT_ADDRESSED: ReadonlySet<BackendType> = new Set(['cas']);

/** The lock key of a path. */
export const lockKey = (path: string): string => `path:${path}`;

export function backendOf(deps: EngineDeps, type: BackendType): Backend {
  const backend = deps.backends[type];
  if (backend === undefined) throw new CallfsError('SERVICE_UNAVAILABLE', `the ${type} backend is not configured`, { retryAfterSeconds: 30, component: type === 's3' ? 's3' : 'cas' });
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
 * Look a path up in one round trip and walk it from the root as path
 * resolution does: an existing directory the user may not search →
 * PERMISSION_DENIED naming that directory, whatever lies behind it (so a
 * hidden tree reveals nothing, not even that something in it is a file); an
 * ancestor that is a file, reached through searchable directories only →
 * NOT_A_DIRECTORY.
 */
export async function resolve(ops: MetadataOps, user: User, path: string): Promise<Resolved> {
  const chain = await ops.getChain(path);
  const last = chain[chain.length - 1];
  const entry = last !== undefined && last.path === path && path !== '/' ? last : null;
  const ancestors = path === '/' ? [] : entry === null ? chain : chain.slice(0, -1);
  for (const ancestor of ancestors) {
    if (ancestor.type !== 'directory') throw new CallfsError('NOT_A_DIRECTORY', `not a directory: ${ancestor.path}`);
    assertSearchPath(user, [ancestor]);
  }
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

export { checkPreconditions, type WritePreconditions } from './conditions.js';
