import { ancestorsOf, assertCanonical } from '../paths.js';
import type { Queryable, Row } from './driver.js';
import type { DavLock, DavProperty, DavPropertyChange } from './types.js';

/**
 * WebDAV state (migration 007): dead properties of inodes, and write locks
 * on paths. Lock changes run in a transaction that holds one advisory lock,
 * so that a conflict check and the insert it allows are one step for every
 * instance sharing the database.
 */

// pg_advisory_xact_lock(classid, objid): 'cfs1' and 3 = "WebDAV locks".
const LOCK_CLASS = 0x63667331;
const LOCK_DAV = 3;

const LOCK_COLUMNS = 'token, path, deep, shared, owner, uid, timeout_s, expires_at';

const asDate = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));

function toLock(row: Row): DavLock {
  return {
    token: String(row.token),
    path: String(row.path),
    deep: row.deep === true,
    shared: row.shared === true,
    owner: String(row.owner),
    uid: Number(row.uid),
    timeoutSeconds: Number(row.timeout_s),
    expiresAt: asDate(row.expires_at),
  };
}

/** The unexpired locks on any of `paths`. */
export async function locksAt(q: Queryable, paths: readonly string[]): Promise<DavLock[]> {
  for (const p of paths) assertCanonical(p);
  const rows = await q.query(`SELECT ${LOCK_COLUMNS} FROM dav_locks WHERE expires_at > now() AND path = ANY($1::text[]) ORDER BY path, created_at`, [paths]);
  return rows.map(toLock);
}

/** The unexpired locks that cover `path`: its own, and deep locks of its ancestors. */
export async function locksCovering(q: Queryable, path: string): Promise<DavLock[]> {
  return (await locksAt(q, [path, ...ancestorsOf(path)])).filter((l) => l.path === path || l.deep);
}

/** The unexpired locks on paths strictly below `path`. */
export async function locksBelow(q: Queryable, path: string): Promise<DavLock[]> {
  assertCanonical(path);
  const prefix = path === '/' ? '/' : `${path}/`;
  const end = path === '/' ? '0' : `${path}0`;
  const rows = await q.query(
    `SELECT ${LOCK_COLUMNS} FROM dav_locks WHERE expires_at > now() AND path >= $1 AND path < $2 AND path <> '/' ORDER BY path, created_at`,
    [prefix, end],
  );
  return rows.map(toLock);
}

export async function getLock(q: Queryable, token: string): Promise<DavLock | null> {
  const rows = await q.query(`SELECT ${LOCK_COLUMNS} FROM dav_locks WHERE token = $1 AND expires_at > now()`, [token]);
  return rows[0] === undefined ? null : toLock(rows[0]);
}

/**
 * Insert `lock` unless an unexpired lock conflicts with it (an exclusive lock
 * where either is exclusive, on the path, an ancestor's deep lock, or, for a
 * deep lock, any path below): the conflicting locks then, and nothing
 * inserted. Expired locks are purged first.
 */
export async function createLock(q: Queryable, lock: Omit<DavLock, 'expiresAt'>): Promise<{ lock: DavLock | null; conflicts: DavLock[] }> {
  await q.query(`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${LOCK_DAV})`);
  await q.query('DELETE FROM dav_locks WHERE expires_at <= now()');
  const around = [...(await locksCovering(q, lock.path)), ...(lock.deep ? await locksBelow(q, lock.path) : [])];
  const conflicts = around.filter((other) => !(other.shared && lock.shared));
  if (conflicts.length > 0) return { lock: null, conflicts };
  const rows = await q.query(
    `INSERT INTO dav_locks (token, path, deep, shared, owner, uid, timeout_s, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::int, now() + make_interval(secs => $7::int))
     RETURNING ${LOCK_COLUMNS}`,
    [lock.token, lock.path, lock.deep, lock.shared, lock.owner, lock.uid, lock.timeoutSeconds],
  );
  return { lock: toLock(rows[0] as Row), conflicts: [] };
}

/** Give an unexpired lock a new timeout from now; null when it is gone. */
export async function refreshLock(q: Queryable, token: string, timeoutSeconds: number): Promise<DavLock | null> {
  const rows = await q.query(
    `UPDATE dav_locks SET timeout_s = $2::int, expires_at = now() + make_interval(secs => $2::int)
      WHERE token = $1 AND expires_at > now() RETURNING ${LOCK_COLUMNS}`,
    [token, timeoutSeconds],
  );
  return rows[0] === undefined ? null : toLock(rows[0]);
}

/** Remove a lock; false when there was none. */
export async function removeLock(q: Queryable, token: string): Promise<boolean> {
  const rows = await q.query('DELETE FROM dav_locks WHERE token = $1 RETURNING token', [token]);
  return rows.length > 0;
}

/** Remove every lock on `path` and below it (the resource was deleted or moved away). */
export async function removeLocksAt(q: Queryable, path: string): Promise<void> {
  assertCanonical(path);
  if (path === '/') {
    await q.query('DELETE FROM dav_locks');
    return;
  }
  await q.query('DELETE FROM dav_locks WHERE path = $1 OR (path >= $2 AND path < $3)', [path, `${path}/`, `${path}0`]);
}

/** The dead properties of inodes, by inode id (inodes without any are absent). */
export async function getProperties(q: Queryable, inodeIds: readonly string[]): Promise<Map<string, DavProperty[]>> {
  const out = new Map<string, DavProperty[]>();
  if (inodeIds.length === 0) return out;
  const rows = await q.query('SELECT inode_id, ns, name, value FROM dav_properties WHERE inode_id = ANY($1::bigint[]) ORDER BY inode_id, ns, name', [inodeIds]);
  for (const r of rows) {
    const id = String(r.inode_id);
    const list = out.get(id) ?? [];
    list.push({ ns: String(r.ns), name: String(r.name), value: String(r.value) });
    out.set(id, list);
  }
  return out;
}

/** Set (value: the property element) and remove (value null) dead properties of an inode, in order. */
export async function patchProperties(q: Queryable, inodeId: string, changes: readonly DavPropertyChange[]): Promise<void> {
  for (const c of changes) {
    if (c.value === null) {
      await q.query('DELETE FROM dav_properties WHERE inode_id = $1 AND ns = $2 AND name = $3', [inodeId, c.ns, c.name]);
      continue;
    }
    await q.query(
      `INSERT INTO dav_properties (inode_id, ns, name, value) VALUES ($1, $2, $3, $4)
       ON CONFLICT (inode_id, ns, name) DO UPDATE SET value = EXCLUDED.value`,
      [inodeId, c.ns, c.name, c.value],
    );
  }
}

/** Copy every dead property of one inode to another (COPY), replacing the target's. */
export async function copyProperties(q: Queryable, fromId: string, toId: string): Promise<void> {
  await q.query('DELETE FROM dav_properties WHERE inode_id = $1', [toId]);
  await q.query('INSERT INTO dav_properties (inode_id, ns, name, value) SELECT $2, ns, name, value FROM dav_properties WHERE inode_id = $1', [fromId, toId]);
}
