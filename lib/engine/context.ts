import type { TreeJobRunner } from './tree-jobs.js';
import type { LockManager } from '../locks/types.js';
import type { Entry, MetadataOps, MetadataStore } from '../metadata/types.js';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import type { PlacementDeps } from './placement.js';
import type { CasReplica } from '../cluster/s3-replica.js';
import type { User } from '../auth/users.js';
import { assertSearchPath } from '../auth/permissions.js';
import { CallfsError, isCallfsError, notFound } from '../errors.js';
import { parentOf } from '../paths.js';

/** What every use case needs; built once in cmd/ and passed in. */
export interface EngineDeps extends PlacementDeps {
  store: MetadataStore;
  locks: LockManager;
  /** Largest accepted upload in bytes: the one place the upload limit is decided (backends count what they consume against it). */
  maxUploadBytes: number;
  logger: Logger;
  /** callfs_file_operations_total, counted where the use cases are bound (index.ts). */
  metrics?: Pick<Metrics, 'fileOperations'> & Partial<Pick<Metrics, 'replicatedWrites' | 'readFailovers'>>;
  /** The S3 replica of CAS blobs (ha.replication_enabled); absent otherwise. */
  casReplica?: CasReplica;
  /** The worker of tree jobs (recursive deletes of big directories); absent: every delete is one transaction. */
  trees?: TreeJobRunner;
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
      suggestion: 'use PUT to replace its content (its bytes stay on the instance that holds them), or choose another path',
    },
  });
}

/** The lock key of a path. */
export const lockKey = (path: string): string => `path:${path}`;

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
  return resolveChain(user, path, await ops.getChain(path));
}

/** resolve over a chain already read (getChain's answer, or the cached ancestors of a path). */
export function resolveChain(user: User, path: string, chain: Entry[]): Resolved {
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

/**
 * A version-checked write (update, delete) that lost to a concurrent writer
 * of the same path: the row moved on between the transaction's read and its
 * write. Content-addressed PUTs take no path lock, so a path lock no longer
 * keeps every writer out; a loser decides again on the new row rather than
 * answering 412 to a client that sent no precondition.
 */
export class WriteRace extends Error {
  constructor(readonly original: unknown) {
    super('another write of the path committed first');
  }
}

/** For .catch() on a version-checked write: the store's answers to a lost race become a WriteRace. */
export const raced = (codes: readonly ('PRECONDITION_FAILED' | 'FILE_ALREADY_EXISTS' | 'FILE_NOT_FOUND')[]) => (err: unknown): never => {
  throw codes.some((code) => isCallfsError(err, code)) ? new WriteRace(err) : err;
};

/** Decide again while `attempt` loses races, at most `times` times; then the race's own error is the answer. */
export async function retryRaces<T>(times: number, attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof WriteRace)) throw err;
      if (n >= times) throw err.original;
    }
  }
}
