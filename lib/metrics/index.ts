import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Free space of the CAS, read at scrape time. */
export interface CasSpaceReading {
  /** The host filesystem under the CAS root. */
  host: { freeBytes: number; freeInodes: number };
  /** Each image (the host again for dir-mode images). */
  images: { id: string; freeBytes: number; freeInodes: number }[];
}

/**
 * Every metric CallFS exports, on a registry of its own (never prom-client's
 * global one), so that several servers in one process (tests) do not collide.
 */
export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  backendOperations: Counter<'backend' | 'operation' | 'outcome'>;
  backendDuration: Histogram<'backend' | 'operation'>;
  metadataOperations: Counter<'operation' | 'outcome'>;
  metadataCache: Counter<'result'>;
  lockAcquisitions: Counter<'outcome'>;
  lockWait: Histogram;
  locksHeld: Gauge;
  casIntegrityErrors: Counter;
  casBlobsCollected: Counter;
  casBytesScrubbed: Counter;
  casWrittenBytes: Counter<'mode'>;
  casImages: Gauge<'state'>;
  linkGenerations: Counter;
  linkConsumptions: Counter<'status'>;
  proxyOperations: Counter<'peer' | 'operation' | 'outcome'>;
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

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'callfs_process_' });
  const registers = [registry];
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
    httpRequests: new Counter({ name: 'callfs_http_requests_total', help: 'HTTP requests by method, route and status', labelNames: ['method', 'route', 'status'], registers }),
    httpDuration: new Histogram({ name: 'callfs_http_request_duration_seconds', help: 'HTTP request duration until the response is finished', labelNames: ['method', 'route'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30], registers }),
    backendOperations: new Counter({ name: 'callfs_backend_operations_total', help: 'Backend operations by backend, operation and outcome', labelNames: ['backend', 'operation', 'outcome'], registers }),
    backendDuration: new Histogram({ name: 'callfs_backend_operation_duration_seconds', help: 'Backend operation duration', labelNames: ['backend', 'operation'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30], registers }),
    metadataOperations: new Counter({ name: 'callfs_metadata_operations_total', help: 'Metadata store operations by operation and outcome', labelNames: ['operation', 'outcome'], registers }),
    metadataCache: new Counter({ name: 'callfs_metadata_cache_total', help: 'Metadata cache lookups by result (hit, miss, bypass)', labelNames: ['result'], registers }),
    lockAcquisitions: new Counter({ name: 'callfs_lock_acquisitions_total', help: 'Lock acquisitions by outcome (ok, timeout, error, lost)', labelNames: ['outcome'], registers }),
    lockWait: new Histogram({ name: 'callfs_lock_wait_seconds', help: 'Time spent waiting for locks', buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers }),
    locksHeld: new Gauge({ name: 'callfs_locks_active', help: 'Locks currently held by this instance', registers }),
    casIntegrityErrors: new Counter({ name: 'callfs_cas_integrity_errors_total', help: 'CAS blobs whose bytes no longer match their sha256', registers }),
    casBlobsCollected: new Counter({ name: 'callfs_cas_blobs_collected_total', help: 'Unreferenced CAS blobs removed by the collector', registers }),
    casBytesScrubbed: new Counter({ name: 'callfs_cas_scrubbed_bytes_total', help: 'Bytes re-verified by the CAS scrubber', registers }),
    casWrittenBytes: new Counter({ name: 'callfs_cas_written_bytes_total', help: 'Bytes written into CAS temp files: "direct" around the page cache (O_DIRECT), "buffered" through it', labelNames: ['mode'], registers }),
    casImages: new Gauge({ name: 'callfs_cas_images', help: 'CAS images by state', labelNames: ['state'], registers }),
    linkGenerations: new Counter({ name: 'callfs_single_use_link_generations_total', help: 'Single-use links generated', registers }),
    linkConsumptions: new Counter({ name: 'callfs_single_use_link_consumptions_total', help: 'Single-use link downloads by status', labelNames: ['status'], registers }),
    proxyOperations: new Counter({ name: 'callfs_proxy_operations_total', help: 'Requests proxied to peers by peer, operation and outcome', labelNames: ['peer', 'operation', 'outcome'], registers }),
    casImageFreeBytes: new Gauge({ name: 'callfs_cas_image_free_bytes', help: 'Bytes free in each CAS image (statfs at scrape time)', labelNames: ['image'], registers, collect: perImage((i) => i.freeBytes) }),
    casImageFreeInodes: new Gauge({ name: 'callfs_cas_image_free_inodes', help: 'Inodes free in each CAS image (statfs at scrape time)', labelNames: ['image'], registers, collect: perImage((i) => i.freeInodes) }),
    casHostFreeBytes: new Gauge({ name: 'callfs_cas_host_free_bytes', help: 'Bytes free to the CAS on the host filesystem under its root (statfs at scrape time)', registers, collect: ofHost((h) => h.freeBytes) }),
    casHostFreeInodes: new Gauge({ name: 'callfs_cas_host_free_inodes', help: 'Inodes free on the host filesystem under the CAS root (statfs at scrape time)', registers, collect: ofHost((h) => h.freeInodes) }),
    casSpace,
  };
}
