import pg from 'pg';

/** Runs one statement: a pg.Client or a PGlite instance both fit. */
export interface SqlRunner {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * A big tree made in the database directly (one INSERT per level, triggers
 * off, reference counts set once), not by one HTTP request per file:
 * `dirs` directories under `root` (which must exist), each with `filesPerDir`
 * files naming one of 16 CAS blobs `fixture-blob-<n>` of instance `instanceId`.
 * 1,000,000 files take about ten seconds on Postgres. Returns the number of
 * entries made. Works on Postgres (makeBigTree) and on PGlite (the embedded
 * store, opened by the caller while no server uses it).
 */
export async function fillBigTree(db: SqlRunner, root: string, options: { dirs: number; filesPerDir: number; uid: number; gid: number; instanceId: string }): Promise<number> {
  await db.query('BEGIN');
  try {
    // Replica mode: no per-row reference-count trigger (quadratic for 16 blobs) and no FK checks; both are settled below.
    await db.query('SET LOCAL session_replication_role = replica');
    const top = await db.query('SELECT id, depth FROM inodes WHERE path = $1', [root]);
    if (top.rows[0] === undefined) throw new Error(`fillBigTree: ${root} does not exist`);
    const { id, depth } = top.rows[0] as { id: string; depth: number };
    await db.query(
      `INSERT INTO inodes (path, parent_id, name, depth, type, mode, uid, gid)
       SELECT $1::text || '/d' || lpad(g::text, 6, '0'), $2::bigint, 'd' || lpad(g::text, 6, '0'), $3::int + 1, 'directory', 493, $4::bigint, $5::bigint
       FROM generate_series(0, $6::int - 1) g`,
      [root, id, depth, options.uid, options.gid, options.dirs],
    );
    await db.query(
      `INSERT INTO inodes (path, parent_id, name, depth, type, size, mode, uid, gid, backend, instance_id, blob_id, etag)
       SELECT d.path || '/f' || lpad(g::text, 6, '0'), d.id, 'f' || lpad(g::text, 6, '0'), d.depth + 1, 'file', 4, 420, $3::bigint, $4::bigint, 'cas', $5::text,
              'fixture-blob-' || (g % 16), 'fixture-blob-' || (g % 16)
       FROM inodes d, generate_series(0, $6::int - 1) g
       WHERE d.parent_id = $1::bigint AND d.type = 'directory' AND d.path > $2::text || '/' AND d.path < $2::text || '0'`,
      [id, root, options.uid, options.gid, options.instanceId, options.filesPerDir],
    );
    await db.query(
      `INSERT INTO blobs (instance_id, sha256, size, ref_count)
       SELECT $1::text, 'fixture-blob-' || n, 4, 0 FROM generate_series(0, 15) n ON CONFLICT DO NOTHING`,
      [options.instanceId],
    );
    await db.query(
      `UPDATE blobs b SET ref_count = (SELECT count(*) FROM inodes i WHERE i.backend = 'cas' AND i.instance_id = b.instance_id AND i.blob_id = b.sha256)
       WHERE b.instance_id = $1::text AND b.sha256 LIKE 'fixture-blob-%'`,
      [options.instanceId],
    );
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  await db.query('ANALYZE inodes');
  return options.dirs * (1 + options.filesPerDir);
}

/** fillBigTree on a Postgres database. */
export async function makeBigTree(dsn: string, root: string, options: { dirs: number; filesPerDir: number; uid: number; gid: number; instanceId: string }): Promise<number> {
  const client = new pg.Client({ connectionString: dsn });
  await client.connect();
  try {
    return await fillBigTree(client, root, options);
  } finally {
    await client.end();
  }
}

/** One query against the test database. */
export async function queryDb<R extends pg.QueryResultRow>(dsn: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: dsn });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}
