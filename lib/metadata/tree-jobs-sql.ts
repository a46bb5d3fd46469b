import { CallfsError, notFound } from '../errors.js';
import { assertCanonical } from '../paths.js';
import type { Queryable, Row } from './driver.js';
import { assertNoTreeJob, getEntry, moveEntry, notInRemovedTree, subtreeBounds, type StoredEntry } from './namespace-sql.js';
import { lockNamespace, type TxState } from './tx-state.js';
import type { BackendType, MoveOptions, RemovedEntry, TreeJob } from './types.js';
import { assertCount } from './validate.js';

/**
 * Long tree operations (migration 006). A recursive delete of a big
 * directory detaches the tree in one short transaction and then removes its
 * rows in bounded batches, each its own transaction, so that no statement
 * grows with the tree and the work resumes wherever it stopped.
 */

const JOB_COLUMNS = 'id, kind, path, dest, options, uid, state, total, done, error, created_at, updated_at, finished_at';

/** The path of a job's trash root: not canonical, so no lookup asks for it, and outside every subtree range. */
export const trashPathOf = (id: string): string => `#trash/${id}`;

const asDate = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));

const asObject = (v: unknown): Record<string, unknown> => (typeof v === 'string' ? JSON.parse(v) as Record<string, unknown> : (v ?? {}) as Record<string, unknown>);

function toJob(row: Row): TreeJob {
  const error = row.error === null || row.error === undefined ? null : asObject(row.error);
  return {
    id: String(row.id),
    kind: row.kind === 'move' ? 'move' : 'delete',
    path: String(row.path),
    dest: row.dest === null || row.dest === undefined ? null : String(row.dest),
    options: asObject(row.options) as TreeJob['options'],
    error: error === null ? null : { code: String(error.code), message: String(error.message) },
    uid: Number(row.uid),
    state: String(row.state) as TreeJob['state'],
    total: Number(row.total),
    done: Number(row.done),
    createdAt: asDate(row.created_at),
    updatedAt: asDate(row.updated_at),
    finishedAt: row.finished_at === null || row.finished_at === undefined ? null : asDate(row.finished_at),
  };
}

/** Job ids: what randomUUID() gives, and any other short word. */
const JOB_ID = /^[\w-]{1,64}$/;

function assertJobId(id: string): void {
  if (typeof id !== 'string' || !JOB_ID.test(id)) throw new CallfsError('BAD_REQUEST', 'a job id is 1 to 64 letters, digits, - or _');
}

/**
 * The directory at `path`, its row locked under the exclusive namespace lock
 * (writers that started before finish first; later ones see what this
 * transaction marks), its version checked as delete checks it.
 */
async function lockedDirectory(q: Queryable, state: TxState, path: string, expectedVersion: number | undefined): Promise<StoredEntry> {
  await lockNamespace(q, state, 'exclusive');
  const entry = await getEntry(q, path, 'FOR UPDATE');
  if (entry === null) throw notFound(path);
  if (entry.type !== 'directory') throw new CallfsError('NOT_A_DIRECTORY', `not a directory: ${path}`);
  if (expectedVersion !== undefined && entry.version !== expectedVersion) {
    throw new CallfsError('PRECONDITION_FAILED', `${path} changed (version ${entry.version}, expected ${expectedVersion})`);
  }
  return entry;
}

/** The entries below `path` (not counting the old rows of a tree being removed there). */
async function countBelow(q: Queryable, path: string): Promise<number> {
  const [lo, hi] = subtreeBounds(path);
  const rows = await q.query(`SELECT count(*) AS n FROM inodes WHERE path > $1 AND path < $2 AND ${notInRemovedTree('inodes.path')}`, [lo, hi]);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Take the directory at `path` and its tree out of the namespace: its row
 * becomes the trash root (a row that is nobody's child), and the job row
 * marks `path` so that lookups and listings skip the rows still below it and
 * nothing is created or moved there until they are gone. One short
 * transaction under the exclusive namespace lock, whatever the tree's size.
 */
export async function detachTree(q: Queryable, state: TxState, path: string, job: { id: string; uid: number; leaseOwner: string; leaseMs: number; expectedVersion?: number }): Promise<TreeJob> {
  assertCanonical(path);
  assertJobId(job.id);
  assertCount(job.uid, 'uid');
  if (path === '/') throw new CallfsError('BAD_REQUEST', 'the root cannot be deleted');
  const entry = await lockedDirectory(q, state, path, job.expectedVersion);
  // A tree below that is being moved would lose its rows to this one.
  await assertNoTreeJob(q, path, { subtree: true });
  const total = await countBelow(q, path);
  const trash = trashPathOf(job.id);
  await q.query('UPDATE inodes SET path = $2, name = $3, parent_id = id, version = version + 1, ctime = now(), updated_at = now() WHERE id = $1', [entry.id, trash, job.id]);
  const rows = await q.query(
    `INSERT INTO tree_jobs (id, kind, path, uid, state, total, lease_owner, lease_until)
     VALUES ($1, 'delete', $2, $3, 'running', $4, $5, now() + $6::integer * interval '1 millisecond') RETURNING ${JOB_COLUMNS}`,
    [job.id, path, job.uid, total, job.leaseOwner, job.leaseMs],
  );
  state.invalidations.subtree.add(path);
  return toJob(rows[0] as Row);
}

export async function getJob(q: Queryable, id: string): Promise<TreeJob | null> {
  if (!JOB_ID.test(id)) return null;
  const rows = await q.query(`SELECT ${JOB_COLUMNS} FROM tree_jobs WHERE id = $1`, [id]);
  return rows[0] === undefined ? null : toJob(rows[0]);
}

export async function claimJob(q: Queryable, owner: string, leaseMs: number): Promise<TreeJob | null> {
  const rows = await q.query(
    `UPDATE tree_jobs SET lease_owner = $1, lease_until = now() + $2::integer * interval '1 millisecond'
     WHERE id = (SELECT id FROM tree_jobs WHERE state = 'running' AND (lease_until IS NULL OR lease_until < now() OR lease_owner = $1)
                 ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING ${JOB_COLUMNS}`,
    [owner, leaseMs],
  );
  return rows[0] === undefined ? null : toJob(rows[0]);
}

/** One batch of a job (see TreeJobOps.removeBatch); run inside a transaction. */
export async function removeBatch(q: Queryable, id: string, limit: number, owner: string, leaseMs: number): Promise<{ job: TreeJob; removed: RemovedEntry[] }> {
  assertCount(limit, 'limit');
  const locked = await q.query(`SELECT ${JOB_COLUMNS} FROM tree_jobs WHERE id = $1 FOR UPDATE`, [id]);
  if (locked[0] === undefined) throw new CallfsError('FILE_NOT_FOUND', `no job ${id}`);
  const job = toJob(locked[0]);
  if (job.state !== 'running' || job.kind !== 'delete') return { job, removed: [] };
  const [lo, hi] = subtreeBounds(job.path);
  // Path order, last first: every row goes before its parent (a descendant's path extends its ancestor's).
  const gone = await q.query(
    `WITH doomed AS (SELECT id FROM inodes WHERE path > $1 AND path < $2 ORDER BY path DESC LIMIT $3)
     DELETE FROM inodes i USING doomed d WHERE i.id = d.id RETURNING i.path, i.type, i.backend, i.blob_id`,
    [lo, hi, limit],
  );
  const removed = gone.map((r) => ({ path: String(r.path), type: r.type === 'directory' ? 'directory' as const : 'file' as const, backend: (r.backend ?? null) as BackendType | null, blobId: r.blob_id === null || r.blob_id === undefined ? null : String(r.blob_id) }));
  const finished = removed.length < limit;
  if (finished) await q.query('DELETE FROM inodes WHERE path = $1', [trashPathOf(id)]);
  const rows = await q.query(
    `UPDATE tree_jobs SET done = done + $2, updated_at = now(),
       state = CASE WHEN $3::boolean THEN 'done' ELSE state END,
       finished_at = CASE WHEN $3::boolean THEN now() ELSE NULL END,
       lease_owner = CASE WHEN $3::boolean THEN NULL ELSE $4 END,
       lease_until = CASE WHEN $3::boolean THEN NULL ELSE now() + $5::integer * interval '1 millisecond' END
     WHERE id = $1 RETURNING ${JOB_COLUMNS}`,
    [id, removed.length, finished, owner, leaseMs],
  );
  return { job: toJob(rows[0] as Row), removed };
}

export async function pruneJobs(q: Queryable, before: Date): Promise<number> {
  const rows = await q.query(`DELETE FROM tree_jobs WHERE state <> 'running' AND finished_at < $1 RETURNING id`, [before]);
  return rows.length;
}

/**
 * Start a move job of the directory at `from` to `to`: checks that nothing
 * at or below either is written by another tree job and marks both (see
 * migration 006). The caller decided the move (permissions, destination)
 * in this same transaction; runMove does it.
 */
export async function startMove(q: Queryable, state: TxState, from: string, to: string, job: { id: string; uid: number; leaseOwner: string; leaseMs: number; expectedVersion?: number; overwrite: boolean; parents: MoveOptions['parents'] | null }): Promise<TreeJob> {
  assertCanonical(from);
  assertCanonical(to);
  assertJobId(job.id);
  assertCount(job.uid, 'uid');
  await lockedDirectory(q, state, from, job.expectedVersion);
  await assertNoTreeJob(q, from, { subtree: true });
  await assertNoTreeJob(q, to, { subtree: true });
  const total = await countBelow(q, from);
  const rows = await q.query(
    `INSERT INTO tree_jobs (id, kind, path, dest, options, uid, state, total, lease_owner, lease_until)
     VALUES ($1, 'move', $2, $3, $4::jsonb, $5, 'running', $6, $7, now() + $8::integer * interval '1 millisecond') RETURNING ${JOB_COLUMNS}`,
    [job.id, from, to, JSON.stringify({ overwrite: job.overwrite, parents: job.parents ?? null }), job.uid, total, job.leaseOwner, job.leaseMs],
  );
  return toJob(rows[0] as Row);
}

/**
 * Do a move job: the whole move in this one transaction (readers see the
 * tree at its old path until it commits, then at the new one), with no
 * statement timeout, and the job done in the same commit. A move refused by
 * then (a CallfsError) is the caller's to record with failMove.
 */
export async function runMove(q: Queryable, state: TxState, id: string, noTimeout: boolean): Promise<TreeJob> {
  const locked = await q.query(`SELECT ${JOB_COLUMNS} FROM tree_jobs WHERE id = $1 FOR UPDATE`, [id]);
  if (locked[0] === undefined) throw new CallfsError('FILE_NOT_FOUND', `no job ${id}`);
  const job = toJob(locked[0]);
  if (job.state !== 'running' || job.kind !== 'move' || job.dest === null) return job;
  if (noTimeout) await q.query('SET LOCAL statement_timeout = 0');
  const parents = job.options.parents ?? undefined;
  await moveEntry(q, state, job.path, job.dest, { overwrite: job.options.overwrite === true, ...(parents === undefined ? {} : { parents }), treeJob: id });
  const rows = await q.query(
    `UPDATE tree_jobs SET state = 'done', done = total, updated_at = now(), finished_at = now(), lease_owner = NULL, lease_until = NULL
     WHERE id = $1 RETURNING ${JOB_COLUMNS}`,
    [id],
  );
  return toJob(rows[0] as Row);
}

/** A move job refused when it ran: its mark is lifted and the error kept for its owner. */
export async function failMove(q: Queryable, id: string, error: { code: string; message: string }): Promise<void> {
  await q.query(
    `UPDATE tree_jobs SET state = 'failed', error = $2::jsonb, updated_at = now(), finished_at = now(), lease_owner = NULL, lease_until = NULL
     WHERE id = $1 AND state = 'running' AND kind = 'move'`,
    [id, JSON.stringify(error)],
  );
}
