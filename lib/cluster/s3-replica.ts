import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend, OpenOptions, OpenResult } from '../backends/types.js';
import { CallfsError, isCallfsError } from '../errors.js';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import type { MetadataStore } from '../metadata/types.js';
import { repeatEvery, type Repeating } from './repeat.js';

/**
 * The original CallFS's `ha.*` replication: every CAS blob also goes to the
 * S3 bucket, under a content-addressed key (`<s3_prefix>.callfs-cas/<sha256>`,
 * a name the S3 backend refuses for files). With `ha.require_replica_success`
 * the copy is made before the PUT is acknowledged (read back from the CAS that
 * stored it, then uploaded); without, the blob is queued in the metadata
 * store's outbox before the acknowledgement and each instance uploads its own
 * queued blobs in the background, retrying after failures and restarts. When
 * no instance copy of a blob can be read, reads come from the bucket.
 */

/** The first path segment under which the replica's objects live in the S3 backend's key space. */
export const REPLICA_SEGMENT = '.callfs-cas';

/** What the engine asks of the S3 replica. */
export interface CasReplica {
  /** Make (sync) or queue (async) the bucket's copy of a blob just stored on `instanceId`, read through `from`. */
  write(sha256: string, instanceId: string, from: Backend, signal?: AbortSignal): Promise<void>;
  /** The blob from the bucket (FILE_NOT_FOUND when it is not there). */
  open(sha256: string, options?: OpenOptions): Promise<OpenResult>;
}

export interface S3ReplicaOptions {
  store: Pick<MetadataStore, 'cluster'>;
  instanceId: string;
  /** This instance's CAS: where queued blobs are read from. */
  local: Backend;
  /** An S3 backend whose key space is the replica's (its prefix ends in REPLICA_SEGMENT). */
  bucket: Backend & { keyOf(path: string): string };
  requireSuccess: boolean;
  /** Pause between outbox passes. */
  intervalMs: number;
  logger: Logger;
  metrics?: Pick<Metrics, 'replicaUploads'>;
}

const BATCH = 32;
const MAX_RETRY_MS = 5 * 60_000;

export class S3Replica implements CasReplica {
  private loop: Repeating | null = null;
  private readonly stopping = new AbortController();
  private running: Promise<number> | null = null;

  constructor(private readonly options: S3ReplicaOptions) {}

  private keyOf(sha256: string): string {
    return this.options.bucket.keyOf(`/${sha256}`);
  }

  /** Upload one blob read through `from`, unless the bucket has it already. */
  async upload(sha256: string, from: Backend, signal?: AbortSignal): Promise<void> {
    const key = this.keyOf(sha256);
    const callSignal = signal === undefined ? {} : { signal };
    if ((await this.options.bucket.stat(key, callSignal)) !== null) {
      this.options.metrics?.replicaUploads.inc({ result: 'present' });
      return;
    }
    const opened = await from.open(sha256, { sha256, ...callSignal });
    const stored = await this.options.bucket.put(opened.stream, { key: `/${sha256}`, ...callSignal });
    if (stored.sha256 !== sha256) {
      await this.options.bucket.delete(key).catch(() => undefined);
      throw new CallfsError('INTEGRITY_ERROR', `the S3 replica of ${sha256} does not match it`);
    }
    this.options.metrics?.replicaUploads.inc({ result: 'uploaded' });
  }

  async write(sha256: string, instanceId: string, from: Backend, signal?: AbortSignal): Promise<void> {
    if (!this.options.requireSuccess) {
      await this.options.store.cluster.enqueueReplica(instanceId, sha256);
      return;
    }
    try {
      await this.upload(sha256, from, signal);
    } catch (err) {
      this.options.metrics?.replicaUploads.inc({ result: 'failed' });
      if (signal?.aborted === true) throw err;
      this.options.logger.warn({ err, sha256 }, 'the S3 replica could not be written');
      throw new CallfsError('SERVICE_UNAVAILABLE', 'the S3 replica could not be written', { retryAfterSeconds: 10, component: 's3', cause: err });
    }
  }

  open(sha256: string, options: OpenOptions = {}): Promise<OpenResult> {
    return this.options.bucket.open(this.keyOf(sha256), { ...options, sha256 });
  }

  /** Work through this instance's queued blobs every interval. */
  start(): void {
    if (this.options.requireSuccess || this.options.intervalMs <= 0) return;
    this.loop = repeatEvery(this.options.intervalMs, () => this.drainOutbox(), (err) => this.options.logger.warn({ err }, 'S3 replica outbox pass failed'));
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.loop?.stop();
    await this.running?.catch(() => undefined);
  }

  /** Upload every due queued blob of this instance now; how many went to the bucket. */
  drainOutbox(): Promise<number> {
    this.running ??= (async () => {
      let done = 0;
      try {
        for (;;) {
          const batch = await this.options.store.cluster.listReplicaOutbox(this.options.instanceId, BATCH);
          for (const { sha256, attempts } of batch) {
            if (this.stopping.signal.aborted) return done;
            try {
              await this.upload(sha256, this.options.local, this.stopping.signal);
              await this.options.store.cluster.settleReplica(this.options.instanceId, sha256, null);
              done++;
            } catch (err) {
              if (this.stopping.signal.aborted) return done;
              this.options.metrics?.replicaUploads.inc({ result: 'failed' });
              // A blob this instance no longer has (collected, or never stored here) cannot be copied: drop it.
              if (isCallfsError(err, 'FILE_NOT_FOUND')) {
                this.options.logger.warn({ sha256 }, 'a blob queued for the S3 replica is gone from this CAS');
                await this.options.store.cluster.settleReplica(this.options.instanceId, sha256, null);
                continue;
              }
              this.options.logger.warn({ err, sha256, attempts }, 'cannot copy a blob to the S3 replica; will retry');
              await this.options.store.cluster.settleReplica(this.options.instanceId, sha256, Math.min(MAX_RETRY_MS, 1000 * 2 ** Math.min(attempts, 12)));
            }
          }
          if (batch.length < BATCH) return done;
          await sleep(0);
        }
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }
}
