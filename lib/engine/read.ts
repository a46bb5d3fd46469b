import type { Readable } from 'node:stream';
import type { User } from '../auth/users.js';
import { assertAccess, isRoot, mayAccess } from '../auth/permissions.js';
import type { ByteRange } from '../backends/types.js';
import type { Entry, ListCursor } from '../metadata/types.js';
import { CallfsError, isCallfsError } from '../errors.js';
import { ancestorsOf } from '../paths.js';
import { resolveExisting, type EngineDeps } from './context.js';
import { isInstanceLocal } from '../backends/registry.js';
import { contentOf, knowsInstance, readSources, writeTarget, type Content, type Source } from './placement.js';

/** stat: the entry at `path` (search permission on every ancestor; no read permission needed, as in POSIX). */
export async function stat(deps: EngineDeps, user: User, path: string): Promise<Entry> {
  return (await resolveExisting(deps.store, user, path)).entry;
}

/** The entry of a file the user may read. IS_A_DIRECTORY is not thrown: the caller decides what a directory means. */
export async function statForRead(deps: EngineDeps, user: User, path: string): Promise<Entry> {
  const entry = await stat(deps, user, path);
  assertAccess(user, { ...entry, path }, 'r');
  return entry;
}

/**
 * Open a file's bytes (whole, or one range) from where placement says they
 * are: this instance or the shared store first, then the other copies, live
 * instances before ones that look down. Permissions are the caller's
 * business (statForRead): the bytes are named by the entry. A whole read is
 * verified against the entry's sha256 by backends that can; a copy that is
 * missing, corrupted (quarantined by its instance for the repairer to heal)
 * or unreachable is skipped for the next one. The caller consumes or
 * destroys the stream.
 */
export async function openContent(deps: EngineDeps, entry: Entry, options: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<Readable> {
  const content = contentOf(entry);
  if (content === null) throw new CallfsError('IS_A_DIRECTORY', `is a directory: ${entry.path}`);
  const openOptions = {
    sha256: content.sha256,
    ...(options.range === undefined ? {} : { range: options.range }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
  const tried = new Set<string>();
  let first: unknown = null;
  const attempt = async (source: Source): Promise<Readable | null> => {
    tried.add(sourceKey(source));
    try {
      const opened = await source.backend.open(content.blobId, openOptions);
      if (first !== null) deps.metrics?.readFailovers?.inc();
      return opened.stream;
    } catch (err) {
      options.signal?.throwIfAborted();
      if (!FAILS_OVER.some((code) => isCallfsError(err, code))) throw err;
      if (source.location.kind === 'instance' && isCallfsError(err, 'BAD_GATEWAY')) deps.cluster?.suspect(source.location.instanceId);
      first ??= err;
      return null;
    }
  };
  let sources: Source[] = [];
  let unreachable: unknown = null;
  try {
    sources = readSources(deps, entry);
  } catch (err) {
    unreachable = err;
  }
  // The entry's own holder first when it is this instance (or the shared store): no query on the common path.
  const nearest = sources[0];
  if (nearest !== undefined && (nearest.location.kind === 'shared' || nearest.location.instanceId === deps.instanceId)) {
    const stream = await attempt(nearest);
    if (stream !== null) return stream;
  }
  for (const source of [...(await otherCopies(deps, content)), ...sources]) {
    if (tried.has(sourceKey(source))) continue;
    const stream = await attempt(source);
    if (stream !== null) return stream;
  }
  // Last, the S3 replica (ha.*): one instance plus the bucket survives the loss of that instance's disk.
  if (deps.casReplica !== undefined && isInstanceLocal(content.backend)) {
    try {
      const opened = await deps.casReplica.open(content.sha256, openOptions);
      deps.metrics?.readFailovers?.inc();
      return opened.stream;
    } catch (err) {
      options.signal?.throwIfAborted();
      if (!FAILS_OVER.some((code) => isCallfsError(err, code))) throw err;
    }
  }
  throw first ?? unreachable ?? new CallfsError('BAD_GATEWAY', `no copy of ${entry.path} can be reached`, { component: 'peer' });
}

/** Failures of one copy that another copy may not share. */
const FAILS_OVER = ['BAD_GATEWAY', 'FILE_NOT_FOUND', 'INTEGRITY_ERROR', 'SERVICE_UNAVAILABLE'] as const;

const sourceKey = (s: Source): string => (s.location.kind === 'shared' ? `shared:${s.location.backend}` : `instance:${s.location.instanceId}`);

/**
 * The recorded copies of instance-local content as sources: this instance's
 * first, then instances that are up, then the ones that look down (tried
 * last, within the peer timeout). None without peers or for shared backends.
 */
async function otherCopies(deps: EngineDeps, content: Content): Promise<Source[]> {
  if (deps.peers === undefined || deps.peers.size === 0 || !isInstanceLocal(content.backend)) return [];
  const copies = (await deps.store.cluster.listCopies(content.sha256)).filter((c) => !c.quarantined && knowsInstance(deps, c.instanceId));
  const up = (id: string): boolean => id === deps.instanceId || deps.cluster?.isUp(id) !== false;
  const rank = (id: string): number => (id === deps.instanceId ? 0 : up(id) ? 1 : 2);
  return copies
    .map((c) => c.instanceId)
    .sort((a, b) => rank(a) - rank(b))
    .map((instanceId) => writeTarget(deps, content.backend, instanceId))
    .map((t) => ({ backend: t.backend, location: t.location }));
}

/**
 * The instances holding a good copy of a file's instance-local content
 * (X-CallFS-Replicas), the entry's own holder when no copy is recorded;
 * empty for directories and shared backends.
 */
export async function replicasOf(deps: EngineDeps, entry: Entry): Promise<string[]> {
  const content = contentOf(entry);
  if (content === null || !isInstanceLocal(content.backend)) return [];
  const holder = entry.instanceId === null ? [] : [entry.instanceId];
  if (deps.peers === undefined || deps.peers.size === 0) return holder;
  const notCounting = new Set(deps.cluster?.notCounting() ?? []);
  const copies = (await deps.store.cluster.listCopies(content.sha256)).filter((c) => !c.quarantined && !notCounting.has(c.instanceId)).map((c) => c.instanceId);
  return copies.length === 0 ? holder : copies;
}

/** A listing: the directory, its items streamed, and how many items a whole listing yields (taken when asked). */
export interface Listing<T extends Entry> {
  directory: Entry;
  items: AsyncIterable<T>;
  count(): Promise<number>;
}

/** A directory the user may list, with its children streamed in order (files first, then directories, by name). */
export async function listDirectory(deps: EngineDeps, user: User, path: string, options: { after?: ListCursor; limit?: number } = {}): Promise<Listing<Entry>> {
  const directory = await stat(deps, user, path);
  if (directory.type !== 'directory') throw new CallfsError('BAD_REQUEST', `not a directory: ${path}`);
  assertAccess(user, { ...directory, path }, 'r');
  return { directory, items: deps.store.listChildren(path, options), count: () => deps.store.count(path, null) };
}

/** Whether the user may see inside a directory of a tree listing: read it and search it, as `ls -R` needs. */
const mayOpen = (user: User, dir: Entry): boolean => mayAccess(user, dir, 'r') && mayAccess(user, dir, 'x');

/**
 * The number of entries listTree yields to `user`: every descendant down to
 * `maxDepth`, less what lies inside directories the user may not open. Found
 * from the subtree's directories and counts, never from its files one by
 * one, so that a count says no more than the listing shows.
 */
async function countVisible(deps: EngineDeps, user: User, path: string, maxDepth: number): Promise<number> {
  let total = await deps.store.count(path, { maxDepth });
  if (isRoot(user)) return total;
  const closed = new Set<string>();
  for await (const dir of deps.store.listRecursive(path, { maxDepth, directoriesOnly: true })) {
    if (closed.size > 0 && ancestorsOf(dir.path).some((a) => closed.has(a))) continue;
    if (mayOpen(user, dir)) continue;
    closed.add(dir.path);
    // dir.depth 0 is a direct child: its own children sit one level deeper.
    const below = maxDepth - dir.depth - 1;
    if (below >= 0) total -= await deps.store.count(dir.path, { maxDepth: below });
  }
  return total;
}

/**
 * Every descendant down to `maxDepth`, in path order, leaving out what lies
 * inside directories the user may not read and search (as `ls -R` would).
 */
export async function listTree(deps: EngineDeps, user: User, path: string, options: { maxDepth: number; after?: string }): Promise<Listing<Entry & { depth: number }>> {
  const directory = await stat(deps, user, path);
  if (directory.type !== 'directory') throw new CallfsError('BAD_REQUEST', `not a directory: ${path}`);
  assertAccess(user, { ...directory, path }, 'r');
  const source = deps.store.listRecursive(path, { maxDepth: options.maxDepth, ...(options.after === undefined ? {} : { after: options.after }) });
  async function* visible(): AsyncGenerator<Entry & { depth: number }> {
    const closed = new Set<string>();
    for await (const item of source) {
      if (closed.size > 0 && ancestorsOf(item.path).some((a) => closed.has(a))) continue;
      if (item.type === 'directory' && !mayOpen(user, item)) closed.add(item.path);
      yield item;
    }
  }
  return { directory, items: visible(), count: () => countVisible(deps, user, path, options.maxDepth) };
}
