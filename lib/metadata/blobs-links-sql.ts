import { CallfsError } from '../errors.js';
import { assertCanonical } from '../paths.js';
import type { Queryable, Statement } from './driver.js';
import { BLOB_COLUMNS, LINK_COLUMNS, toBlob, toLink } from './rows.js';
import type { BlobListing, BlobPlacement, BlobRecord, ConsumeResult, SingleUseLink } from './types.js';
import { assertCount, assertDate, assertNonEmptyText, assertOwnerId, assertSha256 } from './validate.js';

/** The CAS blob index and single-use links: single statements, no cache involved. */

export type { BlobPlacement };

export function assertBlobPlacement(blob: BlobPlacement): void {
  assertSha256(blob.sha256);
  assertNonEmptyText(blob.instanceId, 'instanceId');
  assertNonEmptyText(blob.imageId, 'imageId');
  assertCount(blob.size, 'size');
  if (blob.packed !== undefined && blob.packed !== null) {
    if (!Number.isSafeInteger(blob.packed.segment) || blob.packed.segment <= 0) throw new CallfsError('BAD_REQUEST', 'segment must be a positive integer');
    assertCount(blob.packed.offset, 'offset');
  }
}

export async function recordBlob(q: Queryable, blob: BlobPlacement): Promise<BlobRecord> {
  const [record] = await recordBlobs(q, [blob]);
  return record as BlobRecord;
}

/**
 * Record where blobs' bytes are, in one statement; one record per input, in
 * order (inputs naming the same blob share the row of the last of them).
 * On an existing row: the caller just stored or deduplicated the bytes in
 * `imageId`, so that is where they are now, and the touch restarts the
 * collector's grace period.
 */
export async function recordBlobs(q: Queryable, input: readonly BlobPlacement[]): Promise<BlobRecord[]> {
  const { sql, params } = recordBlobsStatement(distinctBlobs(input));
  const rows = await q.query(sql, params);
  const byKey = new Map(rows.map((r) => [blobKey(r.instance_id, r.sha256), toBlob(r)]));
  return input.map((b) => {
    const record = byKey.get(blobKey(b.instanceId, b.sha256));
    if (record === undefined) throw new Error(`recordBlobs: no row returned for ${b.sha256}`);
    return record;
  });
}

/** A blob row's key in maps: its instance and its hash. */
export function blobKey(instanceId: unknown, sha256: unknown): string {
  return `${String(instanceId)}/${String(sha256)}`;
}

/** One placement per blob (the last given), for recordBlobsStatement: ON CONFLICT DO UPDATE cannot touch a row twice in one statement. */
export function distinctBlobs(input: readonly BlobPlacement[]): BlobPlacement[] {
  return [...new Map(input.map((b) => [blobKey(b.instanceId, b.sha256), b])).values()];
}

/**
 * The statement of recordBlobs, for blobs that are all distinct, with every
 * parameter cast to its type (a script's statements are parsed without
 * parameter types).
 * Rows are locked in key order, so that two such statements never wait for
 * each other in a cycle.
 */
export function recordBlobsStatement(unique: readonly BlobPlacement[]): Statement {
  for (const blob of unique) assertBlobPlacement(blob);
  return {
    sql: `INSERT INTO blobs (instance_id, sha256, image_id, size, segment, seg_offset)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[]) ORDER BY 1, 2
     ON CONFLICT (instance_id, sha256) DO UPDATE
       SET image_id = EXCLUDED.image_id, size = EXCLUDED.size, segment = EXCLUDED.segment, seg_offset = EXCLUDED.seg_offset, touched_at = now()
     RETURNING ${BLOB_COLUMNS}`,
    params: [
      unique.map((b) => b.instanceId),
      unique.map((b) => b.sha256),
      unique.map((b) => b.imageId),
      unique.map((b) => b.size),
      unique.map((b) => b.packed?.segment ?? null),
      unique.map((b) => b.packed?.offset ?? null),
    ],
  };
}

export async function getBlob(q: Queryable, instanceId: string, sha256: string): Promise<BlobRecord | null> {
  const rows = await q.query(`SELECT ${BLOB_COLUMNS} FROM blobs WHERE instance_id = $1 AND sha256 = $2`, [instanceId, sha256]);
  return rows[0] === undefined ? null : toBlob(rows[0]);
}

/**
 * No file names the content anywhere: a copy on one instance is kept while an
 * entry counts a reference on another (its primary), as a replica must be.
 */
const UNREFERENCED = 'NOT EXISTS (SELECT 1 FROM blobs o WHERE o.sha256 = b.sha256 AND o.ref_count > 0)';

export async function listCollectableBlobs(q: Queryable, instanceId: string, olderThan: Date, limit: number): Promise<BlobRecord[]> {
  assertDate(olderThan, 'olderThan');
  assertCount(limit, 'limit');
  const rows = await q.query(
    `SELECT ${BLOB_COLUMNS} FROM blobs b WHERE instance_id = $1 AND ref_count = 0 AND touched_at < $2 AND ${UNREFERENCED} ORDER BY touched_at LIMIT $3`,
    [instanceId, olderThan, limit],
  );
  return rows.map(toBlob);
}

export async function forgetBlob(q: Queryable, instanceId: string, sha256: string, olderThan: Date): Promise<boolean> {
  assertDate(olderThan, 'olderThan');
  const rows = await q.query(
    `DELETE FROM blobs b WHERE instance_id = $1 AND sha256 = $2 AND ref_count = 0 AND touched_at < $3 AND ${UNREFERENCED} RETURNING 1 AS gone`,
    [instanceId, sha256, olderThan],
  );
  return rows.length > 0;
}

/**
 * Copies only (rows naming an image): quarantined blobs are left out (they are
 * known bad and would otherwise stay first forever), and so are rows that only
 * keep a reference count (a forgotten instance's, or one whose bytes never
 * arrived).
 */
export async function listBlobsForScrub(q: Queryable, instanceId: string, limit: number): Promise<BlobRecord[]> {
  assertCount(limit, 'limit');
  const rows = await q.query(
    `SELECT ${BLOB_COLUMNS} FROM blobs WHERE instance_id = $1 AND NOT quarantined AND image_id <> ''
     ORDER BY last_verified_at NULLS FIRST, sha256 LIMIT $2`,
    [instanceId, limit],
  );
  return rows.map(toBlob);
}

/** ok: verified now (and no longer quarantined: the bytes match); bad: quarantined. */
export async function markBlobVerified(q: Queryable, instanceId: string, sha256: string, ok: boolean): Promise<void> {
  await q.query(
    ok
      ? 'UPDATE blobs SET last_verified_at = now(), quarantined = false WHERE instance_id = $1 AND sha256 = $2'
      : 'UPDATE blobs SET quarantined = true WHERE instance_id = $1 AND sha256 = $2',
    [instanceId, sha256],
  );
}

export async function* listBlobs(q: Queryable, instanceId: string, pageSize: number, options: BlobListing = {}): AsyncGenerator<BlobRecord> {
  let after = '';
  const filesBelow = Math.trunc(options.filesBelow ?? 0);
  const packed = options.packedOnly !== true ? '' : `AND (segment IS NOT NULL OR size < ${filesBelow}) AND image_id <> ''`;
  for (;;) {
    const rows = await q.query(
      `SELECT ${BLOB_COLUMNS} FROM blobs WHERE instance_id = $1 AND sha256 > $2 ${packed} ORDER BY sha256 LIMIT $3`,
      [instanceId, after, pageSize],
    );
    for (const row of rows) yield toBlob(row);
    const last = rows[rows.length - 1];
    if (rows.length < pageSize || last === undefined) return;
    after = String(last.sha256);
  }
}

export async function createLink(q: Queryable, link: { id: string; path: string; createdBy: number; expiresAt: Date }): Promise<SingleUseLink> {
  assertNonEmptyText(link.id, 'id');
  assertCanonical(link.path);
  assertOwnerId(link.createdBy, 'createdBy');
  assertDate(link.expiresAt, 'expiresAt');
  const rows = await q.query(
    `INSERT INTO single_use_links (id, path, created_by, expires_at) VALUES ($1, $2, $3, $4) RETURNING ${LINK_COLUMNS}`,
    [link.id, link.path, link.createdBy, link.expiresAt],
  );
  return toLink(rows[0] ?? {});
}

/**
 * One compare-and-set UPDATE: of any number of concurrent consumers, on any
 * number of instances, exactly one sees its row come back. The others then
 * read the row to say why.
 */
export async function getLink(q: Queryable, id: string): Promise<SingleUseLink | null> {
  if (typeof id !== 'string' || id === '') return null;
  const rows = await q.query(`SELECT ${LINK_COLUMNS} FROM single_use_links WHERE id = $1`, [id]);
  return rows[0] === undefined ? null : toLink(rows[0]);
}

export async function consumeLink(q: Queryable, id: string, now: Date = new Date()): Promise<ConsumeResult> {
  assertDate(now, 'now');
  if (typeof id !== 'string' || id === '') return { status: 'not_found' };
  const consumed = await q.query(
    `UPDATE single_use_links SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2 RETURNING ${LINK_COLUMNS}`,
    [id, now],
  );
  if (consumed[0] !== undefined) return { status: 'consumed', link: toLink(consumed[0]) };
  const rows = await q.query(`SELECT ${LINK_COLUMNS} FROM single_use_links WHERE id = $1`, [id]);
  if (rows[0] === undefined) return { status: 'not_found' };
  const link = toLink(rows[0]);
  if (link.usedAt !== null) return { status: 'used', link };
  if (link.expiresAt.getTime() <= now.getTime()) return { status: 'expired', link };
  // Unused and unexpired yet not consumed: only possible if `now` moved between the two reads.
  throw new CallfsError('SERVICE_UNAVAILABLE', 'the link changed while it was being consumed; retry', { retryAfterSeconds: 1, component: 'contention' });
}

export async function purgeLinks(q: Queryable, before: Date): Promise<number> {
  assertDate(before, 'before');
  const rows = await q.query(
    'WITH gone AS (DELETE FROM single_use_links WHERE expires_at < $1 OR used_at < $1 RETURNING 1) SELECT count(*) AS n FROM gone',
    [before],
  );
  return Number(rows[0]?.n ?? 0);
}
