import type { Logger } from '../../log/index.js';
import type { Metrics } from '../../metrics/index.js';
import type { Config } from '../../config/schema.js';
import type { S3BackendOptions, S3Encryption } from './types.js';

/** The backend.s3_* keys of the configuration (the original CallFS's names; CALLFS_BACKEND_S3_* in the environment). */
export type S3ConfigKeys = Pick<
  Config['backend'],
  's3_access_key' | 's3_secret_key' | 's3_region' | 's3_bucket_name' | 's3_endpoint' | 's3_prefix' | 's3_force_path_style' | 's3_server_side_encryption' | 's3_kms_key_id' | 's3_acl' | 's3_part_size' | 's3_queue_size'
>;

/** S3 backend options from the configuration, or null when no bucket is configured (S3 disabled). */
export function s3OptionsFromConfig(keys: S3ConfigKeys, deps: { logger: Logger; metrics?: Metrics }): S3BackendOptions | null {
  if (keys.s3_bucket_name === '') return null;
  return {
    bucket: keys.s3_bucket_name,
    prefix: keys.s3_prefix,
    region: keys.s3_region,
    endpoint: keys.s3_endpoint,
    forcePathStyle: keys.s3_force_path_style,
    accessKeyId: keys.s3_access_key,
    secretAccessKey: keys.s3_secret_key,
    serverSideEncryption: keys.s3_server_side_encryption as S3Encryption | '',
    kmsKeyId: keys.s3_kms_key_id,
    acl: keys.s3_acl,
    partSize: keys.s3_part_size,
    queueSize: keys.s3_queue_size,
    logger: deps.logger,
    ...(deps.metrics === undefined ? {} : { metrics: deps.metrics }),
  };
}
