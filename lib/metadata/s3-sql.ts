import type { Queryable, Row } from './driver.js';
import type { S3Multipart, S3ObjectMeta, S3Part } from './types.js';

/** The S3 API's records (migration 009): object ETags and metadata, multipart uploads and their parts. */

const asObject = (v: unknown): Record<string, string> => (typeof v === 'string' ? JSON.parse(v) as Record<string, string> : (v ?? {}) as Record<string, string>);

export async function getObjectMeta(q: Queryable, inodeIds: readonly string[]): Promise<Map<string, S3ObjectMeta>> {
  const out = new Map<string, S3ObjectMeta>();
  if (inodeIds.length === 0) return out;
  const rows = await q.query('SELECT inode_id, sha256, etag, content_type, meta FROM s3_objects WHERE inode_id = ANY($1::bigint[])', [inodeIds]);
  for (const r of rows) out.set(String(r.inode_id), { sha256: String(r.sha256), etag: String(r.etag), contentType: String(r.content_type), meta: asObject(r.meta) });
  return out;
}

export async function putObjectMeta(q: Queryable, inodeId: string, m: S3ObjectMeta): Promise<void> {
  await q.query(
    `INSERT INTO s3_objects (inode_id, sha256, etag, content_type, meta) VALUES ($1, $2, $3, $4, $5::jsonb)
     ON CONFLICT (inode_id) DO UPDATE SET sha256 = EXCLUDED.sha256, etag = EXCLUDED.etag, content_type = EXCLUDED.content_type, meta = EXCLUDED.meta`,
    [inodeId, m.sha256, m.etag, m.contentType, JSON.stringify(m.meta)],
  );
}

const MP_COLUMNS = 'id, uid, bucket, key, instance_id, content_type, meta, created_at';

function toMultipart(r: Row): S3Multipart {
  return {
    id: String(r.id),
    uid: Number(r.uid),
    bucket: String(r.bucket),
    key: String(r.key),
    instanceId: String(r.instance_id),
    contentType: String(r.content_type),
    meta: asObject(r.meta),
    createdAt: r.created_at instanceof Date ? r.created_at : new Date(String(r.created_at)),
  };
}

export async function createMultipart(q: Queryable, m: Omit<S3Multipart, 'createdAt'>): Promise<S3Multipart> {
  const rows = await q.query(
    `INSERT INTO s3_multipart (id, uid, bucket, key, instance_id, content_type, meta) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING ${MP_COLUMNS}`,
    [m.id, m.uid, m.bucket, m.key, m.instanceId, m.contentType, JSON.stringify(m.meta)],
  );
  return toMultipart(rows[0] as Row);
}

export async function getMultipart(q: Queryable, id: string): Promise<S3Multipart | null> {
  const rows = await q.query(`SELECT ${MP_COLUMNS} FROM s3_multipart WHERE id = $1`, [id]);
  return rows[0] === undefined ? null : toMultipart(rows[0]);
}

export async function listMultipart(q: Queryable, bucket: string, prefix: string, limit: number): Promise<S3Multipart[]> {
  const rows = await q.query(
    `SELECT ${MP_COLUMNS} FROM s3_multipart WHERE bucket = $1 AND left(key, length($2)) = $2 ORDER BY key, created_at LIMIT $3`,
    [bucket, prefix, limit],
  );
  return rows.map(toMultipart);
}

export async function removeMultipart(q: Queryable, id: string): Promise<boolean> {
  return (await q.query('DELETE FROM s3_multipart WHERE id = $1 RETURNING id', [id])).length > 0;
}

export async function putPart(q: Queryable, uploadId: string, part: S3Part): Promise<void> {
  await q.query(
    `INSERT INTO s3_parts (upload_id, part_number, size, md5) VALUES ($1, $2, $3, $4)
     ON CONFLICT (upload_id, part_number) DO UPDATE SET size = EXCLUDED.size, md5 = EXCLUDED.md5, updated_at = now()`,
    [uploadId, part.partNumber, part.size, part.md5],
  );
}

export async function listParts(q: Queryable, uploadId: string): Promise<S3Part[]> {
  const rows = await q.query('SELECT part_number, size, md5, updated_at FROM s3_parts WHERE upload_id = $1 ORDER BY part_number', [uploadId]);
  return rows.map((r) => ({ partNumber: Number(r.part_number), size: Number(r.size), md5: String(r.md5), updatedAt: r.updated_at instanceof Date ? r.updated_at : new Date(String(r.updated_at)) }));
}

/** Multipart uploads of an instance with nothing added since `before` (abandoned), to remove. */
export async function staleMultipart(q: Queryable, instanceId: string, before: Date, limit: number): Promise<string[]> {
  const rows = await q.query(
    `SELECT m.id FROM s3_multipart m
      WHERE m.instance_id = $1 AND coalesce((SELECT max(p.updated_at) FROM s3_parts p WHERE p.upload_id = m.id), m.created_at) < $2
      ORDER BY m.created_at LIMIT $3`,
    [instanceId, before, limit],
  );
  return rows.map((r) => String(r.id));
}
