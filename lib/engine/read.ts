import type { Readable } from 'node:stream';
import type { User } from '../auth/users.js';
import { assertAccess, isRoot, mayAccess } from '../auth/permissions.js';
import type { ByteRange } from '../backends/types.js';
import type { Entry, ListCursor } from '../metadata/types.js';
import { CallfsError, isCallfsError } from '../errors.js';
import { ancestorsOf } from '../paths.js';
import { resolveExisting, type EngineDeps } from './context.js';
import { contentOf, readSources, type Content } from './placement.js';

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
 * are: this instance or the shared store first, then another holder through
 * the peer proxy. Permissions are the caller's business (statForRead): the
 * bytes are named by the entry. A whole read is verified against the entry's
 * sha256 by backends that can. The caller consumes or destroys the stream.
 */
export async function openContent(deps: EngineDeps, entry: Entry, options: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<Readable> {
  const sources = readSources(deps, entry);
  const content = contentOf(entry) as Content;
  let failure: unknown = null;
  for (const source of sources) {
    try {
      const opened = await source.backend.open(content.blobId, {
        sha256: content.sha256,
        ...(options.range === undefined ? {} : { range: options.range }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      return opened.stream;
    } catch (err) {
      // A holder that cannot serve is skipped for the next one; what the bytes are (missing, corrupt) is not.
      if (!isCallfsError(err, 'BAD_GATEWAY')) throw err;
      failure = err;
    }
  }
  throw failure;
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
