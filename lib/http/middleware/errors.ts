import type { Middleware } from 'koa';
import { CallfsError, ERROR_CODES, type Component, type ErrorCode } from '../../errors.js';
import { BACKEND_KINDS, BACKEND_TYPES, type BackendType } from '../../backends/registry.js';
import { ERROR_STATUS } from '../error-status.js';
import type { RequestState } from '../state.js';

const STATUS_CODE: Partial<Record<number, ErrorCode>> = {
  400: 'BAD_REQUEST',
  401: 'AUTHENTICATION_FAILED',
  403: 'PERMISSION_DENIED',
  404: 'FILE_NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  416: 'RANGE_NOT_SATISFIABLE',
  503: 'SERVICE_UNAVAILABLE',
};

/** The parts of the system, as a 5xx names them to a client (backends as the registry names them). */
const COMPONENT_WORDS: Record<Component, string> = {
  metadata: 'the metadata store',
  locks: 'the lock service',
  peer: 'the instance that holds the bytes',
  contention: 'concurrent changes',
  replication: 'the instances that keep copies',
  ...(Object.fromEntries(BACKEND_TYPES.map((t) => [t, BACKEND_KINDS[t].publicName])) as Record<BackendType, string>),
};

/**
 * What a client reads in a 5xx: fixed words per code and failed component,
 * never the error's own message (which may carry addresses, database names
 * or errno strings; it goes to the log with the request id).
 */
export function publicMessage(err: CallfsError): string {
  const part = err.component === undefined ? undefined : COMPONENT_WORDS[err.component];
  switch (err.code) {
    case 'SERVICE_UNAVAILABLE':
      if (err.component === 'contention') return 'the request met concurrent changes; retry';
      if (err.component === 'replication') return 'too few instances are up to keep the copies a write needs; retry shortly';
      return `${part ?? 'a service this server depends on'} is unavailable; retry shortly`;
    case 'BAD_GATEWAY':
      return `${part ?? 'another instance'} did not answer`;
    case 'INSUFFICIENT_STORAGE':
      return `${part ?? 'the store'} has no room for this upload`;
    case 'INTEGRITY_ERROR':
      return 'the stored bytes no longer match their SHA-256; they were not served';
    default:
      return 'internal error';
  }
}

/** Turn anything thrown into a CallfsError: ours as they are, Koa/http-errors by status, the rest INTERNAL_ERROR. */
export function toCallfsError(err: unknown): CallfsError {
  if (err instanceof CallfsError) return err;
  const e = err as { status?: number; expose?: boolean; message?: string; code?: string };
  if (typeof e?.status === 'number' && e.status < 500) {
    const code = STATUS_CODE[e.status] ?? 'BAD_REQUEST';
    return new CallfsError(code, e.expose === true && e.message !== undefined ? e.message : code.toLowerCase().replace(/_/g, ' '), { cause: err });
  }
  if (typeof e?.code === 'string' && (ERROR_CODES as readonly string[]).includes(e.code)) {
    return new CallfsError(e.code as ErrorCode, e.message ?? e.code, { cause: err });
  }
  return new CallfsError('INTERNAL_ERROR', 'internal error', { cause: err });
}

/**
 * The one error path: every error becomes the JSON envelope of API.md,
 * `{code, message, request_id, …details}`, with its status from ERROR_STATUS.
 * 5xx bodies never carry internals: their message is publicMessage(), and the
 * error's own message and cause go to the log only.
 */
export function errorEnvelope(): Middleware<RequestState> {
  return async (ctx, next) => {
    try {
      await next();
    } catch (thrown) {
      const err = toCallfsError(thrown);
      ctx.state.errorCode = err.code;
      const status = ERROR_STATUS[err.code];
      const clientGone = ctx.state.signal?.aborted === true;
      if (status >= 500 && !clientGone) ctx.state.log.error({ err: err.cause ?? err, code: err.code, detail: err.message }, 'request failed');
      else ctx.state.log.debug({ code: err.code, detail: err.message, err: err.cause ?? err, client_gone: clientGone }, 'request refused');
      if (ctx.headerSent || !ctx.writable) {
        // Bytes already went out: the only honest signal left is a broken transfer.
        ctx.res.destroy();
        return;
      }
      ctx.status = status;
      // An unread request body (a refused upload) is not drained: the connection ends with the answer.
      if (!ctx.req.complete) ctx.set('Connection', 'close');
      ctx.remove('Content-Disposition');
      ctx.remove('ETag');
      ctx.remove('Last-Modified');
      // 416 keeps its Content-Range: bytes */size; no other error describes a range.
      if (err.code !== 'RANGE_NOT_SATISFIABLE') ctx.remove('Content-Range');
      if (err.retryAfterSeconds !== undefined) ctx.set('Retry-After', String(err.retryAfterSeconds));
      if (err.code === 'AUTHENTICATION_FAILED') ctx.set('WWW-Authenticate', 'Bearer realm="callfs"');
      const message = status >= 500 ? publicMessage(err) : err.message;
      ctx.body = { ...(status >= 500 ? {} : err.details), code: err.code, message, request_id: ctx.state.requestId };
    }
  };
}
