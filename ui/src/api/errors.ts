import type { ErrorCode } from '../../../lib/errors.js';

/**
 * An error answer of the API: its stable code (API.md's table), the
 * server's own message (shown as a detail), the request id (for the log)
 * and Retry-After where given.
 */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly requestId: string | null = null,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** Read an error answer: the JSON envelope when there is one, else the status alone. */
  static async from(res: Response): Promise<ApiError> {
    let body: { code?: unknown; message?: unknown; request_id?: unknown } = {};
    try {
      body = (await res.json()) as typeof body;
    } catch {
      // not JSON (a proxy's page, an empty 404 of HEAD): the status says what it can
    }
    return ApiError.of(res.status, body, res.headers.get('retry-after'));
  }

  static of(status: number, body: { code?: unknown; message?: unknown; request_id?: unknown }, retryAfter: string | null): ApiError {
    const code = typeof body.code === 'string' ? body.code : (STATUS_CODES[status] ?? 'INTERNAL_ERROR');
    const seconds = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : null;
    return new ApiError(code, typeof body.message === 'string' ? body.message : `HTTP ${status}`, status, typeof body.request_id === 'string' ? body.request_id : null, seconds);
  }
}

/** The code an answer without a JSON body most likely carries (HEAD answers have no body). */
const STATUS_CODES: Partial<Record<number, ErrorCode>> = {
  400: 'BAD_REQUEST',
  401: 'AUTHENTICATION_FAILED',
  403: 'PERMISSION_DENIED',
  404: 'FILE_NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'FILE_ALREADY_EXISTS',
  410: 'LINK_EXPIRED',
  412: 'PRECONDITION_FAILED',
  413: 'PAYLOAD_TOO_LARGE',
  416: 'RANGE_NOT_SATISFIABLE',
  423: 'LOCKED',
  429: 'RATE_LIMIT_EXCEEDED',
  502: 'BAD_GATEWAY',
  503: 'SERVICE_UNAVAILABLE',
  507: 'INSUFFICIENT_STORAGE',
};

/**
 * Every code of the API in words a person understands. Typed over the
 * server's own list of codes: a new code without words here does not build.
 */
const WORDS: Record<ErrorCode, string> = {
  BAD_REQUEST: 'The server could not accept that request.',
  INVALID_PATH: 'That name or path cannot be used. Names may not contain “/”, “\\”, control or invisible characters, and must be at most 255 bytes.',
  AUTHENTICATION_FAILED: 'That API key was not accepted. Check it and sign in again.',
  PERMISSION_DENIED: 'You do not have permission to do that here.',
  FILE_NOT_FOUND: 'It is not there any more: it may have been moved or deleted. Refresh to see the folder as it is now.',
  LINK_NOT_FOUND: 'That link does not exist.',
  NOT_A_DIRECTORY: 'Part of that path is a file, not a folder.',
  IS_A_DIRECTORY: 'That is a folder, not a file.',
  FILE_ALREADY_EXISTS: 'Something with that name already exists there.',
  DIRECTORY_NOT_EMPTY: 'That folder is not empty.',
  CROSS_SERVER_CONFLICT: 'That path is kept by another instance of the cluster; change it there.',
  LINK_EXPIRED: 'That link has expired.',
  LINK_USED: 'That link has already been used.',
  PRECONDITION_FAILED: 'It changed since you looked at it. Refresh and try again.',
  PAYLOAD_TOO_LARGE: 'The file is larger than this server accepts.',
  RANGE_NOT_SATISFIABLE: 'That part of the file does not exist.',
  UNSUPPORTED_MEDIA_TYPE: 'The upload was sent in a form the server does not accept.',
  UPLOAD_OFFSET_MISMATCH: 'The upload got out of step with the server. Try it again.',
  CHECKSUM_MISMATCH: 'Part of the upload arrived damaged. Try it again.',
  METHOD_NOT_ALLOWED: 'That cannot be done to this item.',
  LOCKED: 'Someone else is changing this right now. Try again in a moment.',
  RATE_LIMIT_EXCEEDED: 'Too many requests in a short time. Wait a moment and try again.',
  INSUFFICIENT_STORAGE: 'The server has no room left for this.',
  INTEGRITY_ERROR: 'The stored copy of this file is damaged (its SHA-256 does not match), so it was not served. An administrator can restore it from a replica.',
  BAD_GATEWAY: 'The instance of the cluster that holds this did not answer. Try again shortly.',
  SERVICE_UNAVAILABLE: 'The server is temporarily unavailable. Try again shortly.',
  INTERNAL_ERROR: 'Something went wrong on the server. Try again; if it keeps happening, tell an administrator the request id below.',
};

/** A problem the UI itself found (an empty name), already in words. */
export class Problem extends Error {
  override name = 'Problem';
}

/** What went wrong, for a person: the headline, and a detail line (the server's message, the request id). */
export interface Explained {
  text: string;
  detail: string | null;
}

export function explain(err: unknown): Explained {
  if (err instanceof ApiError) {
    let text = (WORDS as Record<string, string>)[err.code] ?? `The server refused: ${err.message}`;
    if (err.retryAfter !== null) text += ` (Wait ${err.retryAfter} s.)`;
    const parts = [err.message === '' || err.message.startsWith('HTTP ') ? null : `Server says: ${err.message}`, err.requestId === null ? null : `request id ${err.requestId}`];
    const detail = parts.filter((p) => p !== null).join(' · ');
    return { text, detail: detail === '' ? null : `${detail} (${err.code})` };
  }
  if (err instanceof Problem) return { text: err.message, detail: null };
  if (err instanceof TypeError) return { text: 'Could not reach the server. Check the connection and try again.', detail: err.message };
  return { text: 'Something went wrong.', detail: err instanceof Error ? err.message : String(err) };
}

/** An abort the user asked for is not an error to show. */
export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}
