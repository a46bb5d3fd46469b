import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { Settings } from '../lib/config/index.js';
import { tlsFiles, ensureSelfSignedCertificate } from '../lib/config/embedded.js';
import { parseListenAddr } from '../lib/config/formats.js';
import { createApp, routesOf, type RouteInfo } from '../lib/http/app.js';
import { createHttpServer, listen, closeGracefully, type TlsServerOptions } from '../lib/http/server.js';
import { opensslCipherString } from '../lib/config/tls.js';
import { createMetrics, type Metrics } from '../lib/metrics/index.js';
import type { Logger } from '../lib/log/index.js';
import { createUserDirectory, usersFromConfig } from '../lib/auth/users.js';
import type { ReadinessChecks } from '../lib/http/readiness.js';
import { createEmbeddedMetadataStore, createPostgresMetadataStore, type MetadataStore } from '../lib/metadata/index.js';
import { createLocalLockManager, createRedlockLockManager, type LockManager } from '../lib/locks/index.js';
import { casOptionsFromSettings, createCasBackend, resolveCasMode } from '../lib/backends/cas/index.js';
import type { CasBackend } from '../lib/backends/cas/types.js';
import { createS3Backend, s3OptionsFromConfig } from '../lib/backends/s3/index.js';
import { createEngine, type Engine } from '../lib/engine/index.js';
import { filesRoutes } from '../lib/http/routes/files.js';
import { directoriesRoutes } from '../lib/http/routes/directories.js';
import { adminRoutes } from '../lib/http/routes/admin.js';
import { linksRoutes } from '../lib/http/routes/links.js';
import { createLinkService, startLinkPurge } from '../lib/links/index.js';
import { CallfsError } from '../lib/errors.js';
import { createPeerDirectory } from '../lib/backends/proxy/peers.js';
import { createRemoteBytes } from '../lib/backends/proxy/remote-bytes.js';
import { join } from 'node:path';

/**
 * The composition root: builds every component from the settings and wires
 * them together by hand. `callfs server` and the integration tests both start
 * CallFS through startCallfs().
 */
export interface RunningCallfs {
  /** Base URL of the main listener, e.g. https://127.0.0.1:8443 */
  url: string;
  port: number;
  /** Port of the unauthenticated metrics listener, or null when disabled. */
  metricsPort: number | null;
  metrics: Metrics;
  store: MetadataStore;
  cas: CasBackend;
  /** The routes the app serves. */
  routes: RouteInfo[];
  engine: Engine;
  /** Graceful shutdown: stop accepting, finish in-flight requests up to the deadline, close stores. */
  close(): Promise<void>;
}

export interface StartOptions {
  settings: Settings;
  logger: Logger;
}

export async function startCallfs(options: StartOptions): Promise<RunningCallfs> {
  const { settings, logger } = options;
  const { config } = settings;
  const metrics = createMetrics();
  const users = createUserDirectory(usersFromConfig(config.auth));
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (err) {
        logger.error({ err }, 'error while closing a component');
      }
    }
  };
  try {
    return await assemble(settings, logger, metrics, users, closers, closeAll);
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function userNames(users: ReturnType<typeof createUserDirectory>): { nameOf: (uid: number) => string; uidOf: (owner: unknown) => number } {
  return {
    nameOf: (uid) => users.byUid(uid)?.name ?? String(uid),
    uidOf(owner) {
      if (typeof owner === 'number' && Number.isInteger(owner) && owner >= 0) return owner;
      if (typeof owner === 'string' && /^\d+$/.test(owner)) return Number(owner);
      const user = typeof owner === 'string' ? users.byName(owner) : undefined;
      if (user === undefined) throw new CallfsError('BAD_REQUEST', '"owner" must be a known user name or a numeric uid');
      return user.uid;
    },
  };
}

/**
 * The idle timeout of connections to peers: below this server's own (the
 * shorter of the read and write timeouts), so that a stalled peer is given up,
 * and the client told, before the client's connection is cut for idling.
 */
function peerIdleTimeoutMs(readTimeoutMs: number, writeTimeoutMs: number): number {
  return Math.max(1000, Math.floor((Math.min(readTimeoutMs, writeTimeoutMs) * 3) / 4));
}

async function openStore(settings: Settings, logger: Logger, metrics: Metrics): Promise<MetadataStore> {
  const { config } = settings;
  const common = { logger, metrics, cacheMaxEntries: config.metadata_store.cache_size };
  if (settings.metadataType === 'postgres') {
    return createPostgresMetadataStore({ ...common, dsn: config.metadata_store.dsn, poolSize: config.metadata_store.pool_size, statementTimeoutMs: config.server.metadata_op_timeout });
  }
  return createEmbeddedMetadataStore({ ...common, dataDir: join(settings.dataDir, 'metadata') });
}

function openLocks(settings: Settings, logger: Logger, metrics: Metrics): LockManager {
  const { config } = settings;
  if (settings.dlmType === 'local') return createLocalLockManager({ waitMs: config.locks.wait_timeout, logger, metrics });
  const servers = settings.redisAddrs.map((addr) => {
    const parsed = parseListenAddr(addr);
    if (parsed === null) throw new CallfsError('BAD_REQUEST', `dlm.redis_addr: ${JSON.stringify(addr)} is not "host:port"`);
    return { host: parsed.host, port: parsed.port, ...(config.dlm.redis_password === '' ? {} : { password: config.dlm.redis_password }) };
  });
  return createRedlockLockManager({ servers, ttlMs: config.dlm.lock_ttl, waitMs: config.locks.wait_timeout, logger, metrics });
}

async function assemble(
  settings: Settings,
  logger: Logger,
  metrics: Metrics,
  users: ReturnType<typeof createUserDirectory>,
  closers: (() => Promise<void>)[],
  closeAll: () => Promise<void>,
): Promise<RunningCallfs> {
  const { config } = settings;
  const instanceId = config.instance_discovery.instance_id;

  let tls: TlsServerOptions | null = null;
  if (config.server.protocol === 'https') {
    const files = tlsFiles(settings);
    if (files.generated && (await ensureSelfSignedCertificate(files.certFile, files.keyFile))) {
      logger.info({ cert_file: files.certFile }, 'generated a self-signed TLS certificate');
    }
    tls = {
      cert: readFileSync(files.certFile),
      key: readFileSync(files.keyFile),
      minVersion: config.server.tls_min_version,
      ciphers: opensslCipherString(config.server.tls_ciphers),
    };
  } else {
    logger.warn('server.protocol is http: traffic is NOT encrypted; use this only behind a TLS-terminating proxy');
  }

  const store = await openStore(settings, logger, metrics);
  closers.push(() => store.close());
  const locks = openLocks(settings, logger, metrics);
  closers.push(() => locks.close());
  const casMode = await resolveCasMode(config.backend.cas.mode);
  if (casMode.problem !== null) throw new CallfsError('SERVICE_UNAVAILABLE', `backend.cas.mode is loop, but ${casMode.problem}`, { component: 'cas' });
  logger.info({ mode: casMode.mode, reason: casMode.reason, root: settings.casRoot }, 'CAS mode');
  const cas = await createCasBackend(casOptionsFromSettings(settings, { index: store, logger, metrics, mode: casMode.mode }));
  closers.push(() => cas.close());
  const s3Options = s3OptionsFromConfig(config.backend, { logger, metrics });
  const s3 = s3Options === null ? null : createS3Backend(s3Options);
  if (s3 !== null) {
    closers.push(() => s3.close());
    logger.info({ bucket: s3.bucket, prefix: s3.prefix, endpoint: config.backend.s3_endpoint || 'AWS' }, 'S3 backend');
  }

  const peers = Object.keys(config.instance_discovery.peer_endpoints).some((id) => id !== instanceId)
    ? createPeerDirectory({
        selfId: instanceId,
        endpoints: config.instance_discovery.peer_endpoints,
        secret: config.auth.internal_proxy_secret,
        caFile: config.backend.internal_proxy_ca_file,
        skipTlsVerify: config.backend.internal_proxy_skip_tls_verify,
        firstByteTimeoutMs: config.instance_discovery.peer_timeout,
        lockWaitMs: config.locks.wait_timeout,
        idleTimeoutMs: peerIdleTimeoutMs(config.server.read_timeout, config.server.write_timeout),
        logger,
        metrics,
      })
    : undefined;
  if (peers !== undefined) closers.push(async () => peers.close());
  const engine = createEngine({
    ...(peers === undefined ? {} : { remote: createRemoteBytes(peers) }),
    store,
    locks,
    backends: s3 === null ? { cas } : { cas, s3 },
    defaultBackend: settings.defaultBackend,
    instanceId,
    maxUploadBytes: config.server.max_upload_bytes,
    logger,
    metrics,
  });
  const readiness: ReadinessChecks = {
    metadata: () => store.ping(),
    locks: () => locks.check(),
    backends: s3 === null ? { cas: () => cas.check() } : { cas: () => cas.check(), s3: () => s3.check() },
    ...(peers === undefined ? {} : { peers: Object.fromEntries(peers.ids.map((id) => [id, () => peers.check(id)])) }),
  };
  const { nameOf, uidOf } = userNames(users);
  const links = createLinkService({ store, engine, userByName: (name) => users.byName(name), secret: config.auth.single_use_link_secret, externalUrl: settings.externalUrl, metrics });
  const linkPurge = startLinkPurge({ store, intervalMs: config.links.purge_interval, logger });
  closers.push(() => linkPurge.stop());

  const app = createApp({
    logger,
    metrics,
    authenticate: (header) => users.authenticate(header),
    ...(peers === undefined ? {} : { peerAuth: { secret: config.auth.internal_proxy_secret, userByName: (name: string) => users.byName(name) } }),
    readiness,
    tls: tls !== null,
    routers: (requireAuth) => [
      filesRoutes({ engine, nameOf, uidOf, requireAuth, maxUploadBytes: config.server.max_upload_bytes, externalUrl: settings.externalUrl, ...(peers === undefined ? {} : { peers }) }),
      directoriesRoutes({ engine, nameOf, requireAuth }),
      adminRoutes({ cas, requireAuth }),
      linksRoutes({ links, requireAuth, generateRateLimit: config.links.generate_rate_limit, downloadRateLimit: config.links.download_rate_limit }),
    ],
  });
  const server = createHttpServer({ app, tls, readTimeoutMs: config.server.read_timeout, writeTimeoutMs: config.server.write_timeout });
  const addr = parseListenAddr(config.server.listen_addr) ?? { host: '', port: 8443 };
  const port = await listen(server, addr.host, addr.port);
  closers.push(() => closeGracefully(server, 0));

  let metricsServer: http.Server | null = null;
  let metricsPort: number | null = null;
  const metricsAddr = config.metrics.listen_addr === '' ? null : parseListenAddr(config.metrics.listen_addr);
  if (metricsAddr !== null) {
    metricsServer = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    metricsPort = await listen(metricsServer, metricsAddr.host, metricsAddr.port);
    const metricsListener = metricsServer;
    closers.push(() => closeGracefully(metricsListener, 0));
  }

  const host = addr.host === '' || addr.host === '0.0.0.0' ? '127.0.0.1' : addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  const url = `${tls === null ? 'http' : 'https'}://${host}:${port}`;

  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    metricsPort,
    metrics,
    store,
    cas,
    engine,
    routes: routesOf(app),
    close() {
      closing ??= (async () => {
        await closeGracefully(server, config.server.shutdown_timeout, logger);
        if (metricsServer !== null) await closeGracefully(metricsServer, 1000);
        await closeAll();
      })();
      return closing;
    },
  };
}
