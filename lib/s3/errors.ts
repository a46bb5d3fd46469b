import { CallfsError, type ErrorCode } from '../errors.js';

/** An error as S3 clients read it: an S3 code, an HTTP status, and the message of the XML body. */
export class S3Error extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'S3Error';
  }
}

const FROM_CALLFS: Partial<Record<ErrorCode, [string, number]>> = {
  BAD_REQUEST: ['InvalidArgument', 400],
  INVALID_PATH: ['InvalidArgument', 400],
  IS_A_DIRECTORY: ['InvalidArgument', 400],
  NOT_A_DIRECTORY: ['InvalidArgument', 400],
  PERMISSION_DENIED: ['AccessDenied', 403],
  AUTHENTICATION_FAILED: ['AccessDenied', 403],
  FILE_NOT_FOUND: ['NoSuchKey', 404],
  FILE_ALREADY_EXISTS: ['InvalidArgument', 409],
  DIRECTORY_NOT_EMPTY: ['BucketNotEmpty', 409],
  PRECONDITION_FAILED: ['PreconditionFailed', 412],
  PAYLOAD_TOO_LARGE: ['EntityTooLarge', 400],
  RANGE_NOT_SATISFIABLE: ['InvalidRange', 416],
  LOCKED: ['SlowDown', 503],
  RATE_LIMIT_EXCEEDED: ['SlowDown', 503],
  SERVICE_UNAVAILABLE: ['ServiceUnavailable', 503],
  BAD_GATEWAY: ['ServiceUnavailable', 503],
  INSUFFICIENT_STORAGE: ['InsufficientStorage', 507],
};

/** Anything thrown, as an S3 error. 5xx say fixed words only (the cause goes to the log). */
export function toS3Error(err: unknown): S3Error {
  if (err instanceof S3Error) return err;
  if (err instanceof CallfsError) {
    const [code, status] = FROM_CALLFS[err.code] ?? ['InternalError', 500];
    return new S3Error(code, status, status >= 500 ? 'the server could not complete the request; retry' : err.message);
  }
  return new S3Error('InternalError', 500, 'internal error');
}
