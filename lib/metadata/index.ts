import { createSilentLogger, type Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import { createEntryCache } from './cache.js';
import { mapDbError } from './db-errors.js';
import type { SqlDriver } from './driver.js';
import { createLocalInvalidator, createNotifyInvalidator } from './invalidation.js';
import { migrate } from './migrate.js';
import { createPgliteDriver } from './pglite-driver.js';
import { createPostgresDriver } from './postgres-driver.js';
import { createStore } from './store.js';
import type { MetadataStore } from './types.js';

export type * from './types.js';
export { migrate, loadMigrations } from './migrate.js';
export type { SqlDriver } from './driver.js';
export { createPostgresDriver, type PostgresDriverOptions } from './postgres-driver.js';
export { createPgliteDriver, type PgliteDriverOptions } from './pglite-driver.js';

/** Options shared by both stores. */
export interface MetadataStoreCommonOptions {
  /** Defaults to a silent logger. */
  logger?: Logger;
  /** metadataOperations and metadataCache are counted here when given. */
  metrics?: Metrics;
  /** Entries kept in the LRU cache (default 10000; 0 disables the cache). */
  cacheMaxEntries?: number;
  /** Rows per keyset page of listings (default 500). */
  listPageSize?: number;
}

export interface PostgresMetadataStoreOptions extends MetadataStoreCommonOptions {
  /** postgres://user:password@host:port/database (or a key=value string). */
  dsn: string;
  /** Pool connections (default 10). The LISTEN connection comes on top. */
  poolSize?: number;
  /** Server-side statement timeout in ms (default 30000; 0 disables). */
  statementTimeoutMs?: number;
  /** Connect / pool checkout timeout in ms (default 5000). */
  connectTimeoutMs?: number;
  /** Longest wait after a write for its own invalidation to come back (default 200 ms). */
  notifyWaitMs?: number;
}

export interface EmbeddedMetadataStoreOptions extends MetadataStoreCommonOptions {
  /** Directory for the embedded database (created when missing; owned by the store). */
  dataDir: string;
}

async function openWith(driver: SqlDriver, logger: Logger): Promise<void> {
  try {
    const applied = await migrate(driver);
    if (applied.length > 0) logger.info({ applied, database: driver.description }, 'metadata store: migrations applied');
  } catch (err) {
    await driver.close().catch(() => {});
    throw mapDbError(err, driver.description);
  }
}

/**
 * A store on a Postgres server: a pg pool, migrations applied on open, and a
 * cache invalidated across instances by LISTEN/NOTIFY. An unreachable
 * database fails the open with SERVICE_UNAVAILABLE naming host, port and
 * database (never the password).
 */
export async function createPostgresMetadataStore(options: PostgresMetadataStoreOptions): Promise<MetadataStore> {
  const logger = options.logger ?? createSilentLogger();
  const driver = createPostgresDriver({
    dsn: options.dsn,
    logger,
    ...(options.poolSize !== undefined ? { poolSize: options.poolSize } : {}),
    ...(options.statementTimeoutMs !== undefined ? { statementTimeoutMs: options.statementTimeoutMs } : {}),
    ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
  });
  await openWith(driver, logger);
  const cache = createEntryCache(options.cacheMaxEntries ?? 10_000);
  // Until the listener is up the cache stays off (it could miss invalidations).
  cache.setUsable(false);
  const invalidator = createNotifyInvalidator({ driver, cache, logger, notifyWaitMs: options.notifyWaitMs ?? 200 });
  await invalidator.start();
  return createStore({ driver, cache, invalidator, logger, listPageSize: options.listPageSize ?? 500, ...(options.metrics ? { metrics: options.metrics } : {}) });
}

/**
 * A store on embedded Postgres (PGlite) under `dataDir`, for one process.
 * Its cache is invalidated in-process only. No statement timeout: PGlite runs
 * on the caller's thread and cannot be interrupted.
 */
export async function createEmbeddedMetadataStore(options: EmbeddedMetadataStoreOptions): Promise<MetadataStore> {
  const logger = options.logger ?? createSilentLogger();
  const driver = await createPgliteDriver({ dataDir: options.dataDir });
  await openWith(driver, logger);
  const cache = createEntryCache(options.cacheMaxEntries ?? 10_000);
  const invalidator = createLocalInvalidator(cache);
  return createStore({ driver, cache, invalidator, logger, listPageSize: options.listPageSize ?? 500, ...(options.metrics ? { metrics: options.metrics } : {}) });
}

/**
 * Apply pending migrations and close (the `callfs migrate` verb). Returns the
 * versions applied (empty when the schema was current).
 */
export async function migrateDatabase(target: { dsn: string } | { dataDir: string }, logger: Logger = createSilentLogger()): Promise<number[]> {
  const driver = 'dsn' in target ? createPostgresDriver({ dsn: target.dsn, logger }) : await createPgliteDriver({ dataDir: target.dataDir });
  try {
    return await migrate(driver);
  } catch (err) {
    throw mapDbError(err, driver.description);
  } finally {
    await driver.close().catch(() => {});
  }
}
