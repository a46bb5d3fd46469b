import { Counter, Gauge, Histogram, type LabelValues, type Registry } from 'prom-client';
import type { Tee } from './tee.js';

/*
 * The metric names of the original CallFS, served beside ours so that its
 * dashboards and alerts keep working: its names, its label names, and the
 * label values its code and monitoring page use. Nothing here observes
 * anything: each metric is fed by the observation point of one of ours (the
 * tees below, wired in index.ts) or is itself the metric a call site records.
 * What this module owns is the translation of our label values into the
 * original's.
 */

/** Our backend types, and the peer proxy, as the original named its backends. */
const BACKEND_TYPE: Readonly<Record<string, string>> = { cas: 'localfs', s3: 's3', proxy: 'internalproxy' };

/** `backend_type` of a backend type of ours (cas → localfs, s3 → s3). */
export function originalBackendType(backend: string): string {
  return BACKEND_TYPE[backend] ?? backend;
}

/** A put always stores new bytes (create); the proxy reads (open) and writes (update) files another instance holds. */
const BACKEND_OPERATION: Readonly<Record<string, string>> = { put: 'create', read: 'open', 'read-range': 'open', write: 'update' };

const METADATA_OPERATION: Readonly<Record<string, string>> = {
  get: 'get_metadata',
  getChain: 'get_metadata',
  create: 'create_metadata',
  createIfUnchanged: 'create_metadata',
  update: 'update_metadata',
  updateIfUnchanged: 'update_metadata',
  move: 'move_metadata',
  delete: 'delete_metadata',
  listChildren: 'list_directory',
  listRecursive: 'list_directory',
  createLink: 'create_link',
  getLink: 'get_link',
  consumeLink: 'update_link',
};

/** The original's query name of a metadata store operation; others in its style (recordBlob → record_blob). */
export function originalMetadataOperation(operation: string): string {
  return METADATA_OPERATION[operation] ?? operation.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Route labels as the original's router named its patterns (the rest are the same). */
const HTTP_PATH: Readonly<Record<string, string>> = {
  '/v1/files': '/v1/files/*',
  '/v1/directories': '/v1/directories/*',
  '/download': '/download/{token}',
  other: 'unmatched',
};

/** The `path` and `status_code` labels of callfs_http_requests_total for a route label and a status. */
export function originalHttpLabels(route: string, status: number): { path: string; status_code: string } {
  return { path: HTTP_PATH[route] ?? route, status_code: String(status) };
}

/** Metrics the original defined that have no counterpart of ours; call sites record them directly. */
export interface OriginalOnlyMetrics {
  fileOperations: Counter<'operation' | 'backend_type'>;
  errors: Counter<'component' | 'error_type'>;
}

/** Where our observations enter the original's metrics: one tee per metric of ours that has a counterpart. */
export interface OriginalFeeds {
  backendOperations: Tee<'backend' | 'operation' | 'outcome'>;
  backendDuration: Tee<'backend' | 'operation'>;
  proxyOperations: Tee<'peer' | 'operation' | 'outcome'>;
  proxyDuration: Tee<'peer' | 'operation'>;
  casIntegrityErrors: Tee<string>;
  metadataOperations: Tee<'operation' | 'outcome'>;
  metadataDuration: Tee<'operation'>;
  lockAcquisitions: Tee<'outcome'>;
  lockWait: Tee<string>;
  lockReleases: Tee<'outcome'>;
  lockReleaseDuration: Tee<string>;
}

const text = (labels: LabelValues<string>, name: string): string => String(labels[name] ?? '');

/** Backend outcomes that are not failures (a deduplicated put stored nothing new, and needed nothing more). */
const BACKEND_SUCCESS: ReadonlySet<string> = new Set(['ok', 'dedup']);
/** The peers' /ready probes go through the proxy but are not operations on a file. */
const PROBE = 'health';

/**
 * Register the original's metrics on `registers` and return the ones call
 * sites record plus the feeds for ours. `locksHeld` is read when scraped:
 * callfs_active_locks is the same reading under the original's name.
 */
export function createOriginalMetrics(registers: Registry[], locksHeld: Gauge): OriginalOnlyMetrics & { feeds: OriginalFeeds } {
  const fileOperations = new Counter({ name: 'callfs_file_operations_total', help: 'Files created, read, updated and deleted, by the backend holding their bytes (localfs: this instance\'s CAS)', labelNames: ['operation', 'backend_type'], registers });
  const errors = new Counter({ name: 'callfs_errors_total', help: 'Failures by component (http, backend, metadata, lock_manager) and type (an API error code, or the failing outcome)', labelNames: ['component', 'error_type'], registers });
  const backendOps = new Counter({ name: 'callfs_backend_ops_total', help: 'Backend operations by backend type (localfs, s3, internalproxy) and operation', labelNames: ['backend_type', 'operation'], registers });
  const backendOpDuration = new Histogram({ name: 'callfs_backend_op_duration_seconds', help: 'Backend operation duration by backend type and operation', labelNames: ['backend_type', 'operation'], registers });
  const metadataQueries = new Counter({ name: 'callfs_metadata_db_queries_total', help: 'Metadata store operations by operation', labelNames: ['operation'], registers });
  const metadataQueryDuration = new Histogram({ name: 'callfs_metadata_db_query_duration_seconds', help: 'Metadata store operation duration by operation', labelNames: ['operation'], registers });
  const lockOperations = new Counter({ name: 'callfs_lock_operations_total', help: 'Lock acquisitions and releases by status (success, failure)', labelNames: ['operation', 'status'], registers });
  const lockOperationDuration = new Histogram({ name: 'callfs_lock_operation_duration_seconds', help: 'Time to acquire (waiting included) and to release locks', labelNames: ['operation'], registers });
  new Gauge({
    name: 'callfs_active_locks',
    help: 'Locks currently held by this instance',
    registers,
    async collect() {
      this.set((await locksHeld.get()).values[0]?.value ?? 0);
    },
  });

  const backendOp = (backendType: string, operation: string, value: number): void => {
    backendOps.inc({ backend_type: backendType, operation: BACKEND_OPERATION[operation] ?? operation }, value);
  };
  const backendFailure = (outcome: string, value: number): void => errors.inc({ component: 'backend', error_type: outcome }, value);

  const feeds: OriginalFeeds = {
    backendOperations(labels, value) {
      const outcome = text(labels, 'outcome');
      // An integrity error is reported after its open was counted: a failure, not another operation.
      if (outcome !== 'integrity_error') backendOp(originalBackendType(text(labels, 'backend')), text(labels, 'operation'), value);
      if (!BACKEND_SUCCESS.has(outcome)) backendFailure(outcome, value);
    },
    backendDuration(labels, seconds) {
      const operation = text(labels, 'operation');
      backendOpDuration.observe({ backend_type: originalBackendType(text(labels, 'backend')), operation: BACKEND_OPERATION[operation] ?? operation }, seconds);
    },
    proxyOperations(labels, value) {
      const operation = text(labels, 'operation');
      if (operation === PROBE) return;
      backendOp(BACKEND_TYPE.proxy as string, operation, value);
      const outcome = text(labels, 'outcome');
      if (outcome !== 'ok') backendFailure(outcome, value);
    },
    proxyDuration(labels, seconds) {
      const operation = text(labels, 'operation');
      if (operation === PROBE) return;
      backendOpDuration.observe({ backend_type: BACKEND_TYPE.proxy as string, operation: BACKEND_OPERATION[operation] ?? operation }, seconds);
    },
    casIntegrityErrors(_labels, value) {
      backendFailure('integrity_error', value);
    },
    metadataOperations(labels, value) {
      metadataQueries.inc({ operation: originalMetadataOperation(text(labels, 'operation')) }, value);
      const outcome = text(labels, 'outcome');
      // 'aborted': the caller gave up; the store did not fail.
      if (outcome !== 'ok' && outcome !== 'aborted') errors.inc({ component: 'metadata', error_type: outcome }, value);
    },
    metadataDuration(labels, seconds) {
      metadataQueryDuration.observe({ operation: originalMetadataOperation(text(labels, 'operation')) }, seconds);
    },
    lockAcquisitions(labels, value) {
      const outcome = text(labels, 'outcome');
      // A lock lost while held was acquired (and counted) before; it is a failure of the lock service.
      if (outcome !== 'lost') lockOperations.inc({ operation: 'acquire', status: outcome === 'ok' ? 'success' : 'failure' }, value);
      if (outcome === 'timeout' || outcome === 'error' || outcome === 'lost') errors.inc({ component: 'lock_manager', error_type: outcome }, value);
    },
    lockWait(_labels, seconds) {
      lockOperationDuration.observe({ operation: 'acquire' }, seconds);
    },
    lockReleases(labels, value) {
      const outcome = text(labels, 'outcome');
      lockOperations.inc({ operation: 'release', status: outcome === 'ok' ? 'success' : 'failure' }, value);
      if (outcome === 'error') errors.inc({ component: 'lock_manager', error_type: 'release_error' }, value);
    },
    lockReleaseDuration(_labels, seconds) {
      lockOperationDuration.observe({ operation: 'release' }, seconds);
    },
  };
  return { fileOperations, errors, feeds };
}
