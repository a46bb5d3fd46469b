import type { Settings } from '../config/index.js';
import type { InstanceRecord, MetadataStore } from '../metadata/index.js';

/**
 * The cluster as the shared metadata store records it (heartbeats, copies):
 * what `callfs cluster status` prints and `GET /v1/cluster/status` answers,
 * computed here once for both.
 */

export interface InstanceStatus {
  id: string;
  url: string;
  state: InstanceRecord['state'];
  up: boolean;
  lost: boolean;
  last_seen: string | null;
  /** What the instance's CAS images use on their filesystems (loop: ext4's own count; dir: the host filesystem's). */
  used_bytes: number;
  /** Free on the host filesystem under its CAS. */
  free_bytes: number;
  /** Copies it holds, and their bytes (the bar: what CallFS keeps there). */
  blobs: number;
  blob_bytes: number;
  /** Of its copies, those of contents with too few copies (the repairer's work to do). */
  under_replicated: number;
}

export interface ClusterStatus {
  replicas: number;
  min_replicas: number;
  under_replicated: number;
  instances: InstanceStatus[];
}

/** The instance that is answering, for the server's own view: it is up, and it can read its space now. */
export interface SelfReport {
  url: string;
  space: () => Promise<{ usedBytes: number; freeBytes: number }>;
}

/** Whether an instance's last heartbeat is recent enough (cluster.down_after) for it to count as up. */
export function isUp(settings: Settings, r: InstanceRecord): boolean {
  return r.state !== 'forgotten' && r.seenAgoMs !== null && r.seenAgoMs <= settings.config.cluster.down_after;
}

/** Whether an instance has been down longer than cluster.lost_after (never, when that is 0). */
export function isLost(settings: Settings, r: InstanceRecord): boolean {
  const lostAfter = settings.config.cluster.lost_after;
  return lostAfter > 0 && r.seenAgoMs !== null && r.seenAgoMs > lostAfter;
}

/**
 * Every instance the configuration names or the store has heard of, with
 * its state, space, copies and under-replicated copies. With `self`, an
 * instance that records no heartbeat of its own (one without peers: the
 * embedded store, or a single server) reports itself as up with its space
 * read now, instead of as never seen.
 */
export async function readClusterStatus(settings: Settings, store: Pick<MetadataStore, 'cluster'>, self?: SelfReport): Promise<ClusterStatus> {
  const { cas } = settings.config.backend;
  const selfId = settings.config.instance_discovery.instance_id;
  const records = await store.cluster.listInstances();
  const configured = [selfId, ...Object.keys(settings.config.instance_discovery.peer_endpoints)];
  const copies = await store.cluster.copiesPerInstance();
  const byId = new Map(records.map((r) => [r.id, r]));
  const selfSpace = self !== undefined && !byId.has(selfId) ? await self.space() : null;
  const ids = [...new Set([...configured, ...byId.keys()])].sort();
  const instances = ids.map((id): InstanceStatus => {
    const r = byId.get(id);
    const c = copies.get(id) ?? { blobs: 0, bytes: 0 };
    const live = id === selfId && self !== undefined && selfSpace !== null;
    return {
      id,
      url: r?.url || (live ? self.url : '') || settings.config.instance_discovery.peer_endpoints[id] || '',
      state: r?.state ?? 'active',
      up: live || (r !== undefined && isUp(settings, r)),
      lost: r !== undefined && isLost(settings, r),
      last_seen: live ? new Date().toISOString() : (r?.lastSeen?.toISOString() ?? null),
      used_bytes: live ? selfSpace.usedBytes : (r?.usedBytes ?? 0),
      free_bytes: live ? selfSpace.freeBytes : (r?.freeBytes ?? 0),
      blobs: c.blobs,
      blob_bytes: c.bytes,
      under_replicated: 0,
    };
  });
  const notCounting = instances.filter((i) => i.state !== 'active' || i.lost).map((i) => i.id);
  const under = await store.cluster.underReplicatedPerInstance(cas.replicas, notCounting);
  for (const i of instances) i.under_replicated = under.get(i.id) ?? 0;
  return {
    replicas: cas.replicas,
    min_replicas: cas.min_replicas === 0 ? cas.replicas : cas.min_replicas,
    under_replicated: await store.cluster.countUnderReplicated(cas.replicas, notCounting),
    instances,
  };
}
