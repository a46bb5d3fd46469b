import { expect } from 'chai';
import { createMetrics, type Metrics } from '../../lib/metrics/index.js';
import { parseScrape, type Scrape } from '../support/prometheus.js';

/** The original's names as our observations feed them (no server: the branches a server rarely takes). */
describe('metrics: the original CallFS names fed from ours', () => {
  let metrics: Metrics;
  const read = async (): Promise<Scrape> => parseScrape(await metrics.registry.metrics());

  beforeEach(() => {
    metrics = createMetrics({ defaultMetrics: false });
  });

  it('names backends and operations as the original did, and counts failures as backend errors', async () => {
    metrics.backendOperations.inc({ backend: 'cas', operation: 'put', outcome: 'dedup' });
    metrics.backendOperations.inc({ backend: 's3', operation: 'stat', outcome: 'not_found' });
    metrics.backendOperations.inc({ backend: 's3', operation: 'open', outcome: 'integrity_error' });
    metrics.backendDuration.startTimer({ backend: 's3', operation: 'put' })();
    metrics.casIntegrityErrors.inc();
    const s = await read();
    expect(s.value('callfs_backend_ops_total', { backend_type: 'localfs', operation: 'create' })).to.equal(1);
    expect(s.value('callfs_backend_ops_total', { backend_type: 's3', operation: 'stat' })).to.equal(1);
    // The integrity error of an open already counted is a failure, not a second open.
    expect(s.value('callfs_backend_ops_total', { operation: 'open' })).to.equal(0);
    expect(s.value('callfs_backend_op_duration_seconds_count', { backend_type: 's3', operation: 'create' })).to.equal(1);
    expect(s.value('callfs_errors_total', { component: 'backend', error_type: 'not_found' })).to.equal(1);
    expect(s.value('callfs_errors_total', { component: 'backend', error_type: 'integrity_error' })).to.equal(2);
    expect(s.value('callfs_errors_total', { error_type: 'dedup' })).to.equal(0);
  });

  it('counts proxied requests as internalproxy operations, leaving out the peers\' readiness probes', async () => {
    metrics.proxyOperations.inc({ peer: 'b', operation: 'read-range', outcome: 'ok' });
    metrics.proxyOperations.inc({ peer: 'b', operation: 'write', outcome: 'unreachable' });
    metrics.proxyOperations.inc({ peer: 'b', operation: 'health', outcome: 'unreachable' });
    metrics.proxyDuration.observe({ peer: 'b', operation: 'health' }, 0.1);
    const s = await read();
    expect(s.value('callfs_backend_ops_total', { backend_type: 'internalproxy', operation: 'open' })).to.equal(1);
    expect(s.value('callfs_backend_ops_total', { backend_type: 'internalproxy', operation: 'update' })).to.equal(1);
    expect(s.value('callfs_backend_ops_total', { backend_type: 'internalproxy' })).to.equal(2);
    expect(s.value('callfs_backend_op_duration_seconds_count')).to.equal(0);
    expect(s.value('callfs_errors_total', { component: 'backend', error_type: 'unreachable' })).to.equal(1);
  });

  it('maps metadata operations to the original query names; a caller giving up is no store error', async () => {
    metrics.metadataOperations.inc({ operation: 'getChain', outcome: 'ok' });
    metrics.metadataOperations.inc({ operation: 'listCollectableBlobs', outcome: 'service_unavailable' });
    metrics.metadataOperations.inc({ operation: 'transaction', outcome: 'aborted' });
    metrics.metadataDuration.observe({ operation: 'consumeLink' }, 0.01);
    const s = await read();
    expect(s.value('callfs_metadata_db_queries_total', { operation: 'get_metadata' })).to.equal(1);
    expect(s.value('callfs_metadata_db_queries_total', { operation: 'list_collectable_blobs' })).to.equal(1);
    expect(s.value('callfs_metadata_db_query_duration_seconds_count', { operation: 'update_link' })).to.equal(1);
    expect(s.value('callfs_errors_total', { component: 'metadata' })).to.equal(1);
    expect(s.value('callfs_errors_total', { component: 'metadata', error_type: 'service_unavailable' })).to.equal(1);
  });

  it('reports lock acquisitions and releases by status, and the locks held as callfs_active_locks', async () => {
    metrics.lockAcquisitions.inc({ outcome: 'ok' });
    metrics.lockAcquisitions.inc({ outcome: 'timeout' });
    metrics.lockAcquisitions.inc({ outcome: 'aborted' });
    metrics.lockAcquisitions.inc({ outcome: 'lost' });
    metrics.lockReleases.inc({ outcome: 'lost' });
    metrics.lockReleases.inc({ outcome: 'error' });
    metrics.lockWait.observe(0.2);
    metrics.locksHeld.inc(2);
    metrics.locksHeld.inc(-1);
    const s = await read();
    expect(s.value('callfs_lock_operations_total', { operation: 'acquire', status: 'success' })).to.equal(1);
    expect(s.value('callfs_lock_operations_total', { operation: 'acquire', status: 'failure' })).to.equal(2);
    expect(s.value('callfs_lock_operations_total', { operation: 'release', status: 'failure' })).to.equal(2);
    expect(s.value('callfs_lock_operation_duration_seconds_count', { operation: 'acquire' })).to.equal(1);
    expect(s.value('callfs_active_locks')).to.equal(1);
    expect(s.value('callfs_errors_total', { component: 'lock_manager' })).to.equal(3);
    expect(s.value('callfs_errors_total', { component: 'lock_manager', error_type: 'aborted' })).to.equal(0);
  });
});
