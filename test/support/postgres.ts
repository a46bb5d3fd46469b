import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { POSTGRES_ADMIN_DSN } from './services.js';

/** A uniquely named, empty database for one test run. */
export interface TestDatabase {
  name: string;
  /** DSN of the new database (the admin DSN with its database replaced). */
  dsn: string;
  /** Drop it, disconnecting whoever is still connected. Safe to call twice. */
  drop(): Promise<void>;
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_DSN, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Create a fresh database through the admin DSN (call ensurePostgres first). */
export async function createTestDatabase(prefix = 'callfs_test'): Promise<TestDatabase> {
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  const url = new URL(POSTGRES_ADMIN_DSN);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    dsn: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`));
    },
  };
}
