import type { Queryable } from './driver.js';
import type { BlobCopy, InstanceRecord, InstanceState, UnderReplicated } from './types.js';
import { assertCount, assertNonEmptyText, assertSha256 } from './validate.js';

/**
 * Where the copies of CAS blobs are, and the cluster's instances (migration
 * 004). A copy is a `blobs` row naming an image; a forgotten instance's rows
 * keep their reference counts but name no image, so they count for nothing.
 */

// The age of the heartbeat by the database's clock: instances' clocks may disagree with each other.
const INSTANCE_COLUMNS = `id, url, state, last_seen, used_bytes, free_bytes, state_since,
  (extract(epoch FROM clock_timestamp() - last_seen) * 1000)::bigint AS seen_ago_ms`;
const STATES: readonly InstanceState[] = ['active', 'draining', 'forgotten'];

type Row = Record<string, unknown>;
const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));

function toInstance(row: Row): InstanceRecord {
  return {
    id: String(row.id),
    url: String(row.url),
    state: String(row.state) as InstanceState,
    lastSeen: row.last_seen === null || row.last_seen === undefined ? null : date(row.last_seen),
    seenAgoMs: row.seen_ago_ms === null || row.seen_ago_ms === undefined ? null : Math.max(0, Number(row.seen_ago_ms)),
    usedBytes: Number(row.used_bytes),
    freeBytes: Number(row.free_bytes),
    stateSince: date(row.state_since),
  };
}

/**
 * An instance reports itself: its URL and space, seen now. An instance that
 * was forgotten and starts again rejoins as active, with none of its old
 * copies counted (forgetting cleared them).
 */
export async function heartbeat(q: Queryable, instance: { id: string; url: string; usedBytes: number; freeBytes: number }): Promise<InstanceRecord> {
  assertNonEmptyText(instance.id, 'id');
  assertCount(instance.usedBytes, 'usedBytes');
  assertCount(instance.freeBytes, 'freeBytes');
  const rows = await q.query(
    `INSERT INTO cluster_instances (id, url, last_seen, used_bytes, free_bytes) VALUES ($1, $2, now(), $3, $4)
     ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, last_seen = now(), used_bytes = EXCLUDED.used_bytes, free_bytes = EXCLUDED.free_bytes,
       state = CASE WHEN cluster_instances.state = 'forgotten' THEN 'active' ELSE cluster_instances.state END,
       state_since = CASE WHEN cluster_instances.state = 'forgotten' THEN now() ELSE cluster_instances.state_since END
     RETURNING ${INSTANCE_COLUMNS}`,
    [instance.id, instance.url, instance.usedBytes, instance.freeBytes],
  );
  return toInstance(rows[0] ?? {});
}

export async function listInstances(q: Queryable): Promise<InstanceRecord[]> {
  const rows = await q.query(`SELECT ${INSTANCE_COLUMNS} FROM cluster_instances ORDER BY id`);
  return rows.map(toInstance);
}

/**
 * Set what an operator decided about an instance (creating its row when it
 * never reported). Forgetting it also un-counts its copies: its rows keep
 * their reference counts and name no image any more.
 */
export async function setInstanceState(q: Queryable, id: string, state: InstanceState): Promise<InstanceRecord> {
  assertNonEmptyText(id, 'id');
  if (!STATES.includes(state)) throw new TypeError(`not an instance state: ${String(state)}`);
  const rows = await q.query(
    `WITH cleared AS (
       UPDATE blobs SET image_id = '', segment = NULL, seg_offset = NULL WHERE $2::text = 'forgotten' AND instance_id = $1 AND image_id <> '' RETURNING 1
     )
     INSERT INTO cluster_instances (id, state) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state,
       state_since = CASE WHEN cluster_instances.state = EXCLUDED.state THEN cluster_instances.state_since ELSE now() END
     RETURNING ${INSTANCE_COLUMNS}, (SELECT count(*) FROM cleared) AS cleared`,
    [id, state],
  );
  return toInstance(rows[0] ?? {});
}

/** Take or renew the lease `name` for `owner` (true), unless another owner holds it unexpired (false). */
export async function acquireLease(q: Queryable, name: string, owner: string, ttlMs: number): Promise<boolean> {
  assertNonEmptyText(name, 'name');
  assertNonEmptyText(owner, 'owner');
  assertCount(ttlMs, 'ttlMs');
  const rows = await q.query(
    `INSERT INTO cluster_leases (name, owner, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
     ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
       WHERE cluster_leases.owner = EXCLUDED.owner OR cluster_leases.expires_at < now()
     RETURNING owner`,
    [name, owner, ttlMs],
  );
  return rows.length > 0;
}

export async function releaseLease(q: Queryable, name: string, owner: string): Promise<void> {
  await q.query('DELETE FROM cluster_leases WHERE name = $1 AND owner = $2', [name, owner]);
}

/** The recorded copies of a content, every instance's (quarantined ones flagged). */
export async function listCopies(q: Queryable, sha256: string): Promise<BlobCopy[]> {
  assertSha256(sha256);
  const rows = await q.query(
    `SELECT instance_id, quarantined, last_verified_at FROM blobs WHERE sha256 = $1 AND image_id <> '' ORDER BY instance_id`,
    [sha256],
  );
  return rows.map((r) => ({
    instanceId: String(r.instance_id),
    quarantined: r.quarantined === true,
    lastVerifiedAt: r.last_verified_at === null || r.last_verified_at === undefined ? null : date(r.last_verified_at),
  }));
}

/**
 * Referenced contents with fewer than `replicas` good copies on instances
 * that count (not in `notCounting`: draining, lost), in sha256 order after
 * `after`, each with every instance holding a good copy (the sources).
 */
export async function listUnderReplicated(
  q: Queryable,
  options: { after: string; replicas: number; notCounting: readonly string[]; limit: number },
): Promise<UnderReplicated[]> {
  assertCount(options.replicas, 'replicas');
  assertCount(options.limit, 'limit');
  const rows = await q.query(
    `SELECT sha256, max(size) AS size,
            coalesce(array_agg(instance_id ORDER BY instance_id) FILTER (WHERE image_id <> '' AND NOT quarantined), '{}') AS holders
       FROM blobs WHERE sha256 > $1
      GROUP BY sha256
     HAVING sum(ref_count) > 0
        AND count(*) FILTER (WHERE image_id <> '' AND NOT quarantined AND NOT (instance_id = ANY($2::text[]))) < $3
      ORDER BY sha256 LIMIT $4`,
    [options.after, [...options.notCounting], options.replicas, options.limit],
  );
  return rows.map((r) => ({ sha256: String(r.sha256), size: Number(r.size), holders: (r.holders as unknown[]).map(String) }));
}

/** How many referenced contents have fewer than `replicas` good copies that count. */
export async function countUnderReplicated(q: Queryable, replicas: number, notCounting: readonly string[]): Promise<number> {
  assertCount(replicas, 'replicas');
  const rows = await q.query(
    `SELECT count(*) AS n FROM (
       SELECT 1 FROM blobs GROUP BY sha256
       HAVING sum(ref_count) > 0
          AND count(*) FILTER (WHERE image_id <> '' AND NOT quarantined AND NOT (instance_id = ANY($1::text[]))) < $2
     ) under`,
    [[...notCounting], replicas],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Whether any file entry names the content (on whichever instance its count is kept). */
export async function isReferenced(q: Queryable, sha256: string): Promise<boolean> {
  assertSha256(sha256);
  const rows = await q.query('SELECT 1 FROM blobs WHERE sha256 = $1 AND ref_count > 0 LIMIT 1', [sha256]);
  return rows.length > 0;
}

/** The copy of `instanceId` no longer counts (moved off, or lost): its row keeps its reference count. */
export async function dropCopy(q: Queryable, instanceId: string, sha256: string): Promise<void> {
  assertSha256(sha256);
  await q.query(`UPDATE blobs SET image_id = '', segment = NULL, seg_offset = NULL WHERE instance_id = $1 AND sha256 = $2`, [instanceId, sha256]);
}

/** The copies an instance holds, in sha256 order after `after`. */
export async function listCopiesOn(q: Queryable, instanceId: string, after: string, limit: number): Promise<{ sha256: string; size: number }[]> {
  assertCount(limit, 'limit');
  const rows = await q.query(
    `SELECT sha256, size FROM blobs WHERE instance_id = $1 AND image_id <> '' AND sha256 > $2 ORDER BY sha256 LIMIT $3`,
    [instanceId, after, limit],
  );
  return rows.map((r) => ({ sha256: String(r.sha256), size: Number(r.size) }));
}

/** Copies and their bytes per instance. */
export async function copiesPerInstance(q: Queryable): Promise<Map<string, { blobs: number; bytes: number }>> {
  const rows = await q.query(`SELECT instance_id, count(*) AS blobs, coalesce(sum(size), 0) AS bytes FROM blobs WHERE image_id <> '' GROUP BY instance_id`);
  return new Map(rows.map((r) => [String(r.instance_id), { blobs: Number(r.blobs), bytes: Number(r.bytes) }]));
}

/** Queue a blob of `instanceId` for the S3 replica (nothing when it is queued already). */
export async function enqueueReplica(q: Queryable, instanceId: string, sha256: string): Promise<void> {
  assertNonEmptyText(instanceId, 'instanceId');
  assertSha256(sha256);
  await q.query('INSERT INTO replica_outbox (instance_id, sha256) VALUES ($1, $2) ON CONFLICT DO NOTHING', [instanceId, sha256]);
}

/** Queued blobs of `instanceId` that are due, oldest first. */
export async function listReplicaOutbox(q: Queryable, instanceId: string, limit: number): Promise<{ sha256: string; attempts: number }[]> {
  assertCount(limit, 'limit');
  const rows = await q.query(
    'SELECT sha256, attempts FROM replica_outbox WHERE instance_id = $1 AND next_at <= now() ORDER BY created_at, sha256 LIMIT $2',
    [instanceId, limit],
  );
  return rows.map((r) => ({ sha256: String(r.sha256), attempts: Number(r.attempts) }));
}

/** The blob is in the bucket (done), or try again after `retryInMs`. */
export async function settleReplica(q: Queryable, instanceId: string, sha256: string, retryInMs: number | null): Promise<void> {
  if (retryInMs === null) {
    await q.query('DELETE FROM replica_outbox WHERE instance_id = $1 AND sha256 = $2', [instanceId, sha256]);
    return;
  }
  assertCount(retryInMs, 'retryInMs');
  await q.query(
    `UPDATE replica_outbox SET attempts = attempts + 1, next_at = now() + $3 * interval '1 millisecond' WHERE instance_id = $1 AND sha256 = $2`,
    [instanceId, sha256, retryInMs],
  );
}

/** How many blobs wait for the S3 replica, all instances together. */
export async function countReplicaOutbox(q: Queryable): Promise<number> {
  const rows = await q.query('SELECT count(*) AS n FROM replica_outbox');
  return Number(rows[0]?.n ?? 0);
}

/**
 * A standing request (`callfs cluster rebalance`) for the repairer, kept as a
 * row of cluster_leases until the repairer finishes it: set, read, cleared.
 */
export async function setRequest(q: Queryable, name: string, on: boolean): Promise<void> {
  assertNonEmptyText(name, 'name');
  if (on) {
    await q.query(
      `INSERT INTO cluster_leases (name, owner, expires_at) VALUES ($1, 'request', 'infinity') ON CONFLICT (name) DO UPDATE SET owner = 'request', expires_at = 'infinity'`,
      [`request:${name}`],
    );
  } else {
    await q.query('DELETE FROM cluster_leases WHERE name = $1', [`request:${name}`]);
  }
}

export async function hasRequest(q: Queryable, name: string): Promise<boolean> {
  const rows = await q.query('SELECT 1 FROM cluster_leases WHERE name = $1', [`request:${name}`]);
  return rows.length > 0;
}

/** Per instance, how many of the copies it holds are of under-replicated contents (as countUnderReplicated counts them). */
export async function underReplicatedPerInstance(q: Queryable, replicas: number, notCounting: readonly string[]): Promise<Map<string, number>> {
  assertCount(replicas, 'replicas');
  const rows = await q.query(
    `WITH under AS (
       SELECT sha256 FROM blobs GROUP BY sha256
       HAVING sum(ref_count) > 0
          AND count(*) FILTER (WHERE image_id <> '' AND NOT quarantined AND NOT (instance_id = ANY($1::text[]))) < $2
     )
     SELECT b.instance_id, count(*) AS n FROM blobs b JOIN under u ON u.sha256 = b.sha256
      WHERE b.image_id <> '' AND NOT b.quarantined GROUP BY b.instance_id`,
    [[...notCounting], replicas],
  );
  return new Map(rows.map((r) => [String(r.instance_id), Number(r.n)]));
}
