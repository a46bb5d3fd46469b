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
import type { MetadataStore } from '../lib/metadata/index.js';
import type { CasBackend } from '../lib/backends/cas/types.js';
import type { Backend } from '../lib/backends/types.js';
import { createEngine, type Engine } from '../lib/engine/index.js';
import { filesRoutes } from '../lib/http/routes/files.js';
import { directoriesRoutes } from '../lib/http/routes/directories.js';
import { jobsRoutes } from '../lib/http/routes/jobs.js';
import { TREE_JOB_DEFAULTS, TreeJobRunner, dropPathKeyedBytes } from '../lib/engine/tree-jobs.js';
import { adminRoutes } from '../lib/http/routes/admin.js';
import { linksRoutes } from '../lib/http/routes/links.js';
import { createLinkService, startLinkPurge } from '../lib/links/index.js';
import { CallfsError } from '../lib/errors.js';
import { internalRoutes } from '../lib/http/routes/internal.js';
import { requirePeer } from '../lib/http/middleware/auth.js';
import { openBackends } from './backends.js';
import { openLocks, openMetadataStore } from './stores.js';
import { casSpace, openCluster, type ClusterParts } from './cluster.js';
import { webdav } from '../lib/http/webdav/index.js';
import Koa from 'koa';
import { requestContext } from '../lib/http/middleware/request-context.js';
import type { RequestState } from '../lib/http/state.js';
import { s3Api, s3Sweep } from '../lib/s3/api.js';
import { uploadsRoutes } from '../lib/http/routes/uploads.js';
import { UploadService } from '../lib/uploads/service.js';
import { join } from 'node:path';
import { S3Replica } from '../lib/cluster/s3-replica.js';
import { fileURLToPath } from 'node:url';
import { webUi } from '../lib/http/web-ui.js';
import { readClusterStatus } from '../lib/cluster/status.js';
import { clusterRoutes } from '../lib/http/routes/cluster.js';
import { whoamiRoutes } from '../lib/http/routes/whoami.js';

/** Where `npm run build` writes the web UI (dist/ui, beside dist/cmd). */
export const UI_ROOT = fileURLToPath(new URL('../ui', import.meta.url));

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
  /** Port of the S3-compatible API (s3.listen_addr), or null when disabled. */
  s3Port: number | null;
  metrics: Metrics;
  store: MetadataStore;
  cas: CasBackend;
  /** The other instances as backends (the peer proxy), by id; empty without peers. */
  peers: ReadonlyMap<string, Backend>;
  /** Membership and the repairer; null without peers. */
  cluster: ClusterParts | null;
  /** The S3 replica of the CAS (ha.replication_enabled); null otherwise. */
  casReplica: S3Replica | null;
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
  const specs = usersFromConfig(config.auth);
  const users = createUserDirectory(specs);
  // The S3 API signs with the API key itself (HMAC): the keys by user name, for it only.
  const secrets = new Map<string, string[]>();
  for (const spec of specs) secrets.set(spec.name, [...(secrets.get(spec.name) ?? []), spec.apiKey]);
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
    return await assemble(settings, logger, metrics, users, secrets, closers, closeAll);
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

async function assemble(
  settings: Settings,
  logger: Logger,
  metrics: Metrics,
  users: ReturnType<typeof createUserDirectory>,
  secrets: ReadonlyMap<string, string[]>,
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

  const store = await openMetadataStore(settings, { logger, metrics });
  closers.push(() => store.close());
  const locks = openLocks(settings, logger, metrics);
  closers.push(() => locks.close());
  const opened = await openBackends(settings, { store, logger, metrics });
  closers.push(...opened.closers);
  const { backends, cas, peers, peerDirectory, replicaBucket } = opened;
  const casReplica = replicaBucket === undefined
    ? null
    : new S3Replica({ store, instanceId, local: cas, bucket: replicaBucket, requireSuccess: config.ha.require_replica_success, intervalMs: config.ha.outbox_interval, logger, metrics });
  const cluster = openCluster(settings, { store, cas, peers, logger, metrics, ...(casReplica === null ? {} : { replica: casReplica }) });
  const trees = store.trees === undefined
    ? undefined
    : new TreeJobRunner({
      trees: store.trees,
      owner: instanceId,
      settings: { ...TREE_JOB_DEFAULTS, jobEntries: config.metadata_store.tree_job_entries, batchEntries: config.metadata_store.tree_batch_entries },
      dropBytes: (entry) => dropPathKeyedBytes(backends, entry, logger),
      logger,
      metrics,
    });
  const engine = createEngine({
    ...(trees === undefined ? {} : { trees }),
    ...(peers === undefined ? {} : { peers }),
    ...(casReplica === null ? {} : { casReplica }),
    ...(cluster === null ? {} : { cluster: cluster.membership }),
    store,
    locks,
    backends,
    defaultBackend: settings.defaultBackend,
    instanceId,
    maxUploadBytes: config.server.max_upload_bytes,
    logger,
    metrics,
  });
  const readiness: ReadinessChecks = {
    metadata: () => store.ping(),
    locks: () => locks.check(),
    backends: Object.fromEntries(Object.entries(backends).map(([type, backend]) => [type, () => backend.check()])),
    ...(peerDirectory === undefined ? {} : { peers: Object.fromEntries(peerDirectory.ids.map((id) => [id, () => peerDirectory.check(id)])) }),
    ...(cluster === null ? {} : { replication: () => cluster.replication() }),
  };
  const { nameOf, uidOf } = userNames(users);
  const links = createLinkService({ store, engine, userByName: (name) => users.byName(name), secret: config.auth.single_use_link_secret, externalUrl: settings.externalUrl, metrics });
  const linkPurge = startLinkPurge({ store, intervalMs: config.links.purge_interval, logger });
  closers.push(() => linkPurge.stop());

  const uploads = store.uploads === undefined
    ? null
    : new UploadService({
        store: store.uploads,
        engine,
        userByUid: (uid) => users.byUid(uid),
        instanceId,
        dir: join(settings.dataDir, 'uploads'),
        locks,
        expireMs: config.uploads.expire_after,
        maxPerUser: config.uploads.max_per_user,
        maxUploadBytes: config.server.max_upload_bytes,
        logger: logger.child({ component: 'uploads' }),
      });
  uploads?.start(config.uploads.sweep_interval);
  closers.push(async () => uploads?.stop());
  const authenticate = (header: string | undefined) => users.authenticate(header);
  const peerOnly = requirePeer(config.auth.internal_proxy_secret);
  const ui = config.ui.enabled ? webUi({ root: UI_ROOT }) : null;
  if (ui !== null && !ui.built) logger.warn({ root: UI_ROOT }, 'ui.enabled, but the web UI is not built (npm run build): /ui/ answers 404');
  const cachedCasSpace = cachedFor(5000, () => casSpace(cas));
  const app = createApp({
    logger,
    metrics,
    authenticate,
    readiness,
    tls: tls !== null,
    mounts: [
      ...(config.webdav.enabled && store.dav !== undefined
        ? [webdav({ prefix: config.webdav.prefix, engine, dav: store.dav, nameOf, authenticate, quota: cachedCasSpace })]
        : []),
      ...(ui === null ? [] : [ui.middleware]),
    ],
    routers: (requireAuth) => [
      filesRoutes({ engine, nameOf, uidOf, requireAuth, externalUrl: settings.externalUrl }),
      directoriesRoutes({ engine, nameOf, requireAuth }),
      jobsRoutes({ engine, requireAuth }),
      adminRoutes({ cas, requireAuth }),
      clusterRoutes({ status: () => readClusterStatus(settings, store, { url: settings.externalUrl, space: cachedCasSpace }), requireAuth }),
      whoamiRoutes({ requireAuth }),
      linksRoutes({ links, requireAuth, generateRateLimit: config.links.generate_rate_limit, downloadRateLimit: config.links.download_rate_limit }),
      internalRoutes({ engine, requirePeer: peerOnly }),
      ...(uploads === null
        ? []
        : [uploadsRoutes({ uploads, ...(peerDirectory === undefined ? {} : { peers: peerDirectory }), requireAuth, requirePeer: peerOnly, maxUploadBytes: config.server.max_upload_bytes })]),
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

  let s3Port: number | null = null;
  const s3Addr = config.s3.listen_addr === '' ? null : parseListenAddr(config.s3.listen_addr);
  if (s3Addr !== null && store.s3 !== undefined) {
    const s3Options = {
      engine,
      store: store.s3,
      credentials: {
        lookup: (name: string) => {
          const user = users.byName(name);
          const keys = secrets.get(name);
          return user === undefined || keys === undefined ? null : { user, secrets: keys };
        },
      },
      region: config.s3.region,
      instanceId,
      partsDir: join(settings.dataDir, 's3-multipart'),
      maxUploadBytes: config.server.max_upload_bytes,
      logger: logger.child({ component: 's3' }),
    };
    const s3App = new Koa<RequestState>();
    s3App.proxy = false;
    s3App.silent = true;
    s3App.use(requestContext({ logger, metrics, tls: tls !== null }));
    s3App.use(s3Api(s3Options));
    const s3Server = createHttpServer({ app: s3App, tls, readTimeoutMs: config.server.read_timeout, writeTimeoutMs: config.server.write_timeout });
    s3Port = await listen(s3Server, s3Addr.host, s3Addr.port);
    closers.push(() => closeGracefully(s3Server, 0));
    if (config.uploads.sweep_interval > 0) {
      const sweep = setInterval(() => {
        s3Sweep(s3Options, config.uploads.expire_after).catch((err: unknown) => logger.warn({ err }, 's3: sweep of abandoned multipart uploads failed'));
      }, config.uploads.sweep_interval).unref();
      closers.push(async () => clearInterval(sweep));
    }
    logger.info({ port: s3Port }, 'S3-compatible API is listening');
  }

  if (cluster !== null) {
    await cluster.start();
    closers.push(() => cluster.stop());
  }
  if (trees !== undefined) {
    trees.start();
    closers.push(() => trees.stop());
  }
  if (casReplica !== null) {
    casReplica.start();
    closers.push(() => casReplica.stop());
  }

  const host = addr.host === '' || addr.host === '0.0.0.0' ? '127.0.0.1' : addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  const url = `${tls === null ? 'http' : 'https'}://${host}:${port}`;

  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    metricsPort,
    s3Port,
    metrics,
    store,
    cas,
    peers: peers ?? new Map(),
    cluster,
    casReplica,
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

/** `read`, called at most once per `ms`: the last answer is kept that long (a failure is not kept). */
function cachedFor<T>(ms: number, read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | null = null;
  return () => {
    if (last === null || Date.now() - last.at > ms) {
      const value = read();
      last = { at: Date.now(), value };
      value.catch(() => {
        last = null;
      });
    }
    return last.value;
  };
}
