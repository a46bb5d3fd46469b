import { CallfsError, isCallfsError, notFound, unavailable } from '../../errors.js';

/** What an S3 error looks like: the SDK's ServiceException fields, or a Node network error. */
interface S3ErrorShape {
  name?: string;
  code?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
}

/** Error names that mean "the object is not there". */
const MISSING = new Set(['NoSuchKey', 'NotFound']);
/** Error names that mean "S3 cannot serve us now" whatever the status says. */
const UNAVAILABLE = new Set([
  'NoSuchBucket',
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'TokenRefreshRequired',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'TimeoutError',
  'CredentialsProviderError',
  'KMS.KMSInvalidStateException',
  'KMS.DisabledException',
]);

export interface ClassifyOptions {
  /** What the operation was about, for the message of FILE_NOT_FOUND. */
  id: string;
  /** The caller's signal: once aborted, its reason wins over whatever failed. */
  signal?: AbortSignal | undefined;
}

/**
 * Turn whatever an S3 call threw into a domain error: the caller's abort
 * reason; FILE_NOT_FOUND for a missing key; RANGE_NOT_SATISFIABLE; and
 * SERVICE_UNAVAILABLE (with Retry-After) for everything that means S3 is
 * unreachable, slow, failing (5xx), throttling or refusing our credentials,
 * so that an S3 outage is a 503 and never a 500. An unexpected 4xx (a request
 * S3 considers malformed) stays an internal error: retrying will not help.
 */
export function classifyS3Error(err: unknown, options: ClassifyOptions): unknown {
  if (options.signal?.aborted) return options.signal.reason;
  if (isCallfsError(err)) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as S3ErrorShape;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? '';
  if (MISSING.has(name) || (status === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload')) return notFound(options.id);
  if (name === 'InvalidRange' || status === 416) return new CallfsError('RANGE_NOT_SATISFIABLE', `range not satisfiable for ${options.id}`, { cause: err });
  if (name === 'EntityTooLarge') return new CallfsError('PAYLOAD_TOO_LARGE', 'the object is larger than S3 accepts', { cause: err });
  // No HTTP status: a network failure (it has a Node error code, or the SDK's
  // $metadata) is an outage; anything else is a bug of ours.
  const network = typeof e.code === 'string' || e.$metadata !== undefined;
  if (status === undefined && !network && !UNAVAILABLE.has(name)) return new CallfsError('INTERNAL_ERROR', 'the S3 backend failed', { cause: err });
  if (UNAVAILABLE.has(name) || status === undefined || status >= 500 || status === 429 || status === 403 || status === 401 || status === 408 || e.$fault === 'server') {
    return unavailable('s3', 'the S3 backend is unavailable', err);
  }
  return new CallfsError('INTERNAL_ERROR', `the S3 backend refused a request (${name || status})`, { cause: err });
}

/** As classifyS3Error, but where a missing object means the bucket or the upload is gone (writes, checks). */
export function classifyS3WriteError(err: unknown, options: ClassifyOptions): unknown {
  const classified = classifyS3Error(err, options);
  return isCallfsError(classified, 'FILE_NOT_FOUND') ? unavailable('s3', 'the S3 backend is unavailable', err) : classified;
}
