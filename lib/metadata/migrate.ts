import { readdir, readFile } from 'node:fs/promises';
import type { SqlDriver, TransactionQueryable } from './driver.js';
import { BACKEND_TYPES } from '../backends/registry.js';

/** One versioned schema change: `migrations/NNN_name.sql`. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

// pg_advisory_xact_lock(classid, objid): 'cfs1' and 1 = "schema migrations".
const LOCK_CLASS = 0x63667331;
const LOCK_MIGRATIONS = 1;

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

/** The migrations shipped with this build, in version order. */
export async function loadMigrations(): Promise<Migration[]> {
  const names = (await readdir(MIGRATIONS_DIR)).filter((n) => /^\d+_[\w-]+\.sql$/.test(n));
  const migrations = await Promise.all(
    names.map(async (file) => {
      const match = /^(\d+)_([\w-]+)\.sql$/.exec(file);
      if (match === null || match[1] === undefined || match[2] === undefined) throw new Error(`bad migration file name ${file}`);
      return { version: Number(match[1]), name: match[2], sql: await readFile(new URL(file, MIGRATIONS_DIR), 'utf8') };
    }),
  );
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]?.version === migrations[i - 1]?.version) throw new Error(`two migrations share version ${migrations[i]?.version}`);
  }
  return migrations;
}

/**
 * Apply every pending migration, in order, in one transaction holding an
 * advisory lock, so that instances starting together migrate once and the
 * others wait and then find nothing to do. Returns the versions applied.
 * A database migrated by a newer build (unknown versions) is refused.
 */
export async function migrate(driver: SqlDriver): Promise<number[]> {
  const migrations = await loadMigrations();
  return driver.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, LOCK_MIGRATIONS]);
    await tx.query(`CREATE TABLE IF NOT EXISTS callfs_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const rows = await tx.query<{ version: number }>('SELECT version FROM callfs_migrations');
    const applied = new Set(rows.map((r) => Number(r.version)));
    const known = new Set(migrations.map((m) => m.version));
    const unknown = [...applied].filter((v) => !known.has(v));
    if (unknown.length > 0) {
      throw new Error(`the metadata database has migrations this build does not know (${unknown.join(', ')}); upgrade CallFS`);
    }
    const done: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO callfs_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      done.push(m.version);
    }
    await syncBackendConstraint(tx);
    return done;
  });
}

const BACKEND_CONSTRAINT = 'inodes_backend_known';

/**
 * `inodes.backend` may hold the backend types of the registry, and nothing
 * else: the CHECK is rewritten when the registry changed (a build that adds a
 * backend), under the migration lock. A database that still holds entries of
 * a backend this build no longer knows keeps its old constraint (and fails
 * loudly) rather than losing the check.
 */
async function syncBackendConstraint(tx: TransactionQueryable): Promise<void> {
  const rows = await tx.query<{ def: string }>(
    `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid WHERE t.relname = 'inodes' AND c.conname = $1`,
    [BACKEND_CONSTRAINT],
  );
  const current = rows[0] === undefined ? null : [...rows[0].def.matchAll(/'([^']*)'/g)].map((m) => m[1]).sort();
  if (current !== null && current.join(',') === [...BACKEND_TYPES].sort().join(',')) return;
  if (current !== null) await tx.exec(`ALTER TABLE inodes DROP CONSTRAINT ${BACKEND_CONSTRAINT}`);
  // Backend type names are identifiers from the registry (lowercase letters and digits), never input.
  const names = BACKEND_TYPES.map((t) => `'${t}'`).join(', ');
  await tx.exec(`ALTER TABLE inodes ADD CONSTRAINT ${BACKEND_CONSTRAINT} CHECK (backend IS NULL OR backend IN (${names}))`);
}
