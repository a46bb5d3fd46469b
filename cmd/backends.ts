import type { Settings } from '../lib/config/index.js';
import { CallfsError } from '../lib/errors.js';
import type { Logger } from '../lib/log/index.js';
import type { MetadataStore } from '../lib/metadata/index.js';
import type { Metrics } from '../lib/metrics/index.js';
import type { Backend } from '../lib/backends/types.js';
import type { BackendType } from '../lib/backends/registry.js';
import { casOptionsFromSettings, createCasBackend, resolveCasMode } from '../lib/backends/cas/index.js';
import type { CasBackend } from '../lib/backends/cas/types.js';
import { createS3Backend, s3OptionsFromConfig } from '../lib/backends/s3/index.js';
import type { S3Backend } from '../lib/backends/s3/types.js';
import { REPLICA_SEGMENT } from '../lib/cluster/s3-replica.js';
import { createPeerDirectory, type PeerDirectory } from '../lib/backends/proxy/peers.js';
import { createPeerBackend } from '../lib/backends/proxy/peer-backend.js';

/** The backends of this instance, built from the settings, and the other instances as backends. */
export interface OpenedBackends {
  /** This instance's backends by type (lib/backends/registry.ts). */
  backends: Partial<Record<BackendType, Backend>>;
  /** The CAS, always there (its admin routes and jobs). */
  cas: CasBackend;
  /** The other instances of the cluster, each as a Backend over its instance-local blobs; absent without peers. */
  peers?: ReadonlyMap<string, Backend>;
  /** The connections to the peers (readiness checks); absent without peers. */
  peerDirectory?: PeerDirectory;
  /** The S3 replica's key space in the bucket (ha.replication_enabled); absent otherwise. */
  replicaBucket?: S3Backend;
  /** Close everything opened, in reverse order. */
  closers: (() => Promise<void>)[];
}

/**
 * The idle timeout of connections to peers: below this server's own (the
 * shorter of the read and write timeouts), so that a stalled peer is given up,
 * and the client told, before the client's connection is cut for idling.
 */
export function peerIdleTimeoutMs(readTimeoutMs: number, writeTimeoutMs: number): number {
  return Math.max(1000, Math.floor((Math.min(readTimeoutMs, writeTimeoutMs) * 3) / 4));
}

/**
 * Build every backend the settings configure: the CAS (always), S3 (when a
 * bucket is set), and a peer backend per other instance. Adding a backend
 * type means a line here (its construction from its config keys), its
 * implementation, and its line in the registry (docs_markdown/08-developer-guide.md).
 */
export async function openBackends(settings: Settings, deps: { store: MetadataStore; logger: Logger; metrics: Metrics }): Promise<OpenedBackends> {
  const { config } = settings;
  const { logger, metrics } = deps;
  const closers: (() => Promise<void>)[] = [];
  try {
    const casMode = await resolveCasMode(config.backend.cas.mode);
    if (casMode.problem !== null) throw new CallfsError('SERVICE_UNAVAILABLE', `backend.cas.mode is loop, but ${casMode.problem}`, { component: 'cas' });
    logger.info({ mode: casMode.mode, reason: casMode.reason, root: settings.casRoot }, 'CAS mode');
    const cas = await createCasBackend(casOptionsFromSettings(settings, { index: deps.store, logger, metrics, mode: casMode.mode }));
    closers.push(() => cas.close());
    const backends: Partial<Record<BackendType, Backend>> = { cas };

    const s3Options = s3OptionsFromConfig(config.backend, { logger, metrics });
    let replicaBucket: S3Backend | undefined;
    if (s3Options !== null) {
      const s3 = createS3Backend({ ...s3Options, reservedSegment: REPLICA_SEGMENT });
      closers.push(() => s3.close());
      backends.s3 = s3;
      logger.info({ bucket: s3.bucket, prefix: s3.prefix, endpoint: config.backend.s3_endpoint || 'AWS' }, 'S3 backend');
      if (config.ha.replication_enabled) {
        // The same bucket, its own key space: <s3_prefix>.callfs-cas/<sha256>.
        const replica = createS3Backend({ ...s3Options, prefix: `${s3.prefix}${REPLICA_SEGMENT}` });
        closers.push(() => replica.close());
        replicaBucket = replica;
        logger.info({ bucket: replica.bucket, prefix: replica.prefix, synchronous: config.ha.require_replica_success }, 'S3 replica of the CAS');
      }
    }

    const instanceId = config.instance_discovery.instance_id;
    const replica = replicaBucket === undefined ? {} : { replicaBucket };
    if (!Object.keys(config.instance_discovery.peer_endpoints).some((id) => id !== instanceId)) return { backends, cas, closers, ...replica };
    const peerDirectory = createPeerDirectory({
      selfId: instanceId,
      endpoints: config.instance_discovery.peer_endpoints,
      secret: config.auth.internal_proxy_secret,
      caFile: config.backend.internal_proxy_ca_file,
      skipTlsVerify: config.backend.internal_proxy_skip_tls_verify,
      firstByteTimeoutMs: config.instance_discovery.peer_timeout,
      writeGraceMs: config.locks.wait_timeout,
      idleTimeoutMs: peerIdleTimeoutMs(config.server.read_timeout, config.server.write_timeout),
      logger,
      metrics,
    });
    closers.push(async () => peerDirectory.close());
    const peers = new Map(peerDirectory.ids.map((peerId) => [peerId, createPeerBackend({ peers: peerDirectory, peerId, type: 'cas' })]));
    return { backends, cas, peers, peerDirectory, closers, ...replica };
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw err;
  }
}
