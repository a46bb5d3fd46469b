import type { Middleware } from 'koa';
import { CallfsError, isCallfsError } from '../../errors.js';
import { pathFromUrl } from '../../paths.js';
import { ERROR_STATUS } from '../error-status.js';
import type { Authenticator } from '../middleware/auth.js';
import { toCallfsError } from '../middleware/errors.js';
import type { Caller, RequestState } from '../state.js';
import { DavError, type DavDeps, type DavRequest } from './context.js';
import { lock, unlock } from './locking.js';
import { ALLOWED, copy, del, get, mkcol, move, options, put } from './methods.js';
import { propfind, proppatch } from './properties.js';

export type { DavDeps } from './context.js';

export interface WebdavOptions extends DavDeps {
  /** Resolves an Authorization header (Bearer) to a caller, as /v1 does. */
  authenticate: Authenticator;
}

const HANDLERS: Record<string, (r: DavRequest) => Promise<void> | void> = {
  OPTIONS: options,
  GET: (r) => get(r, false),
  HEAD: (r) => get(r, true),
  PUT: put,
  DELETE: del,
  MKCOL: mkcol,
  COPY: copy,
  MOVE: move,
  PROPFIND: propfind,
  PROPPATCH: proppatch,
  LOCK: lock,
  UNLOCK: unlock,
};

const CHALLENGE = 'Basic realm="CallFS", charset="UTF-8"';

/**
 * The caller of a WebDAV request. Clients that mount a drive cannot send a
 * Bearer token, so HTTP Basic is accepted here: the user name and that
 * user's API key as the password (the key must belong to that name). Bearer
 * works too.
 */
export function davCaller(authenticate: Authenticator, header: string): Caller | null {
  const basic = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (basic === null) return authenticate(header === '' ? undefined : header);
  const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const key = decoded.slice(colon + 1);
  if (!/^[\x21-\x7e]+$/.test(key)) return null;
  const user = authenticate(`Bearer ${key}`);
  return user !== null && user.name === decoded.slice(0, colon) ? user : null;
}

/** How a CallFS error reads to a WebDAV client where RFC 4918 says otherwise than API.md. */
function davStatus(err: CallfsError): number {
  if (err.code === 'IS_A_DIRECTORY') return 405;
  if (err.code === 'NOT_A_DIRECTORY') return 409;
  return ERROR_STATUS[err.code];
}

/**
 * WebDAV (RFC 4918 class 1 and 2) over the same namespace, permissions and
 * engine as /v1/files, under `prefix`. Errors keep the JSON envelope of
 * API.md with the status a WebDAV client expects, or the DAV:error body RFC
 * 4918 names; 5xx go through the error envelope, which never tells internals.
 */
export function webdav(opts: WebdavOptions): Middleware<RequestState> {
  const { prefix, authenticate } = opts;
  return async (ctx, next) => {
    if (ctx.path !== prefix && !ctx.path.startsWith(`${prefix}/`)) return next();
    ctx.state.route = prefix;
    try {
      const user = davCaller(authenticate, ctx.get('authorization'));
      if (user === null) throw new CallfsError('AUTHENTICATION_FAILED', 'missing or invalid credentials: HTTP Basic with a user name and its API key, or a Bearer key');
      ctx.state.user = user;
      const handler = HANDLERS[ctx.method];
      if (handler === undefined) {
        ctx.set('Allow', ALLOWED);
        throw new CallfsError('METHOD_NOT_ALLOWED', `${ctx.method} is not a WebDAV method served here`);
      }
      // A fragment is the client's business; one sent would name another resource than the path says.
      if (ctx.req.url?.includes('#') === true) throw new CallfsError('BAD_REQUEST', 'the request URL has a fragment (#); percent-encode a # in a name as %23');
      const rest = ctx.path.slice(prefix.length);
      await handler({ ctx, user, path: pathFromUrl(rest === '' ? '/' : rest), deps: opts });
    } catch (thrown) {
      if (isCallfsError(thrown, 'AUTHENTICATION_FAILED')) ctx.set('WWW-Authenticate', CHALLENGE);
      const status = thrown instanceof DavError ? thrown.status : davStatus(toCallfsError(thrown));
      if (status >= 500 && !(thrown instanceof DavError)) throw thrown;
      const err = thrown instanceof DavError ? thrown : toCallfsError(thrown);
      ctx.state.errorCode = err.code;
      ctx.state.log.debug({ code: err.code, detail: err.message, status }, 'webdav request refused');
      if (ctx.headerSent || !ctx.writable) {
        ctx.res.destroy();
        return;
      }
      ctx.status = status;
      if (thrown instanceof DavError && thrown.xml !== undefined) {
        ctx.type = 'application/xml; charset=utf-8';
        ctx.body = thrown.xml;
        return;
      }
      const retry = err instanceof CallfsError ? err.retryAfterSeconds : undefined;
      if (retry !== undefined) ctx.set('Retry-After', String(retry));
      ctx.body = { code: err.code, message: err.message, request_id: ctx.state.requestId };
    }
  };
}
