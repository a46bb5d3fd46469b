import { CallfsError, notFound } from '../errors.js';
import { ancestorsOf, assertCanonical, baseName, isWithin, parentOf } from '../paths.js';
import { blobKey } from './blobs-links-sql.js';
import type { Queryable, Statement } from './driver.js';
import { ENTRY_COLUMNS, toEntry } from './rows.js';
import { lockNamespace, type TxState } from './tx-state.js';
import type { CreateOptions, EntryPatch, MoveOptions, NewEntry } from './types.js';
import { assertAttributes, assertCount, assertNewEntry, assertPatch } from './validate.js';

/**
 * The namespace queries: one function per operation, over any Queryable.
 * Writes run inside a transaction (the caller opens it) and record which
 * cached paths they make stale in the TxState.
 */

export type StoredEntry = ReturnType<typeof toEntry>;

const notADirectory = (path: string): CallfsError => new CallfsError('NOT_A_DIRECTORY', `not a directory: ${path}`);
const alreadyExists = (path: string): CallfsError => new CallfsError('FILE_ALREADY_EXISTS', `already exists: ${path}`);

/** Depth (segment count) of a canonical path. */
export function depthOf(path: string): number {
  return path === '/' ? 0 : path.split('/').length - 1;
}

/**
 * Exclusive bounds of the strict descendants of `path` in "C" order: every
 * descendant starts with path + '/', and '0' is the byte after '/'. Range
 * predicates on the unique index need no escaping, unlike LIKE.
 */
export function subtreeBounds(path: string): [string, string] {
  return path === '/' ? ['/', '0'] : [path + '/', path + '0'];
}

/**
 * A condition that holds unless the path `pathSql` is below a tree that a
 * running delete job is removing (migration 006): rows stored there are the
 * old tree's, never an entry of the namespace.
 */
export function notInRemovedTree(pathSql: string): string {
  return `NOT EXISTS (SELECT 1 FROM tree_jobs j WHERE j.state = 'running' AND j.kind = 'delete' AND ${pathSql} > j.path || '/' AND ${pathSql} < j.path || '0')`;
}

/**
 * A condition on a running tree job `j` that holds when it forbids writing
 * at `pathSql`: below a tree being removed; at or below either end of a
 * move; with `subtree`, also when such a path lies below `pathSql` (a write
 * to the whole tree there).
 */
function blocking(pathSql: string, subtree: boolean): string {
  const below = (p: string, root: string): string => `(${p} > ${root} || '/' AND ${p} < ${root} || '0')`;
  const atOrBelow = (p: string, root: string): string => `(${p} = ${root} OR ${below(p, root)})`;
  const inside = subtree ? ` OR ${below('j.path', pathSql)} OR (j.kind = 'move' AND ${below('j.dest', pathSql)})` : '';
  return `(${below(pathSql, 'j.path')} OR (j.kind = 'move' AND (${atOrBelow(pathSql, 'j.path')} OR ${atOrBelow(pathSql, 'j.dest')}))${inside})`;
}

/**
 * A condition that holds while a running tree job forbids writing at `path`
 * itself (see blocking), by equality on the paths that could mark it (its
 * ancestors, and itself for a move), which is cheap to plan on every PUT. Its
 * values are appended to `params`.
 */
export function treeJobBlocks(path: string, params: unknown[]): string {
  const self = [path];
  const strict = ancestorsOf(path);
  params.push(strict, [...strict, ...self]);
  const a = params.length - 1;
  const b = params.length;
  return `EXISTS (SELECT 1 FROM tree_jobs j WHERE j.state = 'running' AND (j.path = ANY($${a}::text[])
    OR (j.kind = 'move' AND (j.path = ANY($${b}::text[]) OR j.dest = ANY($${b}::text[])))))`;
}

/** LOCKED while a running tree job other than `except` forbids writing at `path`. */
export async function assertNoTreeJob(q: Queryable, path: string, options: { subtree?: boolean; except?: string } = {}): Promise<void> {
  const rows = await q.query(
    `SELECT j.kind, j.path FROM tree_jobs j WHERE j.state = 'running' AND j.id <> $2 AND ${blocking('$1::text', options.subtree === true)} LIMIT 1`,
    [path, options.except ?? ''],
  );
  const job = rows[0];
  if (job === undefined) return;
  throw new CallfsError('LOCKED', job.kind === 'move'
    ? `${String(job.path)} is being moved; retry once the move is done`
    : `the old entries of ${String(job.path)} are still being removed (a recursive delete); retry in a moment`, { retryAfterSeconds: 2 });
}

export async function getEntry(q: Queryable, path: string, lock = ''): Promise<StoredEntry | null> {
  const rows = await q.query(`SELECT ${ENTRY_COLUMNS} FROM inodes WHERE path = $1 AND ${notInRemovedTree('$1::text')} ${lock}`, [path]);
  return rows[0] === undefined ? null : toEntry(rows[0]);
}

export async function getChain(q: Queryable, path: string): Promise<StoredEntry[]> {
  const [chain] = await getChains(q, [path]);
  return chain as StoredEntry[];
}

/** getChain of several paths in one statement: for each path, its existing ancestors from the root down, then the entry. */
export async function getChains(q: Queryable, paths: readonly string[]): Promise<StoredEntry[][]> {
  const wanted = paths.map((path) => {
    assertCanonical(path);
    return [...ancestorsOf(path), path];
  });
  const rows = await q.query(`SELECT ${ENTRY_COLUMNS} FROM callfs_entries($1::text[])`, [[...new Set(wanted.flat())]]);
  const byPath = new Map(rows.map((r) => [String(r.path), toEntry(r)]));
  return wanted.map((chainPaths) => {
    const chain: StoredEntry[] = [];
    for (const p of chainPaths) {
      const entry = byPath.get(p);
      // A row whose parent is not the entry above it is an old tree's, still being removed (migration 006).
      if (entry === undefined || (chain.length > 0 && entry.parentId !== chain[chain.length - 1]?.id)) break;
      chain.push(entry);
    }
    return chain;
  });
}

async function hasChildren(q: Queryable, id: string): Promise<boolean> {
  return (await q.query('SELECT 1 FROM inodes WHERE parent_id = $1 LIMIT 1', [id])).length > 0;
}

/** Insert a directory unless the path exists; a concurrent creator's directory is fine, its file is not. */
async function ensureDirectory(q: Queryable, path: string, parent: StoredEntry, attrs: { mode: number; uid: number; gid: number }): Promise<StoredEntry> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const inserted = await q.query(
      `INSERT INTO inodes (path, parent_id, name, depth, type, mode, uid, gid)
       VALUES ($1, $2, $3, $4, 'directory', $5, $6, $7)
       ON CONFLICT (path) DO NOTHING RETURNING ${ENTRY_COLUMNS}`,
      [path, parent.id, baseName(path), depthOf(path), attrs.mode, attrs.uid, attrs.gid],
    );
    // A conflicting row was committed by someone else: read it with a fresh snapshot.
    const entry = inserted[0] !== undefined ? toEntry(inserted[0]) : await getEntry(q, path);
    if (entry === null) continue; // it was deleted again in between: try the insert once more
    if (entry.type !== 'directory') throw notADirectory(path);
    return entry;
  }
  throw new CallfsError('SERVICE_UNAVAILABLE', `could not create ${path}: it keeps changing; retry`, { retryAfterSeconds: 1, component: 'contention' });
}

/**
 * The parent directory of `path`, creating missing ancestors when `parents`
 * is given. FILE_NOT_FOUND for a missing parent otherwise, NOT_A_DIRECTORY
 * when an ancestor is a file. Needs the namespace lock (shared at least).
 */
async function ensureParent(q: Queryable, path: string, parents: CreateOptions['parents']): Promise<StoredEntry> {
  const ancestors = ancestorsOf(path);
  const rows = await q.query(`SELECT ${ENTRY_COLUMNS} FROM inodes WHERE path = ANY($1::text[])`, [ancestors]);
  const byPath = new Map(rows.map((r) => [String(r.path), toEntry(r)]));
  let parent: StoredEntry | null = null;
  for (const ancestor of ancestors) {
    const existing = byPath.get(ancestor);
    if (existing !== undefined) {
      if (existing.type !== 'directory') throw notADirectory(ancestor);
      parent = existing;
      continue;
    }
    if (parents === undefined || parent === null) throw notFound(ancestor);
    parent = await ensureDirectory(q, ancestor, parent, parents);
  }
  if (parent === null) throw notFound('/');
  return parent;
}

export async function createEntry(q: Queryable, state: TxState, entry: NewEntry, options: CreateOptions = {}): Promise<StoredEntry> {
  assertCanonical(entry.path);
  assertNewEntry(entry);
  if (options.parents !== undefined) assertAttributes(options.parents);
  if (entry.path === '/') throw alreadyExists('/');
  // A parent read before this transaction held the lock may have moved since: read it again.
  const known = state.namespaceLock !== 'none' && options.parent?.type === 'directory' && options.parent.path === parentOf(entry.path) ? options.parent : null;
  await lockNamespace(q, state, 'shared');
  await assertNoTreeJob(q, entry.path);
  const parent = known ?? (await ensureParent(q, entry.path, options.parents));
  const rows = await q.query(
    `INSERT INTO inodes (path, parent_id, name, depth, type, size, mode, uid, gid, mtime, backend, instance_id, blob_id, etag)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10::timestamptz, now()), $11, $12, $13, $14)
     ON CONFLICT (path) DO NOTHING RETURNING ${ENTRY_COLUMNS}`,
    [entry.path, parent.id, baseName(entry.path), depthOf(entry.path), entry.type, entry.size ?? 0, entry.mode, entry.uid, entry.gid,
      entry.mtime ?? null, entry.backend ?? null, entry.instanceId ?? null, entry.blobId ?? null, entry.etag ?? null],
  );
  if (rows[0] === undefined) throw alreadyExists(entry.path);
  // No invalidation: no instance can hold a cached entry for a path that did not exist.
  return toEntry(rows[0]);
}

const PATCH_COLUMNS: ReadonlyArray<[keyof EntryPatch, string]> = [
  ['size', 'size'], ['mode', 'mode'], ['uid', 'uid'], ['gid', 'gid'], ['mtime', 'mtime'], ['atime', 'atime'],
  ['backend', 'backend'], ['instanceId', 'instance_id'], ['blobId', 'blob_id'], ['etag', 'etag'],
];

/** SET clauses of a patch, its values appended to `params`; version and times always move on. */
function patchSets(patch: EntryPatch, params: unknown[]): string {
  const sets: string[] = [];
  for (const [key, column] of PATCH_COLUMNS) {
    const value = patch[key];
    if (value === undefined) continue;
    params.push(value);
    sets.push(`${column} = $${params.length}`);
  }
  sets.push('version = version + 1', 'ctime = now()', 'updated_at = now()');
  return sets.join(', ');
}

export async function updateEntry(q: Queryable, state: TxState, path: string, expectedVersion: number, patch: EntryPatch): Promise<StoredEntry> {
  assertCanonical(path);
  assertCount(expectedVersion, 'expectedVersion');
  assertPatch(patch);
  const params: unknown[] = [path, expectedVersion];
  const sets = patchSets(patch, params);
  const blocked = treeJobBlocks(path, params);
  const rows = await q.query(`UPDATE inodes SET ${sets} WHERE path = $1 AND version = $2 AND NOT ${blocked} RETURNING ${ENTRY_COLUMNS}`, params);
  if (rows[0] === undefined) {
    await assertNoTreeJob(q, path);
    const current = await getEntry(q, path);
    if (current === null) throw notFound(path);
    throw new CallfsError('PRECONDITION_FAILED', `${path} changed (version ${current.version}, expected ${expectedVersion})`);
  }
  state.invalidations.exact.add(path);
  return toEntry(rows[0]);
}

/** A row as a guarded write read it. */
export interface ReadRow {
  id: string;
  path: string;
  version: number;
}

/**
 * A condition, over the parameters it appends, that holds when each row in
 * `expected` still has the id, path and version it was read with (every
 * change to a row moves its version (update, move) or its path (a moved
 * ancestor), and a row deleted and created again has a new id), and no
 * running tree job forbids writing at `path` (treeJobBlocks). It calls
 * callfs_write_allowed (migration 010), whose plan the connection keeps:
 * written out here, it cost every small PUT a third of its metadata time in
 * planning.
 */
function writeAllowed(path: string, expected: readonly ReadRow[], params: unknown[]): string {
  const first = params.length + 1;
  params.push(...guardArguments(path, expected));
  return `callfs_write_allowed($${first}::bigint[], $${first + 1}::text[], $${first + 2}::bigint[], $${first + 3}::text[], $${first + 4}::text[])`;
}

/** callfs_write_allowed's five arguments for a write at `path` decided on the rows in `expected`. */
function guardArguments(path: string, expected: readonly ReadRow[]): [string[], string[], number[], string[], string[]] {
  const strict = ancestorsOf(path);
  return [expected.map((e) => e.id), expected.map((e) => e.path), expected.map((e) => e.version), strict, [...strict, path]];
}

/**
 * A file or directory to create unless the rows its caller read (the
 * ancestors, root first, the last being the new entry's parent) have
 * changed: its column values and its guard, to go into createRowsStatement.
 */
export interface GuardedCreate {
  path: string;
  /** The 14 inserted columns, in CREATE_COLUMNS order. */
  values: unknown[];
  /** callfs_write_allowed's five arguments, each as a PostgreSQL array literal. */
  guard: string[];
  /** The blob row its reference-count trigger locks ('instance/sha256'), or '' when it names none. */
  blobKey: string;
}

const CREATE_COLUMNS = 'path, parent_id, name, depth, type, size, mode, uid, gid, mtime, backend, instance_id, blob_id, etag';
const CREATE_TYPES = ['text', 'bigint', 'text', 'integer', 'text', 'bigint', 'integer', 'bigint', 'bigint', 'timestamptz', 'text', 'text', 'text', 'text'];
const GUARD_TYPES = ['bigint[]', 'text[]', 'bigint[]', 'text[]', 'text[]'];
const GUARD_COLUMNS = ['g_ids', 'g_paths', 'g_versions', 'g_strict', 'g_self'];

/** createEntry's row for createRowsStatement, checked as createEntry checks it. */
export function guardedCreate(entry: NewEntry, expected: readonly ReadRow[]): GuardedCreate {
  assertCanonical(entry.path);
  assertNewEntry(entry);
  if (entry.path === '/') throw alreadyExists('/');
  const parent = expected[expected.length - 1];
  if (parent?.path !== parentOf(entry.path)) throw new CallfsError('INTERNAL_ERROR', `createIfUnchanged: the rows read must end with the parent of ${entry.path}`);
  return {
    path: entry.path,
    values: [entry.path, parent.id, baseName(entry.path), depthOf(entry.path), entry.type, entry.size ?? 0, entry.mode, entry.uid, entry.gid,
      entry.mtime ?? null, entry.backend ?? null, entry.instanceId ?? null, entry.blobId ?? null, entry.etag ?? null],
    // Array literals, so that rows whose guards have different lengths travel in one text[] each.
    guard: guardArguments(entry.path, expected).map(arrayLiteral),
    blobKey: entry.backend === 'cas' ? blobKey(entry.instanceId, entry.blobId) : '',
  };
}

/**
 * The INSERT of createEntry for many entries as one statement (one parse,
 * plan and executor start for a batch of small PUTs instead of one each):
 * each row is inserted unless its guard (callfs_write_allowed, see
 * writeAllowed) fails or something exists at its path. The paths must be
 * distinct, so that each returned row (matched by path) is its own
 * create's. Every parameter is cast to its type (a script's statements are
 * parsed without parameter types). Meant to run after the namespace lock, in
 * a script.
 */
export function createRowsStatement(rows: readonly GuardedCreate[]): Statement {
  if (new Set(rows.map((r) => r.path)).size !== rows.length) throw new Error('createRowsStatement: paths must be distinct');
  const columns = CREATE_TYPES.map((_, i) => rows.map((r) => r.values[i]));
  const guards = GUARD_TYPES.map((_, i) => rows.map((r) => r.guard[i]));
  const params = [...columns, ...guards];
  const arrays = [...CREATE_TYPES.map((t, i) => `$${i + 1}::${t}[]`), ...GUARD_TYPES.map((_, i) => `$${CREATE_TYPES.length + i + 1}::text[]`)];
  const guardArgs = GUARD_COLUMNS.map((c, i) => `w.${c}::${GUARD_TYPES[i]}`).join(', ');
  return {
    sql: `INSERT INTO inodes (${CREATE_COLUMNS})
     SELECT w.path, w.parent_id, w.name, w.depth, w.type, w.size, w.mode, w.uid, w.gid, COALESCE(w.mtime, now()), w.backend, w.instance_id, w.blob_id, w.etag
       FROM unnest(${arrays.join(', ')}) AS w(${CREATE_COLUMNS}, ${GUARD_COLUMNS.join(', ')})
      WHERE callfs_write_allowed(${guardArgs})
     ON CONFLICT (path) DO NOTHING RETURNING ${ENTRY_COLUMNS}`,
    params,
  };
}

/** A one-dimensional PostgreSQL array literal: every element double-quoted, with `\\` and `"` escaped. */
export function arrayLiteral(values: ReadonlyArray<string | number>): string {
  return `{${values.map((v) => `"${String(v).replace(/[\\"]/g, '\\$&')}"`).join(',')}}`;
}

/** The UPDATE of updateEntry, applied only while the rows in `expected` are unchanged (see guardedCreate and writeAllowed). */
export function updateIfUnchangedStatement(path: string, expectedVersion: number, patch: EntryPatch, expected: readonly ReadRow[]): Statement {
  assertCanonical(path);
  assertCount(expectedVersion, 'expectedVersion');
  assertPatch(patch);
  const params: unknown[] = [path, expectedVersion];
  const sets = patchSets(patch, params);
  const allowed = writeAllowed(path, expected, params);
  return { sql: `UPDATE inodes SET ${sets} WHERE path = $1::text AND version = $2::bigint AND ${allowed} RETURNING ${ENTRY_COLUMNS}`, params };
}

export async function moveEntry(
  q: Queryable,
  state: TxState,
  from: string,
  to: string,
  options: MoveOptions = {},
): Promise<{ entry: StoredEntry; replaced: StoredEntry | null }> {
  assertCanonical(from);
  assertCanonical(to);
  if (options.parents !== undefined) assertAttributes(options.parents);
  if (from === '/' || to === '/') throw new CallfsError('BAD_REQUEST', "the root cannot be moved, and nothing can be moved onto '/'");
  if (isWithin(to, from)) throw new CallfsError('BAD_REQUEST', `cannot move ${from} into itself (${to})`);

  // Peek without locks to choose the namespace lock, then read again under it.
  const peek = await q.query('SELECT path, type FROM inodes WHERE path = ANY($1::text[])', [[from, to]]);
  if (!peek.some((r) => r.path === from)) throw notFound(from);
  // A tree job's move runs under its mark instead: the whole namespace is not held for its length.
  const treeLock = options.treeJob === undefined ? 'exclusive' : 'shared';
  await lockNamespace(q, state, peek.some((r) => r.type === 'directory') ? treeLock : 'shared');

  const source = await getEntry(q, from, 'FOR UPDATE');
  if (source === null) throw notFound(from);
  if (source.type === 'directory') await lockNamespace(q, state, treeLock);
  // The old rows of a tree being removed below `from` would move along and come back to life.
  await assertNoTreeJob(q, from, { subtree: source.type === 'directory', ...(options.treeJob === undefined ? {} : { except: options.treeJob }) });
  await assertNoTreeJob(q, to, options.treeJob === undefined ? {} : { except: options.treeJob });
  const parent = await ensureParent(q, to, options.parents);

  let replaced: StoredEntry | null = null;
  const target = await getEntry(q, to, 'FOR UPDATE');
  if (target !== null) {
    if (options.overwrite !== true) throw alreadyExists(to);
    if (target.type === 'directory') {
      await lockNamespace(q, state, treeLock);
      if (await hasChildren(q, target.id)) throw new CallfsError('FILE_ALREADY_EXISTS', `destination ${to} is a non-empty directory`);
    }
    await q.query('DELETE FROM inodes WHERE id = $1', [target.id]);
    replaced = target;
  }

  if (source.type === 'directory') {
    const [lo, hi] = subtreeBounds(from);
    // Rewrites descendants' paths and depths only: ids, and so parent_ids, stay; no blob column is
    // assigned, so the reference-count trigger does not fire.
    await q.query(
      `UPDATE inodes SET path = $1::text || substr(path, char_length($2::text) + 1), depth = depth + $3::int
       WHERE path > $4 AND path < $5`,
      [to, from, depthOf(to) - depthOf(from), lo, hi],
    );
  }
  const rows = await q.query(
    `UPDATE inodes SET path = $2, name = $3, parent_id = $4, depth = $5, version = version + 1, ctime = now(), updated_at = now()
     WHERE id = $1 RETURNING ${ENTRY_COLUMNS}`,
    [source.id, to, baseName(to), parent.id, depthOf(to)],
  );
  if (rows[0] === undefined) throw notFound(from);
  (source.type === 'directory' ? state.invalidations.subtree : state.invalidations.exact).add(from);
  state.invalidations.exact.add(to);
  return { entry: toEntry(rows[0]), replaced };
}

export async function deleteEntry(
  q: Queryable,
  state: TxState,
  path: string,
  options: { recursive?: boolean; expectedVersion?: number } = {},
): Promise<StoredEntry[]> {
  assertCanonical(path);
  if (options.expectedVersion !== undefined) assertCount(options.expectedVersion, 'expectedVersion');
  if (path === '/') throw new CallfsError('BAD_REQUEST', 'the root cannot be deleted');
  const peek = await getEntry(q, path);
  if (peek === null) throw notFound(path);
  if (peek.type === 'directory') await lockNamespace(q, state, 'exclusive');
  const entry = await getEntry(q, path, 'FOR UPDATE');
  if (entry === null) throw notFound(path);
  if (entry.type === 'directory') await lockNamespace(q, state, 'exclusive');
  await assertNoTreeJob(q, path, { subtree: entry.type === 'directory' });
  if (options.expectedVersion !== undefined && entry.version !== options.expectedVersion) {
    throw new CallfsError('PRECONDITION_FAILED', `${path} changed (version ${entry.version}, expected ${options.expectedVersion})`);
  }
  if (entry.type === 'file' || options.recursive !== true) {
    if (entry.type === 'directory' && (await hasChildren(q, entry.id))) throw new CallfsError('DIRECTORY_NOT_EMPTY', `directory not empty: ${path}`);
    await q.query('DELETE FROM inodes WHERE id = $1', [entry.id]);
    state.invalidations.exact.add(path);
    return [entry];
  }
  const [lo, hi] = subtreeBounds(path);
  const rows = await q.query(
    `WITH removed AS (DELETE FROM inodes WHERE path = $1 OR (path > $2 AND path < $3) RETURNING ${ENTRY_COLUMNS})
     SELECT * FROM removed ORDER BY path`,
    [path, lo, hi],
  );
  state.invalidations.subtree.add(path);
  return rows.map(toEntry);
}

/** See MetadataOps.firstUnremovable: the permission rules of lib/auth/permissions.ts for a non-root user, in SQL. */
export async function firstUnremovable(q: Queryable, path: string, user: { uid: number; gid: number; groups: readonly number[] }): Promise<string | null> {
  assertCanonical(path);
  assertCount(user.uid, 'uid');
  assertCount(user.gid, 'gid');
  for (const g of user.groups) assertCount(g, 'group');
  const [lo, hi] = subtreeBounds(path);
  // The class bits of `e` for the user: owner, else group, else others (exactly one applies).
  const bits = (e: string, bit: number): string =>
    `((${e}.mode >> CASE WHEN ${e}.uid = $3 THEN 6 WHEN ${e}.gid = ANY($4::bigint[]) THEN 3 ELSE 0 END) & ${bit}) <> 0`;
  const rows = await q.query(
    `SELECT i.path FROM inodes i JOIN inodes d ON d.id = i.parent_id
     WHERE i.path > $1 AND i.path < $2 AND ${notInRemovedTree('i.path')}
       AND NOT (${bits('d', 2)} AND ${bits('d', 1)} AND ((d.mode & 512) = 0 OR i.uid = $3 OR d.uid = $3)
                AND (i.type <> 'directory' OR ${bits('i', 4)}))
     LIMIT 1`,
    [lo, hi, user.uid, [user.gid, ...user.groups]],
  );
  return rows[0] === undefined ? null : String(rows[0].path);
}
