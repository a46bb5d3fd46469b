import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { createOriginalMetrics } from './original.js';
import { teeCounter, teeHistogram } from './tee.js';

export { originalBackendType, originalHttpLabels } from './original.js';

/** Free space of the CAS, read at scrape time. */
export interface CasSpaceReading {
  /** The host filesystem under the CAS root. */
  host: { freeBytes: number; freeInodes: number };
  /** Each image (the host again for dir-mode images). */
  images: { id: string; usedBytes: number; freeBytes: number; freeInodes: number }[];
}

/**
 * Every metric CallFS exports, on a registry of its own (never prom-client's
 * global one), so that several servers in one process (tests) do not collide.
 * The original CallFS's names are served too (original.ts): the metrics of
 * ours that have a counterpart feed it from the same observation, and the
 * two it has alone (fileOperations, errors) are recorded here directly.
 */
export interface Metrics {
  registry: Registry;
  /** `path` and `status_code` repeat `route` and `status` the way the original labelled them (originalHttpLabels). */
  httpRequests: Counter<'method' | 'route' | 'status' | 'path' | 'status_code'>;
  httpDuration: Histogram<'method' | 'route' | 'path'>;
  backendOperations: Counter<'backend' | 'operation' | 'outcome'>;
  backendDuration: Histogram<'backend' | 'operation'>;
  metadataOperations: Counter<'operation' | 'outcome'>;
  metadataDuration: Histogram<'operation'>;
  metadataCache: Counter<'result'>;
  lockAcquisitions: Counter<'outcome'>;
  lockWait: Histogram;
  lockReleases: Counter<'outcome'>;
  lockReleaseDuration: Histogram;
  locksHeld: Gauge;
  casIntegrityErrors: Counter;
  casBlobsCollected: Counter;
  casBytesScrubbed: Counter;
  casWrittenBytes: Counter<'mode'>;
  casImages: Gauge<'state'>;
  replicatedWrites: Counter<'result'>;
  readFailovers: Counter;
  treeJobEntriesRemoved: Counter;
  underReplicatedBlobs: Gauge;
  repairedBlobs: Counter<'reason'>;
  repairedBytes: Counter<'reason'>;
  clusterInstances: Gauge<'state'>;
  replicaUploads: Counter<'result'>;
  linkGenerations: Counter;
  linkConsumptions: Counter<'status'>;
  proxyOperations: Counter<'peer' | 'operation' | 'outcome'>;
  proxyDuration: Histogram<'peer' | 'operation'>;
  /** callfs_file_operations_total: files created, read, updated, deleted (operation, backend_type as originalBackendType names it). */
  fileOperations: Counter<'operation' | 'backend_type'>;
  /** callfs_errors_total: failures by component and type. */
  errors: Counter<'component' | 'error_type'>;
  casImageFreeBytes: Gauge<'image'>;
  casImageFreeInodes: Gauge<'image'>;
  casHostFreeBytes: Gauge;
  casHostFreeInodes: Gauge;
  /** What the four CAS free-space gauges read when scraped; the open CAS sets it (null: no series). */
  casSpace: { read: (() => Promise<CasSpaceReading>) | null };
}

/**
 * The gauges' collect() callbacks all run during one scrape: they share one
 * reading (a few statfs calls) while it is in flight.
 */
function sharedReading(source: Metrics['casSpace']): () => Promise<CasSpaceReading | null> {
  let pending: Promise<CasSpaceReading | null> | null = null;
  return () => {
    pending ??= (source.read?.() ?? Promise.resolve(null))
      .catch(() => null)
      .finally(() => {
        pending = null;
      });
    return pending;
  };
}

const SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30];

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'callfs_process_' });
  const registers = [registry];
  const locksHeld = new Gauge({ name: 'callfs_locks_active', help: 'Locks currently held by this instance', registers });
  const { fileOperations, errors, feeds } = createOriginalMetrics(registers, locksHeld);
  const casSpace: Metrics['casSpace'] = { read: null };
  const readSpace = sharedReading(casSpace);
  // Without a reading (no CAS open, statfs failed) the last values stay: a 0 would read as "full".
  const perImage = (pick: (i: CasSpaceReading['images'][number]) => number) =>
    async function collect(this: Gauge<'image'>): Promise<void> {
      const reading = await readSpace();
      if (reading === null) return;
      // Retired images drop out of the series.
      this.reset();
      for (const image of reading.images) this.set({ image: image.id }, pick(image));
    };
  const ofHost = (pick: (h: CasSpaceReading['host']) => number) =>
    async function collect(this: Gauge): Promise<void> {
      const reading = await readSpace();
      if (reading !== null) this.set(pick(reading.host));
    };
  return {
    registry,
    httpRequests: new Counter({ name: 'callfs_http_requests_total', help: 'HTTP requests by method, route and status', labelNames: ['method', 'route', 'status', 'path', 'status_code'], registers }),
    httpDuration: new Histogram({ name: 'callfs_http_request_duration_seconds', help: 'HTTP request duration until the response is finished', labelNames: ['method', 'route', 'path'], buckets: SECONDS, registers }),
    backendOperations: teeCounter(new Counter({ name: 'callfs_backend_operations_total', help: 'Backend operations by backend, operation and outcome', labelNames: ['backend', 'operation', 'outcome'], registers }), feeds.backendOperations),
    backendDuration: teeHistogram(new Histogram({ name: 'callfs_backend_operation_duration_seconds', help: 'Backend operation duration', labelNames: ['backend', 'operation'], buckets: SECONDS, registers }), feeds.backendDuration),
    metadataOperations: teeCounter(new Counter({ name: 'callfs_metadata_operations_total', help: 'Metadata store operations by operation and outcome', labelNames: ['operation', 'outcome'], registers }), feeds.metadataOperations),
    metadataDuration: teeHistogram(new Histogram({ name: 'callfs_metadata_operation_duration_seconds', help: 'Metadata store operation duration (a listing: until it is read to the end)', labelNames: ['operation'], buckets: SECONDS, registers }), feeds.metadataDuration),
    metadataCache: new Counter({ name: 'callfs_metadata_cache_total', help: 'Metadata cache lookups by result (hit, miss, bypass)', labelNames: ['result'], registers }),
    lockAcquisitions: teeCounter(new Counter({ name: 'callfs_lock_acquisitions_total', help: 'Lock acquisitions by outcome (ok, timeout, error, aborted, lost)', labelNames: ['outcome'], registers }), feeds.lockAcquisitions),
    lockWait: teeHistogram(new Histogram({ name: 'callfs_lock_wait_seconds', help: 'Time spent waiting for locks', buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers }), feeds.lockWait),
    lockReleases: teeCounter(new Counter({ name: 'callfs_lock_releases_total', help: 'Lock releases by outcome (ok, error, lost)', labelNames: ['outcome'], registers }), feeds.lockReleases),
    lockReleaseDuration: teeHistogram(new Histogram({ name: 'callfs_lock_release_seconds', help: 'Time spent releasing locks', buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers }), feeds.lockReleaseDuration),
    locksHeld,
    casIntegrityErrors: teeCounter(new Counter({ name: 'callfs_cas_integrity_errors_total', help: 'CAS blobs whose bytes no longer match their sha256', registers }), feeds.casIntegrityErrors),
    casBlobsCollected: new Counter({ name: 'callfs_cas_blobs_collected_total', help: 'Unreferenced CAS blobs removed by the collector', registers }),
    casBytesScrubbed: new Counter({ name: 'callfs_cas_scrubbed_bytes_total', help: 'Bytes re-verified by the CAS scrubber', registers }),
    casWrittenBytes: new Counter({ name: 'callfs_cas_written_bytes_total', help: 'Bytes written into CAS temp files: "direct" around the page cache (O_DIRECT), "buffered" through it', labelNames: ['mode'], registers }),
    casImages: new Gauge({ name: 'callfs_cas_images', help: 'CAS images by state', labelNames: ['state'], registers }),
    replicatedWrites: new Counter({ name: 'callfs_replicated_writes_total', help: 'CAS writes by how many copies they were acknowledged with: "full" (backend.cas.replicas), "degraded" (fewer, at least min_replicas), "refused" (503)', labelNames: ['result'], registers }),
    readFailovers: new Counter({ name: 'callfs_read_failovers_total', help: 'Reads served by another copy after the first one failed or was down', registers }),
    treeJobEntriesRemoved: new Counter({ name: 'callfs_tree_job_entries_removed_total', help: 'Entries removed by the batches of tree jobs (recursive deletes of big directories)', registers }),
    underReplicatedBlobs: new Gauge({ name: 'callfs_under_replicated_blobs', help: 'Referenced CAS blobs with fewer good copies than backend.cas.replicas on instances that count (as of the repairer\'s last pass; on the repairing instance)', registers }),
    repairedBlobs: new Counter({ name: 'callfs_repaired_blobs_total', help: 'Blob copies made by the repairer (repair, drain)', labelNames: ['reason'], registers }),
    repairedBytes: new Counter({ name: 'callfs_repaired_bytes_total', help: 'Bytes copied by the repairer (repair, drain)', labelNames: ['reason'], registers }),
    replicaUploads: new Counter({ name: 'callfs_s3_replica_uploads_total', help: 'Blobs copied to the S3 replica (ha.replication_enabled) by result: uploaded, present (already in the bucket), failed', labelNames: ['result'], registers }),
    clusterInstances: new Gauge({ name: 'callfs_cluster_instances', help: 'Instances of the cluster as this one sees them: up, down, lost, draining, forgotten', labelNames: ['state'], registers }),
    linkGenerations: new Counter({ name: 'callfs_single_use_link_generations_total', help: 'Single-use links generated', registers }),
    linkConsumptions: new Counter({ name: 'callfs_single_use_link_consumptions_total', help: 'Single-use link downloads by status', labelNames: ['status'], registers }),
    proxyOperations: teeCounter(new Counter({ name: 'callfs_proxy_operations_total', help: 'Requests proxied to peers by peer, operation and outcome', labelNames: ['peer', 'operation', 'outcome'], registers }), feeds.proxyOperations),
    proxyDuration: teeHistogram(new Histogram({ name: 'callfs_proxy_operation_duration_seconds', help: 'Time until a peer answered a proxied request (its headers) or failed', labelNames: ['peer', 'operation'], buckets: SECONDS, registers }), feeds.proxyDuration),
    fileOperations,
    errors,
    casImageFreeBytes: new Gauge({ name: 'callfs_cas_image_free_bytes', help: 'Bytes free in each CAS image (statfs at scrape time)', labelNames: ['image'], registers, collect: perImage((i) => i.freeBytes) }),
    casImageFreeInodes: new Gauge({ name: 'callfs_cas_image_free_inodes', help: 'Inodes free in each CAS image (statfs at scrape time)', labelNames: ['image'], registers, collect: perImage((i) => i.freeInodes) }),
    casHostFreeBytes: new Gauge({ name: 'callfs_cas_host_free_bytes', help: 'Bytes free to the CAS on the host filesystem under its root (statfs at scrape time)', registers, collect: ofHost((h) => h.freeBytes) }),
    casHostFreeInodes: new Gauge({ name: 'callfs_cas_host_free_inodes', help: 'Inodes free on the host filesystem under the CAS root (statfs at scrape time)', registers, collect: ofHost((h) => h.freeInodes) }),
    casSpace,
  };
}
