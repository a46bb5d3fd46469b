import { CallfsError, notFound } from '../../../lib/errors.js';
import type { Entry, ListChildrenOptions, ListRecursiveOptions } from '../../../lib/metadata/types.js';
import { assertCount, assertEntryType } from '../../../lib/metadata/validate.js';
import { assertCanonical } from '../../../lib/paths.js';
import { entryOf, subtree, type Row } from './namespace.js';
import { compareBytes, type Table } from './table.js';

/**
 * Listings as lib/metadata/listing-sql.ts orders and bounds them. Each is
 * taken whole when its first item is asked for: the contract allows entries
 * created or removed during a listing to show up or not, and entries that
 * exist throughout are returned exactly once either way.
 */

function openDirectory(inodes: Table<Row>, path: string): Row {
  assertCanonical(path);
  const dir = inodes.get(path);
  if (dir === undefined) throw notFound(path);
  if (dir.type !== 'directory') throw new CallfsError('NOT_A_DIRECTORY', `not a directory: ${path}`);
  return dir;
}

const typeOrder = (type: Entry['type']): number => (type === 'file' ? 0 : 1);

/** Files first, then directories, each by name in byte order. */
function childOrder(a: { type: Entry['type']; name: string }, b: { type: Entry['type']; name: string }): number {
  return typeOrder(a.type) - typeOrder(b.type) || compareBytes(a.name, b.name);
}

function childrenOf(inodes: Table<Row>, dir: Row): Row[] {
  return [...inodes.values()].filter((row) => row.parentId === dir.id);
}

export function listChildren(inodes: Table<Row>, path: string, options: ListChildrenOptions): Entry[] {
  if (options.limit !== undefined) assertCount(options.limit, 'limit');
  const after = options.after;
  if (after !== undefined) {
    assertEntryType(after.type, 'after.type');
    if (typeof after.name !== 'string') throw new CallfsError('BAD_REQUEST', 'after.name must be a string');
  }
  const dir = openDirectory(inodes, path);
  const children = childrenOf(inodes, dir)
    .filter((row) => after === undefined || childOrder(row, after) > 0)
    .sort(childOrder);
  return children.slice(0, options.limit ?? children.length).map(entryOf);
}

/** Rows of the subtree of `dir` down to `maxDepth` levels below its children. */
function within(inodes: Table<Row>, dir: Row, maxDepth: number): Row[] {
  const deepest = dir.depth + 1 + maxDepth;
  return [...subtree(inodes, dir.path)].filter((row) => row.depth <= deepest);
}

export function listRecursive(inodes: Table<Row>, path: string, options: ListRecursiveOptions): Array<Entry & { depth: number }> {
  assertCount(options?.maxDepth, 'maxDepth');
  const dir = openDirectory(inodes, path);
  const after = options.after;
  if (after !== undefined && typeof after !== 'string') throw new CallfsError('BAD_REQUEST', 'after must be a path');
  return within(inodes, dir, options.maxDepth)
    .filter((row) => (options.directoriesOnly !== true || row.type === 'directory') && (after === undefined || compareBytes(row.path, after) > 0))
    .sort((a, b) => compareBytes(a.path, b.path))
    // Relative depth, on the same scale as maxDepth: 0 for direct children.
    .map((row) => ({ ...entryOf(row), depth: row.depth - dir.depth - 1 }));
}

export function countListing(inodes: Table<Row>, path: string, recursive: { maxDepth: number } | null): number {
  const dir = openDirectory(inodes, path);
  if (recursive === null) return childrenOf(inodes, dir).length;
  assertCount(recursive.maxDepth, 'maxDepth');
  return within(inodes, dir, recursive.maxDepth).length;
}
