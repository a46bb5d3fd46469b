import type { Settings } from '../lib/config/index.js';
import type { Logger } from '../lib/log/index.js';
import type { Metrics } from '../lib/metrics/index.js';
import type { MetadataStore } from '../lib/metadata/index.js';
import type { Backend } from '../lib/backends/types.js';
import type { CasBackend } from '../lib/backends/cas/types.js';
import { Membership } from '../lib/cluster/membership.js';
import { Repairer } from '../lib/cluster/repairer.js';
import type { ReplicationState } from '../lib/http/readiness.js';

/** Membership and the repairer of an instance that has peers (none without). */
export interface ClusterParts {
  membership: Membership;
  repairer: Repairer;
  /** /ready's replication state. */
  replication(): ReplicationState;
  /** Start heartbeats and the repairer, once this instance serves. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Used bytes of this instance's CAS images and free bytes of the host
 * filesystem under it: statfs only (what the free-space gauges read), every
 * heartbeat. Not images(), which also counts every blob file.
 */
export async function casSpace(cas: CasBackend): Promise<{ usedBytes: number; freeBytes: number }> {
  const space = await cas.space();
  return { usedBytes: space.images.reduce((sum, i) => sum + i.usedBytes, 0), freeBytes: space.host.freeBytes };
}

export function openCluster(
  settings: Settings,
  deps: { store: MetadataStore; cas: CasBackend; peers: ReadonlyMap<string, Backend> | undefined; logger: Logger; metrics: Metrics; replica?: Pick<Backend, 'open'> },
): ClusterParts | null {
  const { config } = settings;
  if (deps.peers === undefined || deps.peers.size === 0) return null;
  const instanceId = config.instance_discovery.instance_id;
  const instanceIds = [instanceId, ...deps.peers.keys()];
  const membership = new Membership({
    store: deps.store,
    instanceId,
    url: settings.externalUrl,
    instanceIds,
    replicas: config.backend.cas.replicas,
    minReplicas: config.backend.cas.min_replicas,
    heartbeatMs: config.cluster.heartbeat_interval,
    downAfterMs: config.cluster.down_after,
    lostAfterMs: config.cluster.lost_after,
    space: () => casSpace(deps.cas),
    logger: deps.logger,
    metrics: deps.metrics,
  });
  const repairer = new Repairer({
    store: deps.store,
    instanceId,
    view: membership,
    backendOf: (id) => (id === instanceId ? deps.cas : deps.peers?.get(id)),
    instanceIds,
    intervalMs: config.cluster.repair_interval,
    bytesPerSecond: config.cluster.repair_bytes_per_second,
    ...(deps.replica === undefined ? {} : { replica: deps.replica }),
    logger: deps.logger,
    metrics: deps.metrics,
  });
  return {
    membership,
    repairer,
    replication() {
      const taking = instanceIds.filter((id) => membership.takesCopies(id)).length;
      if (taking >= membership.replicas) return 'ok';
      return taking >= membership.minReplicas ? 'degraded' : 'read_only';
    },
    async start() {
      await membership.start();
      repairer.start();
    },
    async stop() {
      await repairer.stop();
      await membership.stop();
    },
  };
}
