import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Cleanup } from '../harness/cleanup.js';
import { parentOf } from '../harness/pinning.js';

/**
 * The suite's scratch database on the existing Postgres: created fresh,
 * shared by CallFS (its schema), B-node (bench_node_files) and B-pg
 * (bench_pg_files), and dropped at the end whatever happens.
 */
export interface ScratchDatabase {
  name: string;
  dsn: string;
  /** A small pool for the suite's own checks. */
  pool: pg.Pool;
  /** The postmaster's pid when Postgres runs on this host (for pinning), else null. */
  postmasterPid: number | null;
}

/** The row B-node writes and B-pg's insert script mirrors. */
const TABLES = ['bench_node_files', 'bench_pg_files'].map(
  (t) => `CREATE TABLE ${t} (path text PRIMARY KEY, sha256 text NOT NULL, size bigint NOT NULL, mtime timestamptz NOT NULL DEFAULT now())`,
);

export async function createScratchDatabase(adminDsn: string, cleanup: Cleanup): Promise<ScratchDatabase> {
  const name = `callfs_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminDsn });
  await admin.connect();
  let postmasterPid: number | null;
  try {
    const backendPid = Number((await admin.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
    // Read while the backend is alive: its parent is the postmaster.
    postmasterPid = parentOf(backendPid);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminDsn);
  url.pathname = `/${name}`;
  const dsn = url.toString();
  const pool = new pg.Pool({ connectionString: dsn, max: 2 });
  cleanup.add(`drop database ${name}`, async () => {
    await pool.end().catch(() => undefined);
    const c = new pg.Client({ connectionString: adminDsn });
    await c.connect();
    try {
      // FORCE: a killed server's connections must not keep the database alive.
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  });
  for (const sql of TABLES) await pool.query(sql);
  return { name, dsn, pool, postmasterPid };
}
