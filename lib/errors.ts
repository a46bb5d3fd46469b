import type { BackendType } from './backends/registry.js';

/**
 * Domain errors. Every error the system raises on purpose carries one of the
 * stable codes of API.md; the HTTP layer maps each code to a status in one
 * table (lib/http/error-status.ts). Nothing here knows about HTTP.
 */
export const ERROR_CODES = [
  'BAD_REQUEST',
  'INVALID_PATH',
  'AUTHENTICATION_FAILED',
  'PERMISSION_DENIED',
  'FILE_NOT_FOUND',
  'LINK_NOT_FOUND',
  'NOT_A_DIRECTORY',
  'IS_A_DIRECTORY',
  'FILE_ALREADY_EXISTS',
  'DIRECTORY_NOT_EMPTY',
  'CROSS_SERVER_CONFLICT',
  'LINK_EXPIRED',
  'LINK_USED',
  'PRECONDITION_FAILED',
  'PAYLOAD_TOO_LARGE',
  'RANGE_NOT_SATISFIABLE',
  'UNSUPPORTED_MEDIA_TYPE',
  'UPLOAD_OFFSET_MISMATCH',
  'CHECKSUM_MISMATCH',
  'METHOD_NOT_ALLOWED',
  'LOCKED',
  'RATE_LIMIT_EXCEEDED',
  'INSUFFICIENT_STORAGE',
  'INTEGRITY_ERROR',
  'BAD_GATEWAY',
  'SERVICE_UNAVAILABLE',
  'INTERNAL_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * The parts of the system a server-side failure (5xx) may name to a client.
 * A 5xx answer says which of these failed, in plain words, and nothing
 * more: the error's own message (addresses, database names, errno strings)
 * goes to the log only. `contention` is not a part but a cause: concurrent
 * changes kept getting in the way; `replication`: too few instances are up
 * to take the copies a write needs.
 */
export type Component = 'metadata' | 'locks' | 'peer' | 'contention' | 'replication' | BackendType;

export interface CallfsErrorOptions {
  /** The underlying error, kept for logs; never shown to clients. */
  cause?: unknown;
  /** Extra fields rendered into the JSON error body (e.g. CROSS_SERVER_CONFLICT details). */
  details?: Record<string, unknown>;
  /** Seconds a client should wait before retrying (429, 503). */
  retryAfterSeconds?: number;
  /** Which part failed, for the plain-words message of a 5xx (see Component). */
  component?: Component;
}

/** The one error class of the domain: a stable code and a human message. */
export class CallfsError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
  readonly retryAfterSeconds?: number;
  readonly component?: Component;

  constructor(code: ErrorCode, message: string, options: CallfsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CallfsError';
    this.code = code;
    if (options.details !== undefined) this.details = options.details;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    if (options.component !== undefined) this.component = options.component;
  }
}

/** True when `err` is a CallfsError with the given code (or any code when omitted). */
export function isCallfsError(err: unknown, code?: ErrorCode): err is CallfsError {
  return err instanceof CallfsError && (code === undefined || err.code === code);
}

export const notFound = (path: string): CallfsError =>
  new CallfsError('FILE_NOT_FOUND', `no such file or directory: ${path}`);

/**
 * SERVICE_UNAVAILABLE: `component` cannot serve now. `detail` is for the log
 * (clients see only the component, in plain words).
 */
export const unavailable = (component: Component, detail: string, cause?: unknown): CallfsError =>
  new CallfsError('SERVICE_UNAVAILABLE', detail, { cause, retryAfterSeconds: 5, component });
