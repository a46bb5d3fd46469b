import { CallfsError, notFound } from '../../../lib/errors.js';
import type { BlobRecord, CreateOptions, Entry, EntryPatch, MoveOptions, NewEntry, SingleUseLink } from '../../../lib/metadata/types.js';
import { assertAttributes, assertCount, assertNewEntry, assertPatch } from '../../../lib/metadata/validate.js';
import { ancestorsOf, assertCanonical, baseName, isWithin, parentOf } from '../../../lib/paths.js';
import { addReferences } from './blobs.js';
import { compareBytes, type Table } from './table.js';

/**
 * The namespace rules of lib/metadata/namespace-sql.ts and the schema's
 * constraints and triggers, over in-memory tables: one function per
 * operation, each given the tables it may change (a layer that the store
 * commits or drops).
 */

/** An inode as stored: the entry and its depth (segment count: 0 for '/'). */
export type Row = Entry & { depth: number };

/** The tables an operation works on, the time it runs at and the id sequence. */
export interface Scope {
  inodes: Table<Row>;
  blobs: Table<BlobRecord>;
  links: Table<SingleUseLink>;
  now: Date;
  nextId(): string;
}

const notADirectory = (path: string): CallfsError => new CallfsError('NOT_A_DIRECTORY', `not a directory: ${path}`);
const alreadyExists = (path: string): CallfsError => new CallfsError('FILE_ALREADY_EXISTS', `already exists: ${path}`);
/** What the database says when a row breaks a CHECK constraint (see db-errors.ts). */
const invalidRow = (why: string): CallfsError => new CallfsError('BAD_REQUEST', 'the entry is not valid', { cause: new Error(why) });

export const depthOf = (path: string): number => (path === '/' ? 0 : path.split('/').length - 1);

/** A copy of a row as callers get it: no depth, Dates of its own. */
export function entryOf(row: Row): Entry {
  const { depth: _depth, ...entry } = row;
  return { ...entry, atime: new Date(row.atime), mtime: new Date(row.mtime), ctime: new Date(row.ctime), createdAt: new Date(row.createdAt), updatedAt: new Date(row.updatedAt) };
}

/** The root as the first migration inserts it: owned by root, mode 1777 (like /tmp). */
export function rootRow(id: string, now: Date): Row {
  return {
    id, path: '/', parentId: null, name: '', type: 'directory', size: 0, mode: 0o1777, uid: 0, gid: 0,
    atime: now, mtime: now, ctime: now, backend: null, instanceId: null, blobId: null, etag: null, version: 1, createdAt: now, updatedAt: now, depth: 0,
  };
}

/** The schema's CHECK constraints on an inode. */
function assertValidRow(row: Row): void {
  if (row.type === 'directory' && (row.backend !== null || row.instanceId !== null || row.blobId !== null || row.etag !== null || row.size !== 0)) {
    throw invalidRow(`directory ${row.path} has bytes`);
  }
  if (row.backend === 'cas' && (row.instanceId === null || row.blobId === null)) throw invalidRow(`CAS file ${row.path} does not name its blob`);
}

/** Rows strictly below `path`. */
export function* subtree(inodes: Table<Row>, path: string): Generator<Row> {
  const prefix = path === '/' ? '/' : `${path}/`;
  for (const row of inodes.values()) if (row.path !== '/' && row.path.startsWith(prefix)) yield row;
}

function hasChildren(inodes: Table<Row>, id: string): boolean {
  for (const row of inodes.values()) if (row.parentId === id) return true;
  return false;
}

function insert(s: Scope, row: Row): void {
  s.inodes.set(row.path, row);
  if (row.backend === 'cas') addReferences(s.blobs, row.instanceId as string, row.blobId as string, 1, row.size, s.now);
}

/** Remove rows as one DELETE statement does: one decrement per distinct blob. */
function remove(s: Scope, rows: readonly Row[]): void {
  const counts = new Map<string, { instanceId: string; blobId: string; n: number }>();
  for (const row of rows) {
    s.inodes.delete(row.path);
    if (row.backend !== 'cas') continue;
    const key = `${row.instanceId}\u0000${row.blobId}`;
    const seen = counts.get(key) ?? { instanceId: row.instanceId as string, blobId: row.blobId as string, n: 0 };
    seen.n++;
    counts.set(key, seen);
  }
  for (const c of counts.values()) addReferences(s.blobs, c.instanceId, c.blobId, -c.n, 0, s.now);
}

export function getChain(inodes: Table<Row>, path: string): Entry[] {
  assertCanonical(path);
  const chain: Entry[] = [];
  for (const p of path === '/' ? ['/'] : [...ancestorsOf(path), path]) {
    const row = inodes.get(p);
    if (row === undefined) break;
    chain.push(entryOf(row));
  }
  return chain;
}

/** The parent of `path`, creating missing ancestors with `parents` (mkdir -p). */
function ensureParent(s: Scope, path: string, parents: CreateOptions['parents']): Row {
  let parent: Row | null = null;
  for (const ancestor of ancestorsOf(path)) {
    const existing = s.inodes.get(ancestor);
    if (existing !== undefined) {
      if (existing.type !== 'directory') throw notADirectory(ancestor);
      parent = existing;
      continue;
    }
    if (parents === undefined || parent === null) throw notFound(ancestor);
    parent = newRow(s, { path: ancestor, type: 'directory', ...parents }, parent);
    insert(s, parent);
  }
  if (parent === null) throw notFound('/');
  return parent;
}

function newRow(s: Scope, entry: NewEntry, parent: { id: string }): Row {
  const { now } = s;
  return {
    id: s.nextId(), path: entry.path, parentId: parent.id, name: baseName(entry.path), type: entry.type, size: entry.size ?? 0,
    mode: entry.mode, uid: entry.uid, gid: entry.gid, atime: now, mtime: entry.mtime ?? now, ctime: now,
    backend: entry.backend ?? null, instanceId: entry.instanceId ?? null, blobId: entry.blobId ?? null, etag: entry.etag ?? null,
    version: 1, createdAt: now, updatedAt: now, depth: depthOf(entry.path),
  };
}

/**
 * CreateOptions.parent is not needed here: the store runs one transaction at
 * a time, so a parent read in this transaction is still the one below it.
 */
export function createEntry(s: Scope, entry: NewEntry, options: CreateOptions = {}): Entry {
  assertCanonical(entry.path);
  assertNewEntry(entry);
  if (options.parents !== undefined) assertAttributes(options.parents);
  if (entry.path === '/') throw alreadyExists('/');
  const parent = ensureParent(s, entry.path, options.parents);
  const row = newRow(s, entry, parent);
  assertValidRow(row);
  if (s.inodes.get(entry.path) !== undefined) throw alreadyExists(entry.path);
  insert(s, row);
  return entryOf(row);
}

/** The row with `patch` applied: version and change times move on, as every UPDATE of an entry does. */
function patched(s: Scope, row: Row, patch: EntryPatch): Row {
  const next: Row = { ...row, version: row.version + 1, ctime: s.now, updatedAt: s.now };
  for (const key of ['size', 'mode', 'uid', 'gid', 'mtime', 'atime', 'backend', 'instanceId', 'blobId', 'etag'] as const) {
    if (patch[key] !== undefined) Object.assign(next, { [key]: patch[key] });
  }
  return next;
}

/** Replace a row by its patched version, moving blob references when it names another blob (the update trigger). */
function rewrite(s: Scope, row: Row, next: Row): void {
  assertValidRow(next);
  s.inodes.set(next.path, next);
  const sameBlob = row.backend === next.backend && row.instanceId === next.instanceId && row.blobId === next.blobId;
  if (sameBlob) return;
  if (row.backend === 'cas') addReferences(s.blobs, row.instanceId as string, row.blobId as string, -1, 0, s.now);
  if (next.backend === 'cas') addReferences(s.blobs, next.instanceId as string, next.blobId as string, 1, next.size, s.now);
}

export function updateEntry(s: Scope, path: string, expectedVersion: number, patch: EntryPatch): Entry {
  assertCanonical(path);
  assertCount(expectedVersion, 'expectedVersion');
  assertPatch(patch);
  const row = s.inodes.get(path);
  if (row === undefined) throw notFound(path);
  if (row.version !== expectedVersion) throw new CallfsError('PRECONDITION_FAILED', `${path} changed (version ${row.version}, expected ${expectedVersion})`);
  const next = patched(s, row, patch);
  rewrite(s, row, next);
  return entryOf(next);
}

/** Each row read still has the id, path and version it was read with (see namespace-sql.ts `unchanged`). */
function unchanged(inodes: Table<Row>, expected: readonly Entry[]): boolean {
  return expected.every((e) => {
    const row = inodes.get(e.path);
    return row !== undefined && row.id === e.id && row.version === e.version;
  });
}

/** Input checks of createIfUnchanged, made before anything is read (they throw; a changed row only holds the write back). */
export function assertGuardedCreate(entry: NewEntry, expected: readonly Entry[]): void {
  assertCanonical(entry.path);
  assertNewEntry(entry);
  if (entry.path === '/') throw alreadyExists('/');
  if (expected[expected.length - 1]?.path !== parentOf(entry.path)) {
    throw new CallfsError('INTERNAL_ERROR', `createIfUnchanged: the rows read must end with the parent of ${entry.path}`);
  }
}

export function createIfUnchanged(s: Scope, entry: NewEntry, expected: readonly Entry[]): Entry | null {
  if (!unchanged(s.inodes, expected)) return null;
  const row = newRow(s, entry, expected[expected.length - 1] as Entry);
  assertValidRow(row);
  if (s.inodes.get(entry.path) !== undefined) return null;
  insert(s, row);
  return entryOf(row);
}

export function assertGuardedUpdate(path: string, version: number, patch: EntryPatch): void {
  assertCanonical(path);
  assertCount(version, 'expectedVersion');
  assertPatch(patch);
}

export function updateIfUnchanged(s: Scope, path: string, version: number, patch: EntryPatch, expected: readonly Entry[]): Entry | null {
  const row = s.inodes.get(path);
  if (row === undefined || row.version !== version || !unchanged(s.inodes, expected)) return null;
  const next = patched(s, row, patch);
  rewrite(s, row, next);
  return entryOf(next);
}

export function moveEntry(s: Scope, from: string, to: string, options: MoveOptions = {}): { entry: Entry; replaced: Entry | null } {
  assertCanonical(from);
  assertCanonical(to);
  if (options.parents !== undefined) assertAttributes(options.parents);
  if (from === '/' || to === '/') throw new CallfsError('BAD_REQUEST', "the root cannot be moved, and nothing can be moved onto '/'");
  if (isWithin(to, from)) throw new CallfsError('BAD_REQUEST', `cannot move ${from} into itself (${to})`);
  const source = s.inodes.get(from);
  if (source === undefined) throw notFound(from);
  const parent = ensureParent(s, to, options.parents);

  let replaced: Row | null = null;
  const target = s.inodes.get(to);
  if (target !== undefined) {
    if (options.overwrite !== true) throw alreadyExists(to);
    if (target.type === 'directory' && hasChildren(s.inodes, target.id)) throw new CallfsError('FILE_ALREADY_EXISTS', `destination ${to} is a non-empty directory`);
    remove(s, [target]);
    replaced = target;
  }

  if (source.type === 'directory') {
    // Paths and depths only: ids, and so parent ids and blob references, stay.
    const shift = depthOf(to) - depthOf(from);
    const descendants = [...subtree(s.inodes, from)];
    for (const row of descendants) s.inodes.delete(row.path);
    for (const row of descendants) {
      const path = to + row.path.slice(from.length);
      s.inodes.set(path, { ...row, path, depth: row.depth + shift });
    }
  }
  s.inodes.delete(from);
  const moved: Row = { ...source, path: to, name: baseName(to), parentId: parent.id, depth: depthOf(to), version: source.version + 1, ctime: s.now, updatedAt: s.now };
  s.inodes.set(to, moved);
  return { entry: entryOf(moved), replaced: replaced === null ? null : entryOf(replaced) };
}

export function deleteEntry(s: Scope, path: string, options: { recursive?: boolean; expectedVersion?: number } = {}): Entry[] {
  assertCanonical(path);
  if (options.expectedVersion !== undefined) assertCount(options.expectedVersion, 'expectedVersion');
  if (path === '/') throw new CallfsError('BAD_REQUEST', 'the root cannot be deleted');
  const entry = s.inodes.get(path);
  if (entry === undefined) throw notFound(path);
  if (options.expectedVersion !== undefined && entry.version !== options.expectedVersion) {
    throw new CallfsError('PRECONDITION_FAILED', `${path} changed (version ${entry.version}, expected ${options.expectedVersion})`);
  }
  if (entry.type === 'file' || options.recursive !== true) {
    if (entry.type === 'directory' && hasChildren(s.inodes, entry.id)) throw new CallfsError('DIRECTORY_NOT_EMPTY', `directory not empty: ${path}`);
    remove(s, [entry]);
    return [entryOf(entry)];
  }
  const rows = [entry, ...subtree(s.inodes, path)].sort((a, b) => compareBytes(a.path, b.path));
  remove(s, rows);
  return rows.map(entryOf);
}
