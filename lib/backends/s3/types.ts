import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../../log/index.js';
import type { Metrics } from '../../metrics/index.js';
import type { Backend, PathKeys } from '../types.js';

/** Server-side encryption of new objects. */
export type S3Encryption = 'AES256' | 'aws:kms' | 'none';

/** Options of {@link createS3Backend}. */
export interface S3BackendOptions {
  bucket: string;
  /** Key prefix (backend.s3_prefix); '' or e.g. 'callfs' / 'callfs/'. */
  prefix?: string;
  /**
   * A first path segment no file may use (INVALID_PATH): its keys belong to
   * something else in the same key space (the CAS's S3 replica, `.callfs-cas`).
   */
  reservedSegment?: string;
  region?: string;
  /** Custom endpoint (MinIO, Ceph, any S3-compatible server); '' or absent for AWS. */
  endpoint?: string;
  /**
   * Path-style addressing (http://host/bucket/key). Defaults to on when a
   * custom endpoint that is not AWS is set.
   */
  forcePathStyle?: boolean;
  /** Static credentials; both empty or absent: the SDK's default provider chain. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Default 'AES256'; '' is treated as 'none'. */
  serverSideEncryption?: S3Encryption | '';
  /** KMS key for 'aws:kms' (absent: the bucket's default KMS key). */
  kmsKeyId?: string;
  /** Canned ACL of new objects ('private' by default); '' or 'none' sends no ACL. */
  acl?: string;
  /** Multipart part size in bytes (at least 5 MiB; default 8 MiB). */
  partSize?: number;
  /** Parts uploaded in parallel per upload (default 4). Memory per upload is about partSize × (queueSize + 1). */
  queueSize?: number;
  /**
   * Request checksums: 'WHEN_SUPPORTED' (the SDK default, right for AWS) or
   * 'WHEN_REQUIRED' (what many S3-compatible servers need). Default: WHEN_REQUIRED
   * with a custom endpoint, WHEN_SUPPORTED without.
   */
  requestChecksumCalculation?: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';
  /** Give up connecting after this many ms (default 5000). */
  connectTimeoutMs?: number;
  /** Fail a request whose socket stays idle this long (default 120 000). */
  socketTimeoutMs?: number;
  /** SDK attempts per request, retries included (default 3). */
  maxAttempts?: number;
  /** Objects above this size are copied with a multipart copy (default and S3 maximum: 5 GiB). */
  copyThresholdBytes?: number;
  logger: Logger;
  metrics?: Metrics;
  /** A ready client (tests); the options above that configure a client are then ignored. */
  client?: S3Client;
}

/**
 * The S3 backend: ids are object keys derived from canonical paths (keys
 * follow paths so that the bucket stays browsable by other tools); its
 * PathKeys are also its own members.
 */
export interface S3Backend extends Backend, PathKeys {
  readonly type: 's3';
  readonly pathKeys: PathKeys;
  readonly bucket: string;
  /** The key prefix in use ('' or ending with '/'). */
  readonly prefix: string;
}
