import { CallfsError, notFound } from '../errors.js';
import { assertCanonical } from '../paths.js';
import type { Queryable } from './driver.js';
import { getEntry, notInRemovedTree, subtreeBounds, type StoredEntry } from './namespace-sql.js';
import { ENTRY_COLUMNS, plainEntry, toEntry } from './rows.js';
import type { Entry, ListChildrenOptions, ListRecursiveOptions } from './types.js';
import { assertCount, assertEntryType } from './validate.js';

/**
 * Directory listings as keyset pages: each page is one short statement, so a
 * listing of millions of entries holds no connection between pages and never
 * builds the whole result in memory. Entries that exist for the whole listing
 * are returned exactly once; ones created or removed meanwhile may or may not be.
 */

async function openDirectory(q: Queryable, path: string): Promise<StoredEntry> {
  assertCanonical(path);
  const dir = await getEntry(q, path);
  if (dir === null) throw notFound(path);
  if (dir.type !== 'directory') throw new CallfsError('NOT_A_DIRECTORY', `not a directory: ${path}`);
  return dir;
}

/** Children of `path`: files first, then directories, each by name in byte order. */
export async function* listChildren(q: Queryable, path: string, options: ListChildrenOptions, pageSize: number): AsyncGenerator<Entry> {
  if (options.limit !== undefined) assertCount(options.limit, 'limit');
  if (options.after !== undefined) {
    assertEntryType(options.after.type, 'after.type');
    if (typeof options.after.name !== 'string') throw new CallfsError('BAD_REQUEST', 'after.name must be a string');
  }
  const dir = await openDirectory(q, path);
  let afterOrder = options.after === undefined ? -1 : options.after.type === 'file' ? 0 : 1;
  let afterName = options.after?.name ?? '';
  let remaining = options.limit ?? Number.POSITIVE_INFINITY;
  while (remaining > 0) {
    const want = Math.min(pageSize, remaining);
    const rows = await q.query(
      `SELECT ${ENTRY_COLUMNS}, type_order FROM inodes
       WHERE parent_id = $1 AND (type_order, name) > ($2::smallint, $3::text)
       ORDER BY type_order, name LIMIT $4`,
      [dir.id, afterOrder, afterName, want],
    );
    for (const row of rows) yield plainEntry(toEntry(row));
    const last = rows[rows.length - 1];
    if (rows.length < want || last === undefined) return;
    remaining -= rows.length;
    afterOrder = Number(last.type_order);
    afterName = String(last.name);
  }
}

/** Descendants of `path` down to `maxDepth` levels below its children, in path (byte) order. */
export async function* listRecursive(q: Queryable, path: string, options: ListRecursiveOptions, pageSize: number): AsyncGenerator<Entry & { depth: number }> {
  assertCount(options?.maxDepth, 'maxDepth');
  const dir = await openDirectory(q, path);
  const [lo, hi] = subtreeBounds(path);
  const deepest = Math.min(dir.depth + 1 + options.maxDepth, 2 ** 31 - 1);
  if (options.after !== undefined && typeof options.after !== 'string') throw new CallfsError('BAD_REQUEST', 'after must be a path');
  let after = options.after !== undefined && options.after > lo ? options.after : lo;
  // Directories only: the partial index inodes_directory_paths serves it without reading the files.
  const only = options.directoriesOnly === true ? "AND type = 'directory'" : '';
  for (;;) {
    const rows = await q.query(
      `SELECT ${ENTRY_COLUMNS} FROM inodes WHERE path > $1 AND path < $2 AND depth <= $3 ${only} AND ${notInRemovedTree('inodes.path')} ORDER BY path LIMIT $4`,
      [after, hi, deepest, pageSize],
    );
    for (const row of rows) {
      const entry = toEntry(row);
      // Relative depth, on the same scale as maxDepth: 0 for direct children.
      yield { ...plainEntry(entry), depth: entry.depth - dir.depth - 1 };
    }
    const last = rows[rows.length - 1];
    if (rows.length < pageSize || last === undefined) return;
    after = String(last.path);
  }
}

/** Size of a listing: the children of `path`, or its descendants down to maxDepth. */
export async function countListing(q: Queryable, path: string, recursive: { maxDepth: number } | null): Promise<number> {
  const dir = await openDirectory(q, path);
  if (recursive === null) {
    const rows = await q.query('SELECT count(*) AS n FROM inodes WHERE parent_id = $1', [dir.id]);
    return Number(rows[0]?.n ?? 0);
  }
  assertCount(recursive.maxDepth, 'maxDepth');
  const [lo, hi] = subtreeBounds(path);
  const deepest = Math.min(dir.depth + 1 + recursive.maxDepth, 2 ** 31 - 1);
  const rows = await q.query(`SELECT count(*) AS n FROM inodes WHERE path > $1 AND path < $2 AND depth <= $3 AND ${notInRemovedTree('inodes.path')}`, [lo, hi, deepest]);
  return Number(rows[0]?.n ?? 0);
}
