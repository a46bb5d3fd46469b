import { resolve } from 'node:path';
import type { Config } from './schema.js';
import { parseListenAddr } from './formats.js';
import { backendTypeOf, type BackendType } from '../backends/registry.js';

/** Values derived from the configuration that the rest of the system acts on. */
export interface Settings {
  config: Config;
  /** metadata_store.type resolved: postgres when a DSN is set, else embedded (PGlite). */
  metadataType: 'postgres' | 'embedded';
  /** dlm.type resolved: redis when metadata is postgres, else local. */
  dlmType: 'redis' | 'local';
  /** backend.default_backend with its alias resolved ('localfs' → 'cas'). */
  defaultBackend: BackendType;
  /** Absolute data directory. */
  dataDir: string;
  /** Absolute CAS root (backend.localfs_root_path, else <data_dir>/cas). */
  casRoot: string;
  /** Redis servers for Redlock ("host:port"). */
  redisAddrs: string[];
  /**
   * Base URL for links: server.external_url with a scheme; when it was not
   * configured, localhost on the configured listen port.
   */
  externalUrl: string;
}


/**
 * Resolve derived settings (no validation beyond what is needed to derive
 * them). `explicitKeys` are the keys set by the file or the environment.
 */
export function deriveSettings(config: Config, cwd = process.cwd(), explicitKeys: ReadonlySet<string> = new Set()): Settings {
  const metadataType = config.metadata_store.type === 'postgres' || (config.metadata_store.type === '' && config.metadata_store.dsn !== '') ? 'postgres' : 'embedded';
  const dlmType = config.dlm.type === 'redis' || (config.dlm.type === '' && metadataType === 'postgres') ? 'redis' : 'local';
  const dataDir = resolve(cwd, config.server.data_dir);
  const port = parseListenAddr(config.server.listen_addr)?.port ?? 0;
  // The default (localhost:8443) would point links at the wrong port when only listen_addr moved.
  const external = explicitKeys.has('server.external_url') || port === 0 ? config.server.external_url : `localhost:${port}`;
  return {
    config,
    metadataType,
    dlmType,
    defaultBackend: backendTypeOf(config.backend.default_backend) ?? 'cas',
    dataDir,
    casRoot: config.backend.localfs_root_path === '' ? resolve(dataDir, 'cas') : resolve(cwd, config.backend.localfs_root_path),
    redisAddrs: config.dlm.redis_addrs.length > 0 ? config.dlm.redis_addrs : [config.dlm.redis_addr],
    externalUrl: (/^https?:\/\//.test(external) ? external : `${config.server.protocol}://${external}`).replace(/\/+$/, ''),
  };
}
