import type { User } from '../auth/users.js';
import type { ByteRange } from '../backends/types.js';
import type { BackendType, Entry, ListCursor } from '../metadata/types.js';
import type { Readable } from 'node:stream';
import { heldElsewhere, resolve, type EngineDeps, type WritePreconditions } from './context.js';
import { listDirectory, listTree, openContent, stat, statForRead } from './read.js';
import { makeDirectory, writeFile, type WriteFileOptions, type WriteResult } from './write.js';
import { relocateHere } from './relocate.js';
import { move, remove, setAttributes, type AttributeChange, type MoveOptions } from './modify.js';
import { transferFile, type TransferOptions } from './transfer.js';

export type { EngineDeps } from './context.js';
export type { WriteFileOptions, WriteResult } from './write.js';
export type { AttributeChange, MoveOptions } from './modify.js';
export type { TransferOptions } from './transfer.js';
export { DEFAULT_DIR_MODE, DEFAULT_FILE_MODE, assertPlainName } from './write.js';

/** The file operations, one use case each, bound to their dependencies. */
export interface Engine {
  readonly instanceId: string;
  stat(user: User, path: string): Promise<Entry>;
  statForRead(user: User, path: string): Promise<Entry>;
  openContent(entry: Entry, options?: { range?: ByteRange; signal?: AbortSignal; as?: User }): Promise<Readable>;
  /**
   * The instance holding a file's bytes when it is another one (null
   * otherwise, or when the path is not such a file), as `user` may learn it:
   * the path is resolved with their search permissions (PERMISSION_DENIED,
   * NOT_A_DIRECTORY as for any access).
   */
  remoteHolder(user: User, path: string): Promise<string | null>;
  listDirectory(user: User, path: string, options?: { after?: ListCursor; limit?: number }): Promise<{ directory: Entry; items: AsyncIterable<Entry> }>;
  listTree(user: User, path: string, options: { maxDepth: number; after?: string }): Promise<{ directory: Entry; items: AsyncIterable<Entry & { depth: number }> }>;
  writeFile(user: User, path: string, body: Readable, options: WriteFileOptions): Promise<WriteResult>;
  makeDirectory(user: User, path: string, options?: { mode?: number; signal?: AbortSignal }): Promise<WriteResult>;
  move(user: User, from: string, to: string, options?: MoveOptions): Promise<Entry>;
  setAttributes(user: User, path: string, change: AttributeChange, options?: WritePreconditions & { signal?: AbortSignal }): Promise<Entry>;
  /** Bring a file's bytes into this instance's CAS (from a peer, S3 or here). */
  relocateHere(user: User, path: string, options?: WritePreconditions & { signal?: AbortSignal }): Promise<Entry>;
  remove(user: User, path: string, options?: WritePreconditions & { recursive?: boolean; signal?: AbortSignal }): Promise<void>;
  /** Move a file's bytes to another backend (no-op when already there). */
  transfer(user: User, path: string, backend: BackendType, options?: TransferOptions): Promise<Entry>;
}

export function createEngine(deps: EngineDeps): Engine {
  return {
    instanceId: deps.instanceId,
    stat: (user, path) => stat(deps, user, path),
    statForRead: (user, path) => statForRead(deps, user, path),
    openContent: (entry, options) => openContent(deps, entry, options),
    remoteHolder: async (user, path) => {
      const { entry } = await resolve(deps.store, user, path);
      return entry === null ? null : heldElsewhere(deps, entry);
    },
    listDirectory: (user, path, options) => listDirectory(deps, user, path, options),
    listTree: (user, path, options) => listTree(deps, user, path, options),
    writeFile: (user, path, body, options) => writeFile(deps, user, path, body, options),
    makeDirectory: (user, path, options) => makeDirectory(deps, user, path, options),
    move: (user, from, to, options) => move(deps, user, from, to, options),
    setAttributes: (user, path, change, options) => setAttributes(deps, user, path, change, options),
    relocateHere: (user, path, options) => relocateHere(deps, user, path, options),
    remove: (user, path, options) => remove(deps, user, path, options),
    transfer: (user, path, backend, options) => transferFile(deps, user, path, backend, options),
  };
}
