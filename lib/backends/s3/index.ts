/**
 * The S3 backend: objects named after paths under an optional prefix, streamed
 * multipart uploads, ranged reads, server-side encryption and ACL from config,
 * any S3-compatible server through a custom endpoint. See
 * docs_markdown/05-backend-configuration.md.
 */
export { createS3Backend, MAX_SINGLE_COPY_BYTES } from './backend.js';
export { createS3Client, usesPathStyle } from './client.js';
export { s3OptionsFromConfig, type S3ConfigKeys } from './settings.js';
export { MAX_KEY_BYTES, keyOfPath, normalizePrefix, pathOfKey } from './keys.js';
export type { S3Backend, S3BackendOptions, S3Encryption } from './types.js';
