import type { ObjectCannedACL, ServerSideEncryption } from '@aws-sdk/client-s3';
import { CallfsError } from '../../errors.js';
import type { S3BackendOptions } from './types.js';

/** The parameters every object-creating request carries (PutObject, CreateMultipartUpload, CopyObject). */
export interface WriteParams {
  ServerSideEncryption?: ServerSideEncryption;
  SSEKMSKeyId?: string;
  ACL?: ObjectCannedACL;
}

const CANNED_ACLS: readonly string[] = [
  'private',
  'public-read',
  'public-read-write',
  'authenticated-read',
  'aws-exec-read',
  'bucket-owner-read',
  'bucket-owner-full-control',
];

/**
 * Encryption and ACL from the configuration. A copy does not inherit them
 * from its source, so moves send them again. Throws BAD_REQUEST for an
 * unknown ACL or encryption (config validate reports the same).
 */
export function writeParamsOf(options: Pick<S3BackendOptions, 'serverSideEncryption' | 'kmsKeyId' | 'acl'>): WriteParams {
  const params: WriteParams = {};
  const sse = options.serverSideEncryption ?? 'AES256';
  if (sse === 'AES256' || sse === 'aws:kms') {
    params.ServerSideEncryption = sse;
    if (sse === 'aws:kms' && options.kmsKeyId !== undefined && options.kmsKeyId !== '') params.SSEKMSKeyId = options.kmsKeyId;
  } else if (sse !== 'none' && sse !== '') {
    throw new CallfsError('BAD_REQUEST', `backend.s3_server_side_encryption: unknown value ${JSON.stringify(sse)} (use AES256, aws:kms or none)`);
  }
  const acl = options.acl ?? 'private';
  if (acl !== '' && acl !== 'none') {
    if (!CANNED_ACLS.includes(acl)) throw new CallfsError('BAD_REQUEST', `backend.s3_acl: unknown canned ACL ${JSON.stringify(acl)} (use one of ${CANNED_ACLS.join(', ')}, or none)`);
    params.ACL = acl as ObjectCannedACL;
  }
  return params;
}
