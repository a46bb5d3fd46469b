import type { Queryable, Row } from './driver.js';
import type { Upload } from './types.js';

/** Resumable uploads (migration 008): the progress of each, wherever its bytes are. */

const COLUMNS = 'id, uid, path, mode, length, received, metadata, instance_id, created_at, expires_at';

const asDate = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));

function toUpload(row: Row): Upload {
  return {
    id: String(row.id),
    uid: Number(row.uid),
    path: String(row.path),
    mode: row.mode === null || row.mode === undefined ? null : Number(row.mode),
    length: Number(row.length),
    received: Number(row.received),
    metadata: String(row.metadata),
    instanceId: String(row.instance_id),
    createdAt: asDate(row.created_at),
    expiresAt: asDate(row.expires_at),
  };
}

/**
 * Record a new upload unless its user already has `maxOpen` unexpired ones:
 * then null. The count and the insert are one statement.
 */
export async function createUpload(q: Queryable, u: Omit<Upload, 'received' | 'createdAt'>, maxOpen: number): Promise<Upload | null> {
  const rows = await q.query(
    `INSERT INTO uploads (id, uid, path, mode, length, metadata, instance_id, expires_at)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8
      WHERE (SELECT count(*) FROM uploads WHERE uid = $2 AND expires_at > now()) < $9
     RETURNING ${COLUMNS}`,
    [u.id, u.uid, u.path, u.mode, u.length, u.metadata, u.instanceId, u.expiresAt, maxOpen],
  );
  return rows[0] === undefined ? null : toUpload(rows[0]);
}

/** An upload, expired or not (the caller decides), or null. */
export async function getUpload(q: Queryable, id: string): Promise<Upload | null> {
  const rows = await q.query(`SELECT ${COLUMNS} FROM uploads WHERE id = $1`, [id]);
  return rows[0] === undefined ? null : toUpload(rows[0]);
}

/** Move an upload's offset from `from` to `to` and its expiry; null when the offset was not `from` (or it is gone). */
export async function advanceUpload(q: Queryable, id: string, from: number, to: number, expiresAt: Date): Promise<Upload | null> {
  const rows = await q.query(
    `UPDATE uploads SET received = $3, expires_at = $4 WHERE id = $1 AND received = $2 RETURNING ${COLUMNS}`,
    [id, from, to, expiresAt],
  );
  return rows[0] === undefined ? null : toUpload(rows[0]);
}

export async function removeUpload(q: Queryable, id: string): Promise<boolean> {
  return (await q.query('DELETE FROM uploads WHERE id = $1 RETURNING id', [id])).length > 0;
}

/** Ids of the uploads an instance holds (any instance: null): all of them, or only those expired before `before`. */
export async function uploadsOn(q: Queryable, instanceId: string | null, expiredBefore: Date | null, limit: number): Promise<string[]> {
  const rows = expiredBefore === null
    ? await q.query('SELECT id FROM uploads WHERE ($1::text IS NULL OR instance_id = $1) ORDER BY id LIMIT $2', [instanceId, limit])
    : await q.query('SELECT id FROM uploads WHERE ($1::text IS NULL OR instance_id = $1) AND expires_at < $2 ORDER BY expires_at LIMIT $3', [instanceId, expiredBefore, limit]);
  return rows.map((r) => String(r.id));
}
