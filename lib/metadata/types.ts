/**
 * The MetadataStore contract: the namespace (inodes), the CAS blob index and
 * single-use links, kept in Postgres (pg) or embedded Postgres (PGlite).
 *
 * Every path given to a store is canonical (see lib/paths.ts): it starts with
 * '/', has no empty, '.' or '..' segments and no trailing '/'; the root is '/'.
 * Stores assert this and throw INVALID_PATH otherwise.
 *
 * Errors are CallfsErrors: FILE_NOT_FOUND, FILE_ALREADY_EXISTS, NOT_A_DIRECTORY,
 * DIRECTORY_NOT_EMPTY, PRECONDITION_FAILED (version check), BAD_REQUEST (move
 * into itself) and SERVICE_UNAVAILABLE (the database cannot be reached).
 */

export type EntryType = 'file' | 'directory';

/** Where a file's bytes live (lib/backends/registry.ts). Directories have no backend. */
export type { BackendType } from '../backends/registry.js';
import type { BackendType } from '../backends/registry.js';

/** One inode: a file or a directory. */
export interface Entry {
  /** Database id (bigint, as a decimal string). */
  id: string;
  /** Canonical path, unique. */
  path: string;
  /** Id of the parent directory; null only for the root. */
  parentId: string | null;
  /** Last path segment ('' for the root). */
  name: string;
  type: EntryType;
  /** Size in bytes (0 for directories). */
  size: number;
  /** Permission bits including setuid/setgid/sticky, e.g. 0o1777. */
  mode: number;
  uid: number;
  gid: number;
  atime: Date;
  mtime: Date;
  ctime: Date;
  /** Backend holding the bytes; null for directories. */
  backend: BackendType | null;
  /** Instance holding the bytes for instance-local backends (cas); null otherwise. */
  instanceId: string | null;
  /** The backend's id of the bytes (the sha256 for cas, the object key for s3). */
  blobId: string | null;
  /** sha256 hex of the content; null for directories. */
  etag: string | null;
  /** Incremented on every change of the entry; used for optimistic concurrency. */
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

/** What a caller supplies to create an entry. */
export interface NewEntry {
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  backend?: BackendType | null;
  instanceId?: string | null;
  blobId?: string | null;
  etag?: string | null;
  mtime?: Date;
}

export interface CreateOptions {
  /**
   * Create missing ancestors (mkdir -p) in the same transaction, with this
   * mode/uid/gid. When absent, a missing parent is FILE_NOT_FOUND.
   */
  parents?: { mode: number; uid: number; gid: number };
  /**
   * The parent directory as read in this transaction after it took the
   * namespace lock (`transaction(fn, { namespaceLock: 'shared' })`): it is not
   * read again. Ignored outside such a transaction, and when it is not the
   * entry's parent (a deeper ancestor: the missing ones are created).
   */
  parent?: Entry;
}

/** Fields that `update` may change. `ctime`/`updatedAt`/`version` move by themselves. */
export interface EntryPatch {
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  atime?: Date;
  backend?: BackendType | null;
  instanceId?: string | null;
  blobId?: string | null;
  etag?: string | null;
}

/** Keyset position in a listing: children sort files first, then directories, each by name. */
export interface ListCursor {
  type: EntryType;
  name: string;
}

export interface ListChildrenOptions {
  /** Start strictly after this position. */
  after?: ListCursor;
  /** Stop after this many entries (default: all). */
  limit?: number;
}

export interface ListRecursiveOptions {
  /** 0 = direct children only. */
  maxDepth: number;
  /** Start strictly after this path (keyset pagination). */
  after?: string;
  /** Only the directories of the subtree. */
  directoriesOnly?: boolean;
}

export interface MoveOptions {
  /** Replace an existing destination (a file, or an empty directory). */
  overwrite?: boolean;
  /** Create missing ancestors of the destination with these attributes. */
  parents?: { mode: number; uid: number; gid: number };
  /**
   * The tree job (kind 'move') this move is the work of: its own mark does
   * not refuse it, and the namespace lock is taken shared only, since the
   * mark keeps every writer out of both trees (migration 006).
   */
  treeJob?: string;
}

/** Result of a delete: every removed entry (the whole subtree for a recursive delete). */
export interface DeleteResult {
  removed: Entry[];
}

/** One row of the CAS index. */
export interface BlobRecord {
  sha256: string;
  instanceId: string;
  imageId: string;
  size: number;
  refCount: number;
  createdAt: Date;
  lastVerifiedAt: Date | null;
  /** Last time the blob was written, deduplicated or lost its last reference. */
  touchedAt: Date;
  quarantined: boolean;
  /** Where in a segment file of image `imageId` a packed (small) blob is; null: a file of its own. */
  packed: PackedAt | null;
}

/** A packed blob's place: the segment file (its id within the image) and the offset of its bytes. */
export interface PackedAt {
  segment: number;
  offset: number;
}

/** Where a blob's bytes are on an instance: what recordBlob writes in the blob index. */
export interface BlobPlacement {
  sha256: string;
  instanceId: string;
  imageId: string;
  size: number;
  /** Where in a segment file of the image the bytes are; absent or null: a file of its own. */
  packed?: PackedAt | null;
}

/**
 * A blob-index row a write carries into its metadata commit (see
 * PutOptions.deferIndex): written by the commit's own script, whether or not
 * the entry's guard lets the entry through.
 */
export interface BlobRowToWrite {
  readonly blob: BlobPlacement;
  /** Called once the script that wrote the row committed, with the row as it is now. */
  written(row: BlobRecord): void;
}

/** What an operator decided about an instance: it serves (`active`), its copies are being moved off (`draining`), or it is declared lost (`forgotten`). */
export type InstanceState = 'active' | 'draining' | 'forgotten';

/** An instance of the cluster as it last reported itself. */
export interface InstanceRecord {
  id: string;
  url: string;
  state: InstanceState;
  /** Its last heartbeat; null when it never reported (only an operator named it). */
  lastSeen: Date | null;
  /** How long ago the last heartbeat was, by the store's clock; null when it never reported. */
  seenAgoMs: number | null;
  usedBytes: number;
  freeBytes: number;
  stateSince: Date;
}

/** One recorded copy of a CAS blob. */
export interface BlobCopy {
  instanceId: string;
  quarantined: boolean;
  lastVerifiedAt: Date | null;
}

/** A referenced content with too few good copies, and the instances holding a good one. */
export interface UnderReplicated {
  sha256: string;
  size: number;
  holders: string[];
}

/**
 * Where blobs' copies are and the cluster's instances (replication). A copy
 * is an instance's blob row naming an image; reference counts stay on the
 * row of the instance an entry names, and a copy is collected only once no
 * row of its content has a reference.
 */
export interface ClusterOps {
  /** Record this instance's heartbeat (URL, space); a forgotten instance rejoins as active. */
  heartbeat(instance: { id: string; url: string; usedBytes: number; freeBytes: number }): Promise<InstanceRecord>;
  listInstances(): Promise<InstanceRecord[]>;
  /** Set an instance's state (forgetting it un-counts its copies). */
  setInstanceState(id: string, state: InstanceState): Promise<InstanceRecord>;
  /** Take or renew a cluster-wide lease; false while another owner holds it. */
  acquireLease(name: string, owner: string, ttlMs: number): Promise<boolean>;
  releaseLease(name: string, owner: string): Promise<void>;
  /** Every recorded copy of a content. */
  listCopies(sha256: string): Promise<BlobCopy[]>;
  /** Referenced contents with fewer than `replicas` good copies outside `notCounting`, in sha256 order after `after`. */
  listUnderReplicated(options: { after: string; replicas: number; notCounting: readonly string[]; limit: number }): Promise<UnderReplicated[]>;
  countUnderReplicated(replicas: number, notCounting: readonly string[]): Promise<number>;
  /** Per instance, the good copies it holds of under-replicated contents. */
  underReplicatedPerInstance(replicas: number, notCounting: readonly string[]): Promise<Map<string, number>>;
  /** Whether any entry names the content. */
  isReferenced(sha256: string): Promise<boolean>;
  /** An instance's copy stops counting (its row keeps its references). */
  dropCopy(instanceId: string, sha256: string): Promise<void>;
  /** The copies on one instance, in sha256 order after `after`. */
  listCopiesOn(instanceId: string, after: string, limit: number): Promise<{ sha256: string; size: number }[]>;
  /** Copies and bytes per instance. */
  copiesPerInstance(): Promise<Map<string, { blobs: number; bytes: number }>>;
  /** Queue a blob of an instance for the S3 replica (durable; idempotent). */
  enqueueReplica(instanceId: string, sha256: string): Promise<void>;
  /** An instance's queued blobs that are due, oldest first. */
  listReplicaOutbox(instanceId: string, limit: number): Promise<{ sha256: string; attempts: number }[]>;
  /** Done (null), or due again after `retryInMs`. */
  settleReplica(instanceId: string, sha256: string, retryInMs: number | null): Promise<void>;
  countReplicaOutbox(): Promise<number>;
  /** A standing request to the repairer (`rebalance`): set (true) or cleared (false). */
  setRequest(name: string, on: boolean): Promise<void>;
  hasRequest(name: string): Promise<boolean>;
}

export interface SingleUseLink {
  id: string;
  path: string;
  /** uid of the user who generated it. */
  createdBy: number;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
}

export type ConsumeResult =
  | { status: 'consumed'; link: SingleUseLink }
  | { status: 'not_found' }
  | { status: 'expired'; link: SingleUseLink }
  | { status: 'used'; link: SingleUseLink };

/** Operations available both on the store and inside a transaction. */
export interface MetadataOps {
  /** The entry at `path`, or null. */
  get(path: string): Promise<Entry | null>;

  /**
   * The entries at `path` and at each existing ancestor, root first, in one
   * round trip. The chain stops at the first missing path: the last element's
   * path equals `path` only when the entry exists.
   */
  getChain(path: string): Promise<Entry[]>;

  /**
   * The direct children of a directory, files first then directories, each by
   * name (byte order), streamed in pages. Throws FILE_NOT_FOUND when `path` is
   * missing and NOT_A_DIRECTORY when it is a file (before the first item).
   */
  listChildren(path: string, options?: ListChildrenOptions): AsyncIterable<Entry>;

  /**
   * Every descendant down to `maxDepth` (0 = children only), in path order,
   * streamed. Same errors as listChildren.
   */
  listRecursive(path: string, options: ListRecursiveOptions): AsyncIterable<Entry & { depth: number }>;

  /**
   * Create one entry. Throws FILE_ALREADY_EXISTS when the path exists (of
   * any type), NOT_A_DIRECTORY when an ancestor is a file, FILE_NOT_FOUND when
   * the parent is missing and `parents` is not given.
   */
  create(entry: NewEntry, options?: CreateOptions): Promise<Entry>;

  /**
   * Change an entry when its version is still `expectedVersion` (PRECONDITION_FAILED
   * otherwise; FILE_NOT_FOUND when gone). Returns the new entry (version + 1).
   */
  update(path: string, expectedVersion: number, patch: EntryPatch): Promise<Entry>;

  /**
   * Move/rename an entry and its whole subtree atomically. Throws BAD_REQUEST
   * for a move into itself or onto '/', FILE_ALREADY_EXISTS when the
   * destination exists and `overwrite` is not set (or it is a non-empty
   * directory), FILE_NOT_FOUND / NOT_A_DIRECTORY for the destination's parent.
   * Returns the moved entry at its new path and the replaced one, if any.
   */
  move(from: string, to: string, options?: MoveOptions): Promise<{ entry: Entry; replaced: Entry | null }>;

  /**
   * Delete an entry. A non-empty directory is DIRECTORY_NOT_EMPTY unless
   * `recursive`. When `expectedVersion` is given it is checked as in update.
   */
  delete(path: string, options?: { recursive?: boolean; expectedVersion?: number }): Promise<DeleteResult>;

  /**
   * Record a stored blob in the CAS index (insert, or touch an existing row).
   * Reference counts are kept in step with the inodes by the store itself:
   * creating, re-pointing or deleting a 'cas' file entry adjusts the count of
   * (instanceId, blobId) in the same transaction.
   */
  recordBlob(blob: BlobPlacement): Promise<BlobRecord>;

  /** One blob's index row, or null. */
  getBlob(instanceId: string, sha256: string): Promise<BlobRecord | null>;

  /** Create a single-use link row. */
  createLink(link: { id: string; path: string; createdBy: number; expiresAt: Date }): Promise<SingleUseLink>;

  /** A link row as it is now, or null (a read only: consumeLink is what decides). */
  getLink(id: string): Promise<SingleUseLink | null>;

  /** Compare-and-set: mark the link used iff it exists, is unused and unexpired at `now`. */
  consumeLink(id: string, now?: Date): Promise<ConsumeResult>;

  /**
   * The first entry below the directory `path` that `user` (not root) may
   * not remove as `rm -r` would (see lib/auth/permissions.ts: write and
   * search on its directory, the sticky-bit rule, read on a directory), in
   * one statement; null when there is none. Absent where the store cannot
   * (the caller then walks the listing).
   */
  firstUnremovable?(path: string, user: { uid: number; gid: number; groups: readonly number[] }): Promise<string | null>;

  /**
   * Take the directory at `path` and everything below it out of the namespace
   * at once and start a job that removes the old tree in bounded batches
   * (migration 006), leased to `leaseOwner` (the instance that goes on to run
   * it). Checks `expectedVersion` as delete does. Absent where the
   * store has no tree jobs (then a recursive delete is one transaction).
   */
  detachTree?(path: string, job: { id: string; uid: number; expectedVersion?: number; leaseOwner: string; leaseMs: number }): Promise<TreeJob>;

  /**
   * Mark the directory at `from` and `to` for a move job (migration 006):
   * from now on writes at or below either are LOCKED until the job, which
   * `leaseOwner` goes on to run, has moved the tree in one transaction of its
   * own. Absent where the store has no tree jobs.
   */
  startMove?(from: string, to: string, job: { id: string; uid: number; expectedVersion?: number; leaseOwner: string; leaseMs: number; overwrite: boolean; parents: MoveOptions['parents'] | null }): Promise<TreeJob>;
}

/** The store itself. */
/** Which blob rows listBlobs yields: all, or only the packed copies (and with `filesBelow`, also the copies stored as files of fewer bytes). */
export interface BlobListing {
  packedOnly?: boolean;
  filesBelow?: number;
}

export interface MetadataStore extends MetadataOps {
  /**
   * Run `fn` in one database transaction; its writes commit together or not at all.
   * `namespaceLock: 'shared'` takes the namespace lock (held by every create and
   * move) with BEGIN, before `fn` reads anything: what `fn` then reads of the
   * parent directories stays valid for its creates (see CreateOptions.parent).
   */
  transaction<T>(fn: (tx: MetadataOps) => Promise<T>, options?: { namespaceLock?: 'shared' }): Promise<T>;

  /**
   * The ancestors of `path`, root first, when each of them is in the entry
   * cache, the cache is usable, and `path` itself is not cached: no round
   * trip, not even the one that waits for other instances' invalidations,
   * so the rows may be a moment stale. Null otherwise (and always where
   * there is no cache). It says nothing of `path`: a write decided on these
   * rows must be guarded by them and find out at its commit whether `path`
   * exists (createIfUnchanged), and a refusal decided on them must be
   * decided again on rows read fresh.
   */
  cachedAncestors(path: string): Promise<Entry[] | null>;

  /**
   * Create a file in one round trip, decided on rows read before (outside
   * any transaction): applied only if each row in `expected` (the ancestors,
   * root first, ending with the file's parent) still has the id, path and version it
   * was read with, and nothing exists at the path. Null otherwise: nothing was
   * written and the caller decides again inside a transaction. Takes the
   * namespace lock (shared) as `transaction` does. With `blobRow`, the same
   * commit also writes that blob-index row (as recordBlob), guard or not.
   */
  createIfUnchanged(entry: NewEntry, expected: readonly Entry[], blobRow?: BlobRowToWrite): Promise<Entry | null>;

  /**
   * As createIfUnchanged, for a new version of the file at `path`, read at
   * `version`: `expected` is its ancestors followed by the file itself.
   */
  updateIfUnchanged(path: string, version: number, patch: EntryPatch, expected: readonly Entry[], blobRow?: BlobRowToWrite): Promise<Entry | null>;

  /** Blobs of `instanceId` with zero references untouched since `olderThan` (for the collector). */
  listCollectableBlobs(instanceId: string, olderThan: Date, limit: number): Promise<BlobRecord[]>;

  /**
   * Remove a blob's index row iff it still has zero references and has not been
   * touched since `olderThan`. True when removed (the caller then deletes the bytes).
   */
  forgetBlob(instanceId: string, sha256: string, olderThan: Date): Promise<boolean>;

  /** Blobs of `instanceId` ordered by last verification (never-verified first). */
  listBlobsForScrub(instanceId: string, limit: number): Promise<BlobRecord[]>;

  /** Set last_verified_at (ok) or the quarantined flag (bad). */
  markBlobVerified(instanceId: string, sha256: string, ok: boolean): Promise<void>;

  /** Every blob row of an instance (admin listings, recovery). */
  listBlobs(instanceId: string, options?: BlobListing): AsyncIterable<BlobRecord>;

  /** Delete links that expired or were used before `before`; returns how many. */
  purgeLinks(before: Date): Promise<number>;

  /**
   * How many entries a listing of `path` would return right now: its children,
   * or with `recursive` its descendants down to maxDepth. Same errors as listChildren.
   */
  count(path: string, recursive: { maxDepth: number } | null): Promise<number>;

  /** Blob copies and cluster membership (replication). */
  readonly cluster: ClusterOps;

  /** Long tree operations; absent where the store has none. */
  readonly trees?: TreeJobOps;

  /** WebDAV properties and locks; absent where the store has none (WebDAV is then not served). */
  readonly dav?: DavOps;

  /** Resumable uploads; absent where the store has none (they are then not served). */
  readonly uploads?: UploadOps;

  /** The S3 API's records; absent where the store has none (the S3 listener then does not start). */
  readonly s3?: S3Ops;

  /** Cheap round trip for /ready. Throws SERVICE_UNAVAILABLE. */
  ping(): Promise<void>;

  /** Close pools, listeners and caches. */
  close(): Promise<void>;
}

/** A long tree operation (migration 006): a recursive delete, or a move, of a big directory. */
export interface TreeJob {
  id: string;
  kind: 'delete' | 'move';
  /** The directory it removes or moves. */
  path: string;
  /** Where a move goes; null for a delete. */
  dest: string | null;
  /** A move's options. */
  options: { overwrite?: boolean; parents?: { mode: number; uid: number; gid: number } | null };
  /** Why a move was refused when it ran (state 'failed'). */
  error: { code: string; message: string } | null;
  /** Who asked. */
  uid: number;
  state: 'running' | 'done' | 'failed';
  /** Entries below `path` when it started, and how many are removed so far. */
  total: number;
  done: number;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

/** An entry a batch of a tree job removed (what the caller needs to drop path-keyed bytes). */
export interface RemovedEntry {
  path: string;
  type: EntryType;
  backend: BackendType | null;
  blobId: string | null;
}

/** The jobs of long tree operations, kept in the metadata store so that any instance can finish them. */
export interface TreeJobOps {
  get(id: string): Promise<TreeJob | null>;
  /** A running job nobody holds (or `owner` held before a restart), leased to `owner` for `leaseMs`. */
  claim(owner: string, leaseMs: number): Promise<TreeJob | null>;
  /**
   * Remove up to `limit` entries of the job's old tree, deepest paths first,
   * in one transaction that also counts them; the last batch removes the
   * trash root and ends the job. The job as it is then, and what was removed.
   */
  removeBatch(id: string, limit: number, owner: string, leaseMs: number): Promise<{ job: TreeJob; removed: RemovedEntry[] }>;
  /** Do a move job in one transaction (no statement timeout); a refused move ends the job as failed. The job as it is then. */
  runMove(id: string): Promise<TreeJob>;
    /** Forget jobs that ended before `before`; returns how many. */
  prune(before: Date): Promise<number>;
}

/** A WebDAV dead property (PROPPATCH): namespace, local name, and the property element as XML (namespace declarations included). */
export interface DavProperty {
  ns: string;
  name: string;
  value: string;
}

/** A PROPPATCH instruction: set (value: the property element) or remove (value null). */
export interface DavPropertyChange {
  ns: string;
  name: string;
  value: string | null;
}

/** A WebDAV write lock (migration 007). */
export interface DavLock {
  /** `urn:uuid:…` */
  token: string;
  /** The locked path. */
  path: string;
  /** Depth infinity: the whole tree below a collection. */
  deep: boolean;
  shared: boolean;
  /** The client's DAV:owner XML, or ''. */
  owner: string;
  /** Who took it. */
  uid: number;
  timeoutSeconds: number;
  expiresAt: Date;
}

/** WebDAV state shared by every instance: dead properties of inodes and write locks on paths. */
export interface DavOps {
  /** Unexpired locks on any of `paths` (deep or not). */
  locksAt(paths: readonly string[]): Promise<DavLock[]>;
  /** Unexpired locks strictly below `path`. */
  locksBelow(path: string): Promise<DavLock[]>;
  getLock(token: string): Promise<DavLock | null>;
  /** Insert a lock unless one conflicts (then the conflicting ones, nothing inserted), atomically for every instance. */
  createLock(lock: Omit<DavLock, 'expiresAt'>): Promise<{ lock: DavLock | null; conflicts: DavLock[] }>;
  refreshLock(token: string, timeoutSeconds: number): Promise<DavLock | null>;
  removeLock(token: string): Promise<boolean>;
  /** Drop the locks at and below `path` (it was deleted or moved away). */
  removeLocksAt(path: string): Promise<void>;
  /** The dead properties of inodes, by inode id (those without any are absent). */
  getProperties(inodeIds: readonly string[]): Promise<Map<string, DavProperty[]>>;
  /** Set and remove properties of an inode, in order, in one transaction. */
  patchProperties(inodeId: string, changes: readonly DavPropertyChange[]): Promise<void>;
  copyProperties(fromId: string, toId: string): Promise<void>;
}

/** A resumable upload (tus, migration 008). */
export interface Upload {
  id: string;
  uid: number;
  /** Where the file appears once complete. */
  path: string;
  /** Mode of the new file; null for the default. */
  mode: number | null;
  length: number;
  /** Bytes received and flushed on the holder. */
  received: number;
  /** Upload-Metadata as sent. */
  metadata: string;
  /** The instance holding the bytes received so far. */
  instanceId: string;
  createdAt: Date;
  expiresAt: Date;
}

/** The progress of resumable uploads, shared by every instance. */
export interface UploadOps {
  /** Record a new upload; null when its user already has `maxOpen` unexpired ones. */
  create(upload: Omit<Upload, 'received' | 'createdAt'>, maxOpen: number): Promise<Upload | null>;
  get(id: string): Promise<Upload | null>;
  /** Offset `from` → `to`, with a new expiry; null when the offset was not `from`. */
  advance(id: string, from: number, to: number, expiresAt: Date): Promise<Upload | null>;
  remove(id: string): Promise<boolean>;
  /** Ids of an instance's uploads (any instance's: null): all, or those expired before `expiredBefore`. */
  on(instanceId: string | null, expiredBefore: Date | null, limit: number): Promise<string[]>;
}

/** What the S3 API keeps of an object (migration 009), valid while the file's content is `sha256`. */
export interface S3ObjectMeta {
  sha256: string;
  /** MD5 hex, or md5-of-part-md5s-N. */
  etag: string;
  contentType: string;
  /** x-amz-meta-* without the prefix, lower-case names. */
  meta: Record<string, string>;
}

/** An S3 multipart upload. */
export interface S3Multipart {
  id: string;
  uid: number;
  bucket: string;
  key: string;
  /** The instance holding its parts. */
  instanceId: string;
  contentType: string;
  meta: Record<string, string>;
  createdAt: Date;
}

export interface S3Part {
  partNumber: number;
  size: number;
  md5: string;
  updatedAt?: Date;
}

export interface S3Ops {
  getObjectMeta(inodeIds: readonly string[]): Promise<Map<string, S3ObjectMeta>>;
  putObjectMeta(inodeId: string, meta: S3ObjectMeta): Promise<void>;
  createMultipart(upload: Omit<S3Multipart, 'createdAt'>): Promise<S3Multipart>;
  getMultipart(id: string): Promise<S3Multipart | null>;
  listMultipart(bucket: string, prefix: string, limit: number): Promise<S3Multipart[]>;
  removeMultipart(id: string): Promise<boolean>;
  putPart(uploadId: string, part: S3Part): Promise<void>;
  listParts(uploadId: string): Promise<S3Part[]>;
  staleMultipart(instanceId: string, before: Date, limit: number): Promise<string[]>;
}
