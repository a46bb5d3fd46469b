import type { Context } from 'koa';
import type { Engine } from '../../engine/index.js';
import type { DavOps, Entry } from '../../metadata/types.js';
import { CallfsError, isCallfsError, type ErrorCode } from '../../errors.js';
import { encodePath, pathFromUrl } from '../../paths.js';
import type { NameOf } from '../representation.js';
import type { Caller, RequestState } from '../state.js';

/** What every WebDAV method handler gets. */
export interface DavRequest {
  ctx: Context & { state: RequestState };
  user: Caller;
  /** The canonical CallFS path of the request URL. */
  path: string;
  deps: DavDeps;
}

export interface DavDeps {
  /** URL path of the tree ('/webdav'). */
  prefix: string;
  engine: Engine;
  dav: DavOps;
  nameOf: NameOf;
  /** Used and free bytes where new files go (quota properties); absent where unknown. */
  quota?: () => Promise<{ usedBytes: number; freeBytes: number }>;
}

/**
 * A WebDAV answer that is not a plain CallFS error: its status (409 for a
 * missing parent, 415, 502, …), the error code of the JSON body, and where
 * RFC 4918 names a precondition, a DAV:error XML body instead.
 */
export class DavError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly xml?: string,
  ) {
    super(message);
    this.name = 'DavError';
  }
}

/** The href of a path: under the prefix, percent-encoded, a collection with a trailing '/'. */
export function hrefOf(deps: Pick<DavDeps, 'prefix'>, path: string, collection: boolean): string {
  if (path === '/') return `${deps.prefix}/`;
  return `${deps.prefix}${encodePath(path)}${collection ? '/' : ''}`;
}

/** The entry at `path`, or null when there is none (other errors, such as a 403 on an ancestor, are thrown). */
export async function entryOrNull(r: DavRequest, path: string): Promise<Entry | null> {
  try {
    return await r.deps.engine.stat(r.user, path);
  } catch (err) {
    if (isCallfsError(err, 'FILE_NOT_FOUND') || isCallfsError(err, 'NOT_A_DIRECTORY')) return null;
    throw err;
  }
}

/** 409 unless `path`'s parent is an existing collection (RFC 4918: PUT, MKCOL, COPY and MOVE create no parents). */
export async function assertParentCollection(r: DavRequest, path: string, parent: string): Promise<void> {
  const entry = await entryOrNull(r, parent);
  if (entry === null || entry.type !== 'directory') throw new DavError(409, 'FILE_NOT_FOUND', `the parent collection of ${path} does not exist`);
}

/**
 * The CallFS path a URL names (Destination, a tagged If list): an absolute
 * URL of this server or an absolute path, under the prefix. Null when it
 * names another server or something outside the tree.
 */
export function pathOfUrl(r: DavRequest, url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url, `${r.ctx.protocol}://${r.ctx.host}`);
  } catch {
    throw new CallfsError('BAD_REQUEST', `not a URL: ${url}`);
  }
  if (parsed.host.toLowerCase() !== r.ctx.host.toLowerCase()) return null;
  const { prefix } = r.deps;
  const raw = parsed.pathname;
  if (raw !== prefix && !raw.startsWith(`${prefix}/`)) return null;
  const rest = raw.slice(prefix.length);
  return pathFromUrl(rest === '' ? '/' : rest);
}

/** Whether the request carries a body (MKCOL refuses one it does not understand). */
export function hasBody(ctx: Context): boolean {
  const length = ctx.get('content-length');
  return (length !== '' && length !== '0') || ctx.get('transfer-encoding') !== '';
}
