import type { User } from '../auth/users.js';
import type { BlobStat, ByteRange, OpenResult, PutResult } from '../backends/types.js';
import type { Entry, ListCursor, TreeJob } from '../metadata/types.js';
import { isRoot } from '../auth/permissions.js';
import { CallfsError, type ErrorCode } from '../errors.js';
import type { Readable } from 'node:stream';
import { originalBackendType } from '../metrics/index.js';
import type { EngineDeps, WritePreconditions } from './context.js';
import { listDirectory, listTree, openContent, replicasOf, stat, statForRead, type Listing } from './read.js';
import { checkWrite, copyFile, makeDirectory, writeFile, type WriteFileOptions, type WriteResult } from './write.js';
import { evictBlob, openBlob, statBlob, storeBlob } from './blobs.js';
import { knowsInstance } from './placement.js';
import { move, remove, setAttributes, type AttributeChange, type MoveOptions } from './modify.js';
import { moveBytes, type Destination, type TransferOptions } from './transfer.js';

export type { EngineDeps } from './context.js';
export type { Listing } from './read.js';
export type { WriteFileOptions, WriteResult } from './write.js';
export type { AttributeChange, MoveOptions } from './modify.js';
export type { Destination, TransferOptions } from './transfer.js';
export type { Location } from './placement.js';
export { DEFAULT_DIR_MODE, DEFAULT_FILE_MODE, assertPlainName } from './write.js';

/** The file operations, one use case each, bound to their dependencies. */
export interface Engine {
  readonly instanceId: string;
  stat(user: User, path: string): Promise<Entry>;
  statForRead(user: User, path: string): Promise<Entry>;
  /** A file's bytes, from wherever placement finds them (see read.ts); the caller checked the permissions. */
  openContent(entry: Entry, options?: { range?: ByteRange; signal?: AbortSignal }): Promise<Readable>;
  /** The instances holding a good copy of a file's instance-local bytes (X-CallFS-Replicas); empty otherwise. */
  replicasOf(entry: Entry): Promise<string[]>;
  /** Whether an instance id is this instance or a configured peer. */
  knowsInstance(instanceId: string): boolean;
  listDirectory(user: User, path: string, options?: { after?: ListCursor; limit?: number }): Promise<Listing<Entry>>;
  /** Every descendant down to maxDepth, less what lies inside directories the user may not read and search; count() agrees. */
  listTree(user: User, path: string, options: { maxDepth: number; after?: string }): Promise<Listing<Entry & { depth: number }>>;
  writeFile(user: User, path: string, body: Readable, options: WriteFileOptions): Promise<WriteResult>;
  makeDirectory(user: User, path: string, options?: { mode?: number; signal?: AbortSignal }): Promise<WriteResult>;
  /** Throws as a PUT of `path` by `user` would be refused now (before any byte). */
  checkWrite(user: User, path: string): Promise<void>;
  /** cp of one file to a new path: on the CAS the new entry names the same blob (no byte copy). */
  copyFile(user: User, from: string, to: string, options?: { replace?: boolean; signal?: AbortSignal }): Promise<WriteResult>;
  /**
   * Rename or move an entry (a whole tree at once): the entry at its new
   * path. A big tree moves in a job: with `background`, the job when it is
   * still running after a short wait; without, the call waits for it to end.
   */
  move(user: User, from: string, to: string, options?: MoveOptions & { background?: boolean }): Promise<{ entry: Entry; job: null } | { entry: null; job: TreeJob }>;
  setAttributes(user: User, path: string, change: AttributeChange, options?: WritePreconditions & { signal?: AbortSignal }): Promise<Entry>;
  /** Move a file's bytes to another backend or instance (no-op when already there); see transfer.ts. */
  moveBytes(user: User, path: string, to: Destination, options?: TransferOptions): Promise<Entry>;
  /**
   * Delete a file or a directory (with `recursive`, its tree). Null once done;
   * for a big tree, its job when that is still removing the old entries after
   * a short wait (the tree already left the namespace).
   */
  remove(user: User, path: string, options?: WritePreconditions & { recursive?: boolean; signal?: AbortSignal }): Promise<TreeJob | null>;
  /** A tree job, as its owner or root may see it (FILE_NOT_FOUND otherwise). */
  treeJob(user: User, id: string): Promise<TreeJob>;
  /** Peers only (the internal routes): store bytes in this instance's instance-local backend. */
  storeBlob(body: Readable, options?: { length?: number; signal?: AbortSignal }): Promise<PutResult>;
  /** Peers only: a blob of this instance by id (whole reads verified). */
  openBlob(id: string, options?: { range?: ByteRange; signal?: AbortSignal }): Promise<OpenResult>;
  /** Peers only: a blob's size, or null. */
  statBlob(id: string, options?: { signal?: AbortSignal }): Promise<BlobStat | null>;
  /** Peers only (the repairer's rebalancing): drop this instance's copy of a blob; false while a put uses it. */
  evictBlob(id: string, options?: { signal?: AbortSignal }): Promise<boolean>;
}

/** How long a delete that started a tree job waits for it before answering 202 with the job. */
const TREE_JOB_ANSWER_WAIT_MS = 2000;

/**
 * callfs_file_operations_total, counted here where every use case is bound,
 * once each file operation has succeeded: a write as create or update, an
 * opened read, and each file a delete removed (directories are not files).
 */
function fileOperationCounter(deps: EngineDeps): (operation: 'create' | 'read' | 'update' | 'delete', entry: Entry) => void {
  return (operation, entry) => {
    if (deps.metrics === undefined || entry.type !== 'file' || entry.backend === null) return;
    deps.metrics.fileOperations.inc({ operation, backend_type: originalBackendType(entry.backend) });
  };
}

export function createEngine(deps: EngineDeps): Engine {
  const counted = fileOperationCounter(deps);
  /** A job just started: null once it ended well (its error thrown if it failed); the job while it runs, after a short wait when `background`. */
  async function settled(job: TreeJob, background: boolean): Promise<TreeJob | null> {
    let now: TreeJob | null;
    do {
      now = deps.trees === undefined ? null : await deps.trees.waitFor(job.id, background ? TREE_JOB_ANSWER_WAIT_MS : 60_000);
    } while (!background && now?.state === 'running');
    if (now === null || now.state === 'done') return null;
    if (now.state === 'failed') throw new CallfsError((now.error?.code ?? 'INTERNAL_ERROR') as ErrorCode, now.error?.message ?? 'the move failed');
    return now;
  }
  return {
    instanceId: deps.instanceId,
    stat: (user, path) => stat(deps, user, path),
    statForRead: (user, path) => statForRead(deps, user, path),
    openContent: async (entry, options) => {
      const stream = await openContent(deps, entry, options);
      counted('read', entry);
      return stream;
    },
    replicasOf: (entry) => replicasOf(deps, entry),
    knowsInstance: (instanceId) => knowsInstance(deps, instanceId),
    listDirectory: (user, path, options) => listDirectory(deps, user, path, options),
    listTree: (user, path, options) => listTree(deps, user, path, options),
    writeFile: async (user, path, body, options) => {
      const result = await writeFile(deps, user, path, body, options);
      counted(result.created ? 'create' : 'update', result.entry);
      return result;
    },
    makeDirectory: (user, path, options) => makeDirectory(deps, user, path, options),
    checkWrite: (user, path) => checkWrite(deps, user, path),
    copyFile: async (user, from, to, options) => {
      const result = await copyFile(deps, user, from, to, options);
      counted('create', result.entry);
      return result;
    },
    move: async (user, from, to, options) => {
      const moved = await move(deps, user, from, to, options);
      if (moved.entry !== null) return { entry: moved.entry, job: null };
      const running = moved.job === null ? null : await settled(moved.job, options?.background === true);
      if (running !== null) return { entry: null, job: running };
      const entry = await deps.store.get(to);
      if (entry === null) throw new CallfsError('FILE_NOT_FOUND', `${to} is gone again`);
      return { entry, job: null };
    },
    setAttributes: (user, path, change, options) => setAttributes(deps, user, path, change, options),
    moveBytes: (user, path, to, options) => moveBytes(deps, user, path, to, options),
    remove: async (user, path, options) => {
      const { removed, job } = await remove(deps, user, path, options);
      for (const entry of removed) counted('delete', entry);
      return job === null ? null : settled(job, true);
    },
    treeJob: async (user, id) => {
      const job = await deps.store.trees?.get(id);
      // Another user's job is as good as missing.
      if (job === undefined || job === null || (job.uid !== user.uid && !isRoot(user))) throw new CallfsError('FILE_NOT_FOUND', `no job ${id}`);
      return job;
    },
    storeBlob: (body, options) => storeBlob(deps, body, options),
    openBlob: (id, options) => openBlob(deps, id, options),
    statBlob: (id, options) => statBlob(deps, id, options),
    evictBlob: (id, options) => evictBlob(deps, id, options),
  };
}
