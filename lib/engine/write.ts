import type { Readable } from 'node:stream';
import type { User } from '../auth/users.js';
import { assertAccess } from '../auth/permissions.js';
import type { PutResult } from '../backends/types.js';
import type { BackendType, Entry, MetadataOps, NewEntry } from '../metadata/types.js';
import { CallfsError, isCallfsError } from '../errors.js';
import { baseName, canonicalize, parentOf } from '../paths.js';
import { checkPreconditions, crossServerConflict, lockKey, raced, resolve, resolveChain, retryRaces, WriteRace, type EngineDeps, type Resolved, type WritePreconditions } from './context.js';
import { contentOf, holderElsewhere, knowsInstance, placementIgnoresExisting, targetsForWrite, writeTarget, type Target } from './placement.js';
import { openContent, statForRead } from './read.js';
import { putReplicated } from './replicate.js';
import { isContentAddressed } from '../backends/registry.js';

export const DEFAULT_FILE_MODE = 0o644;
export const DEFAULT_DIR_MODE = 0o755;
const SETGID = 0o2000;

export interface WriteFileOptions extends WritePreconditions {
  /** POST: the file must not exist yet. PUT: create or replace. */
  mustCreate: boolean;
  /** Mode of a new file (X-CallFS-Mode). */
  mode?: number;
  /** The body's length when it is declared (Content-Length): refused before a byte is read when over the limit. */
  length?: number;
  /** The parent directory must exist (FILE_NOT_FOUND otherwise): no missing ancestors are made (WebDAV). */
  noParents?: boolean;
  /** Called once the bytes are stored, just before the metadata commit: a throw cancels the write (WebDAV re-checks its locks). */
  beforeCommit?: () => Promise<void>;
  signal?: AbortSignal;
}

export interface WriteResult {
  entry: Entry;
  created: boolean;
  /** The instance that took the bytes when it is another one (the file's holder), else null. */
  storedOn: string | null;
  /** Instances holding a copy of the new content (instance-local backends; empty otherwise). */
  copies?: string[];
}

/** PAYLOAD_TOO_LARGE for a declared length over the upload limit: the engine is the one place the limit is decided. */
export function assertUploadFits(deps: EngineDeps, length: number | undefined): void {
  if (length !== undefined && length > deps.maxUploadBytes) throw new CallfsError('PAYLOAD_TOO_LARGE', `the body is larger than the ${deps.maxUploadBytes}-byte limit`);
}

/** Group of a new entry: the parent's when it has the setgid bit (as in POSIX), else the user's primary group. */
export function groupFor(user: User, parent: Entry | undefined): number {
  return parent !== undefined && (parent.mode & SETGID) !== 0 ? parent.gid : user.gid;
}

/**
 * Mode of a new directory under `parent`: a directory made in a setgid
 * directory inherits the setgid bit (so that its own entries keep the group),
 * as on Linux and the BSDs, whatever mode was asked for.
 */
export function directoryModeFor(mode: number, parent: Entry | undefined): number {
  return parent !== undefined && (parent.mode & SETGID) !== 0 ? mode | SETGID : mode;
}

/** The attributes of the missing ancestors a create makes (mkdir -p) under the deepest existing one. */
export function parentsFor(user: User, deepest: Entry | undefined): { mode: number; uid: number; gid: number } {
  return { mode: directoryModeFor(DEFAULT_DIR_MODE, deepest), uid: user.uid, gid: groupFor(user, deepest) };
}

/** What inspectWrite found: the file (when it exists), the parent, and the rows it read. */
interface WriteDecision {
  existing: Entry | null;
  parent: Entry | undefined;
  /** The rows the decision was made on: the existing ancestors, root first. */
  ancestors: Entry[];
  parentExists: boolean;
  /** Decided without reading the path (presumeNew): whether it exists is found out at the commit, and told here. */
  presumed?: Presumptions;
}

/**
 * Checks of a file write against the namespace as it is now. Run before the
 * body is read (to refuse early) and again under the lock (to decide).
 */
async function inspectWrite(deps: EngineDeps, ops: MetadataOps, user: User, path: string, options: WriteFileOptions): Promise<WriteDecision> {
  if (path === '/') throw new CallfsError('IS_A_DIRECTORY', 'the root is a directory');
  return decideOn(deps, user, path, options, await resolve(ops, user, path));
}

/** inspectWrite's checks of the write on the path as resolved. */
function decideOn(deps: EngineDeps, user: User, path: string, options: WriteFileOptions, r: Resolved): WriteDecision {
  const parent = r.ancestors[r.ancestors.length - 1];
  if (options.noParents === true && !r.parentExists) throw new CallfsError('FILE_NOT_FOUND', `no such directory: ${parentOf(path)}`);
  // A create is allowed or not before anything is said about what exists at the path.
  if (options.mustCreate && parent !== undefined) assertAccess(user, parent, 'w');
  if (r.entry !== null) {
    if (r.entry.type === 'directory') {
      throw options.mustCreate ? new CallfsError('FILE_ALREADY_EXISTS', `a directory exists at ${path}`) : new CallfsError('IS_A_DIRECTORY', `is a directory: ${path}`);
    }
    if (options.mustCreate) {
      const holder = holderElsewhere(deps, r.entry);
      throw holder === null ? new CallfsError('FILE_ALREADY_EXISTS', `file exists: ${path}`) : crossServerConflict(r.entry, holder);
    }
    assertAccess(user, { ...r.entry, path }, 'w');
    // Preconditions only once the write is allowed (RFC 9110 §13.2.1): a 403 wins over a 412.
    checkPreconditions(r.entry, options);
    return { existing: r.entry, parent, ancestors: r.ancestors, parentExists: r.parentExists };
  }
  // Creating the entry (and any missing ancestors) writes into the deepest existing directory.
  if (parent !== undefined) assertAccess(user, { ...parent, path: parent.path }, 'w');
  checkPreconditions(null, options);
  return { existing: null, parent, ancestors: r.ancestors, parentExists: r.parentExists };
}

/** The largest declared body a PUT writes on a path presumed new (presumeNew): what it costs when the path exists after all. */
const PRESUMED_NEW_MAX_BYTES = 64 * 1024;

/**
 * Whether a PUT could be presumed new (presumeNew): a plain PUT (no POST, no
 * precondition, which need the current entry) of a small declared body, on
 * a server where the file's placement cannot depend on the file it replaces.
 */
function presumable(deps: EngineDeps, options: WriteFileOptions): boolean {
  if (options.mustCreate || options.ifMatch !== undefined || options.ifNoneMatch !== undefined || options.ifUnmodifiedSince !== undefined) return false;
  return options.length !== undefined && options.length <= PRESUMED_NEW_MAX_BYTES && placementIgnoresExisting(deps);
}

/**
 * How often the PUTs that could be presumed new found their path taken: an
 * average over about the last 32. While it is one in ten or more (a workload
 * that replaces files, for which a presumption costs a wasted INSERT and a
 * lookup after it), PUTs look first instead. Every such PUT tells what it
 * found, presumed or not, so a workload that creates files again brings the
 * presumption back.
 */
class Presumptions {
  private missRate = 0;

  get worthwhile(): boolean {
    return this.missRate < 0.1;
  }

  record(taken: boolean): void {
    this.missRate += ((taken ? 1 : 0) - this.missRate) / 32;
  }
}

const presumptions = new WeakMap<EngineDeps, Presumptions>();

function presumptionsOf(deps: EngineDeps): Presumptions {
  let p = presumptions.get(deps);
  if (p === undefined) presumptions.set(deps, (p = new Presumptions()));
  return p;
}

/**
 * inspectWrite's decision for a presumable PUT, made as if the path were
 * new, from the cached ancestors alone: no round trip before the upload. The
 * create's guard and the INSERT's check of the path settle it at the commit,
 * and a path that exists after all is decided again there, on a lookup
 * (commitContentAddressed). Null, for inspectWrite to decide, when an
 * ancestor is not cached or the path is, and when these rows refuse the
 * write: they may be stale (cachedAncestors), and nothing would check a
 * refusal at a commit.
 */
async function presumeNew(deps: EngineDeps, user: User, path: string, options: WriteFileOptions, presumed: Presumptions): Promise<WriteDecision | null> {
  const ancestors = await deps.store.cachedAncestors(path);
  if (ancestors === null || ancestors[ancestors.length - 1]?.path !== parentOf(path)) return null;
  try {
    return { ...decideOn(deps, user, path, options, resolveChain(user, path, ancestors)), presumed };
  } catch (err) {
    if (err instanceof CallfsError) return null;
    throw err;
  }
}

/** A write's decision: presumed new when that is possible and has been paying off, else looked up (inspectWrite). */
async function decideWrite(deps: EngineDeps, user: User, path: string, options: WriteFileOptions): Promise<WriteDecision> {
  if (!presumable(deps, options)) return inspectWrite(deps, deps.store, user, path, options);
  const presumed = presumptionsOf(deps);
  const pre = (presumed.worthwhile ? await presumeNew(deps, user, path, options, presumed) : null) ?? (await inspectWrite(deps, deps.store, user, path, options));
  if (pre.presumed === undefined) presumed.record(pre.existing !== null);
  return pre;
}

/** The content fields of an entry whose bytes `stored` are now at `target`. */
export function storedContent(target: Target, stored: PutResult): { size: number; backend: BackendType; blobId: string; etag: string; instanceId: string | null; mtime: Date } {
  return { size: stored.size, backend: target.type, blobId: stored.id, etag: stored.sha256, instanceId: target.instanceId, mtime: new Date() };
}

/** The entry of a new file with `content`, created by `user` under `parent`. */
function newFile(user: User, path: string, options: WriteFileOptions, parent: Entry | undefined, content: ReturnType<typeof storedContent>): NewEntry {
  return { path, type: 'file', mode: options.mode ?? DEFAULT_FILE_MODE, uid: user.uid, gid: groupFor(user, parent), ...content };
}

async function commitWrite(deps: EngineDeps, user: User, path: string, options: WriteFileOptions, target: Target, stored: PutResult, signal: AbortSignal): Promise<WriteResult> {
  const backend = target.type;
  const storedOn = storedElsewhere(deps, target);
  // The namespace lock comes with BEGIN, so the parent read here is the one the create inserts under.
  return deps.store.transaction(async (tx) => {
    const { existing, parent } = await inspectWrite(deps, tx, user, path, options);
    const content = storedContent(target, stored);
    if (existing !== null) {
      if (existing.backend !== backend) throw new CallfsError('PRECONDITION_FAILED', `${path} moved to another backend during the upload; retry`);
      const entry = await tx.update(path, existing.version, content).catch(raced(['PRECONDITION_FAILED', 'FILE_NOT_FOUND']));
      stopUnlessCommitted(signal, backend);
      return { entry, created: false, storedOn };
    }
    const file = newFile(user, path, options, parent, content);
    const entry = await tx.create(file, { parents: parentsFor(user, parent), ...(parent === undefined ? {} : { parent }) }).catch(raced(['FILE_ALREADY_EXISTS']));
    stopUnlessCommitted(signal, backend);
    return { entry, created: true, storedOn };
  }, { namespaceLock: 'shared' });
}

/**
 * Transactions tried without the lock after the one-round-trip commit lost:
 * one. A writer that lost a race is in a storm of writers of one path, where
 * queueing on the lock wastes less than deciding again and again (measured:
 * put-same-path-contention 0.40× of put-4k-unique with three lock-free tries,
 * 0.53-0.57× with one).
 */
const LOCK_FREE_ATTEMPTS = 1;

/**
 * The commit of a content-addressed write, without the path lock: the bytes
 * are stored aside under their hash, and the commit applies only to the rows
 * it read — in one round trip when nothing changed since the pre-upload
 * lookup, else decided again in a transaction (permissions and
 * preconditions checked against the rows as they are then). Writers that
 * keep racing for one path end up serialised on its lock, so a storm of
 * PUTs to one path converges: last writer wins, readers see one whole content.
 */
async function commitContentAddressed(deps: EngineDeps, user: User, path: string, options: WriteFileOptions, target: Target, stored: PutResult, pre: WriteDecision): Promise<WriteResult> {
  const signal = options.signal ?? NEVER_ABORTED;
  let fast = await commitUnchanged(deps, user, path, options, target, stored, pre, signal);
  if (pre.presumed !== undefined) {
    pre.presumed.record(fast === null);
    // Presumed new, and it was not (or the cached rows were stale): decide on what is there now, as
    // a PUT that looked first would have, and commit in one round trip again.
    if (fast === null) fast = await commitUnchanged(deps, user, path, options, target, stored, await inspectWrite(deps, deps.store, user, path, options), signal);
  }
  if (fast !== null) return fast;
  // The blob's index row, when the put left it to the commit, came with the one-round-trip one, if
  // that ran; the transactions below do not carry it.
  await stored.index?.write();
  for (let attempt = 1; attempt <= LOCK_FREE_ATTEMPTS; attempt++) {
    try {
      return await commitWrite(deps, user, path, options, target, stored, signal);
    } catch (err) {
      if (!(err instanceof WriteRace)) throw err;
    }
  }
  // Still losing to other writers of the path: queue on its lock with the ones that got there. Each
  // race lost there is another writer's commit, and lock-free writers soon queue too: it converges.
  return deps.locks.withLock([lockKey(path)], (held) => retryRaces(LOCKED_ATTEMPTS, () => commitWrite(deps, user, path, options, target, stored, held)), lockOptions(options));
}

/** Decisions made again under the lock: bounded by the writers of the path that can still commit in between. */
const LOCKED_ATTEMPTS = 100;

const NEVER_ABORTED = new AbortController().signal;

const storedElsewhere = (deps: EngineDeps, target: Target): string | null => (target.instanceId !== null && target.instanceId !== deps.instanceId ? target.instanceId : null);

/**
 * The commit as decided before the upload, in one round trip, if nothing
 * that decision read has changed since (the ancestors, and the file when it
 * is replaced: same ids, paths and versions, so the same permissions and
 * preconditions). Null when something changed, or when the write needs more
 * than one row (missing parents): commitWrite then decides again.
 */
async function commitUnchanged(deps: EngineDeps, user: User, path: string, options: WriteFileOptions, target: Target, stored: PutResult, pre: WriteDecision, signal: AbortSignal): Promise<WriteResult | null> {
  const backend = target.type;
  const storedOn = storedElsewhere(deps, target);
  const content = storedContent(target, stored);
  if (pre.existing !== null) {
    if (pre.existing.backend !== backend) return null;
    stopUnlessCommitted(signal, backend);
    const entry = await deps.store.updateIfUnchanged(path, pre.existing.version, content, [...pre.ancestors, pre.existing], stored.index);
    return entry === null ? null : { entry, created: false, storedOn };
  }
  if (!pre.parentExists) return null;
  stopUnlessCommitted(signal, backend);
  const entry = await deps.store.createIfUnchanged(newFile(user, path, options, pre.parent, content), pre.ancestors, stored.index);
  return entry === null ? null : { entry, created: true, storedOn };
}

/**
 * Whether an aborted write still commits its metadata. A lock lost while we
 * worked means someone else may be writing: never commit then. A client gone
 * away is different for path-keyed bytes (S3): the object under the key is
 * already replaced, so the entry must follow it or it would describe bytes
 * that no longer exist. Content-addressed bytes were written aside; dropping
 * the commit loses nothing.
 */
function stopUnlessCommitted(signal: AbortSignal, backend: BackendType): void {
  if (!signal.aborted) return;
  if (!isContentAddressed(backend) && !isCallfsError(signal.reason, 'LOCKED')) return;
  throw signal.reason;
}

/**
 * Create or replace a file with the bytes of `body`, atomically: readers see
 * the old or the new content, never a mix, and a failed or aborted upload
 * leaves the previous content (or no entry) behind.
 *
 * Where the bytes go is placement's answer (placement.ts): a replaced file
 * keeps its backend and its holder, another instance's bytes being written
 * there through the peer proxy; a new file goes to the default backend here.
 * Content-addressed bytes do not depend on the path, so they are streamed
 * with no lock at all, and the metadata commit applies only to the rows it
 * read (commitContentAddressed); path-keyed backends (S3) upload under the
 * path's lock.
 */
export async function writeFile(deps: EngineDeps, user: User, path: string, body: Readable, options: WriteFileOptions): Promise<WriteResult> {
  let pre;
  let targets: Target[];
  try {
    // Before anything is read: a body that can never fit, and a write that is not allowed, cost nothing.
    assertUploadFits(deps, options.length);
    pre = await decideWrite(deps, user, path, options);
    targets = targetsForWrite(deps, pre.existing, path);
    assertEnoughCopies(deps, targets);
  } catch (err) {
    body.resume();
    throw err;
  }
  let target = targets[0] as Target;
  const { backend } = target;
  const putOptions = {
    key: path,
    maxBytes: deps.maxUploadBytes,
    ...(options.length === undefined ? {} : { expectedSize: options.length }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
  if (isContentAddressed(target.type)) {
    let stored: PutResult;
    let copies: string[];
    if (replicated(deps, target)) {
      const put = await putReplicated(deps, targets, body, putOptions, deps.cluster?.minReplicas ?? 1).catch((err: unknown) => {
        deps.metrics?.replicatedWrites?.inc({ result: 'refused' });
        body.resume();
        throw err;
      });
      ({ target, stored, copies } = put);
      deps.metrics?.replicatedWrites?.inc({ result: copies.length >= (deps.cluster?.replicas ?? 1) ? 'full' : 'degraded' });
    } else {
      // The blob's index row (the CAS's) comes with the entry's commit: one round trip less per write.
      stored = await backend.put(body, { ...putOptions, deferIndex: true });
      copies = target.instanceId === null ? [] : [target.instanceId];
    }
    const committed = target;
    try {
      // The S3 replica (ha.*): copied now, or queued durably, before the write is acknowledged.
      if (deps.casReplica !== undefined && committed.instanceId !== null) await deps.casReplica.write(stored.sha256, committed.instanceId, committed.backend, options.signal);
      await options.beforeCommit?.();
      const result = await commitContentAddressed(deps, user, path, options, committed, stored, pre);
      return { ...result, copies };
    } finally {
      // Until here the bytes were pinned against the CAS collector; now the entry names them, or never will.
      stored.release?.();
    }
  }
  return deps.locks.withLock(
    [lockKey(path)],
    async (signal) => {
      await inspectWrite(deps, deps.store, user, path, options);
      const stored = await backend.put(body, { ...putOptions, signal });
      try {
        await options.beforeCommit?.();
        return await retryRaces(LOCK_FREE_ATTEMPTS, () => commitWrite(deps, user, path, options, target, stored, signal));
      } finally {
        stored.release?.();
      }
    },
    lockOptions(options),
  );
}

/** Whether writes of `target`'s backend make several copies (replication of instance-local, content-addressed bytes). */
function replicated(deps: EngineDeps, target: Target): boolean {
  return (deps.cluster?.replicas ?? 1) > 1 && target.instanceId !== null && isContentAddressed(target.type);
}

/** SERVICE_UNAVAILABLE before a byte is read when fewer instances can take a copy than a write needs. */
function assertEnoughCopies(deps: EngineDeps, targets: Target[]): void {
  const first = targets[0];
  if (first !== undefined && !replicated(deps, first)) return;
  const need = deps.cluster?.minReplicas ?? 1;
  if (targets.length >= need) return;
  deps.metrics?.replicatedWrites?.inc({ result: 'refused' });
  throw new CallfsError('SERVICE_UNAVAILABLE', `only ${targets.length} instances can take a copy, and a write needs ${need}`, { retryAfterSeconds: 10, component: 'replication' });
}

function lockOptions(options: { signal?: AbortSignal }): { signal?: AbortSignal } {
  return options.signal === undefined ? {} : { signal: options.signal };
}

/**
 * mkdir -p: create a directory and any missing ancestors. An existing
 * directory is not an error (`created: false`); an existing file is
 * FILE_ALREADY_EXISTS.
 */
export async function makeDirectory(deps: EngineDeps, user: User, path: string, options: { mode?: number; signal?: AbortSignal } = {}): Promise<WriteResult> {
  const existing = async (ops: MetadataOps): Promise<WriteResult | null> => {
    const r = await resolve(ops, user, path);
    const entry = path === '/' ? await ops.get('/') : r.entry;
    if (entry === null) return null;
    if (entry.type !== 'directory') {
      const holder = holderElsewhere(deps, entry);
      throw holder === null ? new CallfsError('FILE_ALREADY_EXISTS', `a file exists at ${path}`) : crossServerConflict(entry, holder);
    }
    return { entry, created: false, storedOn: null };
  };
  return deps.locks.withLock(
    [lockKey(path)],
    async (signal) => {
      try {
        return await deps.store.transaction(async (tx) => {
          const found = await existing(tx);
          if (found !== null) return found;
          const r = await resolve(tx, user, path);
          const parent = r.ancestors[r.ancestors.length - 1];
          if (parent !== undefined) assertAccess(user, parent, 'w');
          const entry = await tx.create(
            { path, type: 'directory', mode: directoryModeFor(options.mode ?? DEFAULT_DIR_MODE, parent), uid: user.uid, gid: groupFor(user, parent) },
            { parents: parentsFor(user, parent) },
          );
          signal.throwIfAborted();
          return { entry, created: true, storedOn: null };
        });
      } catch (err) {
        // A concurrent mkdir -p of a deeper path (another lock key) may have created this
        // directory as one of its ancestors after we looked: that is success, not a conflict.
        if (!isCallfsError(err, 'FILE_ALREADY_EXISTS')) throw err;
        const found = await existing(deps.store);
        if (found === null) throw err;
        return found;
      }
    },
    lockOptions(options),
  );
}

/**
 * Whether `user` may create or replace a file at `path` now (the checks of a
 * PUT, before any byte): throws as that PUT would. Resumable uploads ask at
 * creation; the write at completion checks again.
 */
export async function checkWrite(deps: EngineDeps, user: User, path: string): Promise<void> {
  await inspectWrite(deps, deps.store, user, path, { mustCreate: false });
}

/** Name check for a rename in place: one segment, nothing that would change the directory. */
export function assertPlainName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || name.includes('/') || baseName('/' + name) !== name) {
    throw new CallfsError('BAD_REQUEST', '"name" must be a single path segment');
  }
  // The same characters are refused in a name as in a path (INVALID_PATH).
  canonicalize('/' + name);
  return name;
}

/**
 * cp: a new file at `to` with the content of the file at `from` (read
 * permission on it; the same create rules as a POST at `to`, or with
 * `replace` as a PUT). Content-addressed
 * bytes are not copied: the new entry names the same blob, on the same
 * instance, as a metadata operation. Path-keyed bytes (S3) are streamed into a
 * new object.
 */
export async function copyFile(deps: EngineDeps, user: User, from: string, to: string, options: { replace?: boolean; signal?: AbortSignal } = {}): Promise<WriteResult> {
  const source = await statForRead(deps, user, from);
  if (source.type !== 'file') throw new CallfsError('IS_A_DIRECTORY', `is a directory: ${from}`);
  const writeOptions: WriteFileOptions = { mustCreate: options.replace !== true, mode: source.mode & 0o777, length: source.size, ...lockOptions(options) };
  const content = contentOf(source);
  const holder = content?.locations[0];
  if (content !== null && isContentAddressed(content.backend) && (holder?.kind !== 'instance' || knowsInstance(deps, holder.instanceId))) {
    const pre = await inspectWrite(deps, deps.store, user, to, writeOptions);
    const target = writeTarget(deps, content.backend, holder?.kind === 'instance' ? holder.instanceId : deps.instanceId);
    return commitContentAddressed(deps, user, to, writeOptions, target, { id: content.blobId, size: content.size, sha256: content.sha256 }, pre);
  }
  const bytes = await openContent(deps, source, lockOptions(options));
  return writeFile(deps, user, to, bytes, writeOptions);
}
