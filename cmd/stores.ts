import { join } from 'node:path';
import type { Settings } from '../lib/config/index.js';
import { parseListenAddr } from '../lib/config/formats.js';
import { CallfsError } from '../lib/errors.js';
import type { Logger } from '../lib/log/index.js';
import { createEmbeddedMetadataStore, createPostgresMetadataStore, type MetadataStore } from '../lib/metadata/index.js';
import { createLocalLockManager, createRedlockLockManager, type LockManager } from '../lib/locks/index.js';
import type { Metrics } from '../lib/metrics/index.js';

/**
 * The metadata store the settings name: Postgres (metadata_store.dsn) or
 * embedded PGlite under the data directory. The one way every command opens
 * it (the server, `callfs cas` offline, `callfs migrate`).
 */
export function openMetadataStore(settings: Settings, options: { logger: Logger; metrics?: Metrics }): Promise<MetadataStore> {
  const { config } = settings;
  const common = { logger: options.logger, ...(options.metrics === undefined ? {} : { metrics: options.metrics }), cacheMaxEntries: config.metadata_store.cache_size };
  if (settings.metadataType === 'postgres') {
    return createPostgresMetadataStore({ ...common, dsn: config.metadata_store.dsn, poolSize: config.metadata_store.pool_size, statementTimeoutMs: config.server.metadata_op_timeout });
  }
  return createEmbeddedMetadataStore({ ...common, dataDir: metadataDir(settings) });
}

/** Where the embedded metadata store keeps its files. */
export function metadataDir(settings: Settings): string {
  return join(settings.dataDir, 'metadata');
}

/** The lock manager the settings name: Redlock over dlm.redis_addr(s), or in-process. */
export function openLocks(settings: Settings, logger: Logger, metrics: Metrics): LockManager {
  const { config } = settings;
  if (settings.dlmType === 'local') return createLocalLockManager({ waitMs: config.locks.wait_timeout, logger, metrics });
  const servers = settings.redisAddrs.map((addr) => {
    const parsed = parseListenAddr(addr);
    if (parsed === null) throw new CallfsError('BAD_REQUEST', `dlm.redis_addr: ${JSON.stringify(addr)} is not "host:port"`);
    return { host: parsed.host, port: parsed.port, ...(config.dlm.redis_password === '' ? {} : { password: config.dlm.redis_password }) };
  });
  return createRedlockLockManager({ servers, ttlMs: config.dlm.lock_ttl, waitMs: config.locks.wait_timeout, logger, metrics });
}
