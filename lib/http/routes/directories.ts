import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Engine } from '../../engine/index.js';
import type { Entry, ListCursor } from '../../metadata/types.js';
import { CallfsError } from '../../errors.js';
import type { RequestState } from '../state.js';
import { entryJson, type NameOf } from '../representation.js';
import { jsonListingStream } from '../json-stream.js';
import { requestPath } from './files.js';

export interface DirectoriesRoutesOptions {
  engine: Engine;
  nameOf: NameOf;
  requireAuth: Middleware<RequestState>;
}

const PREFIX = '/v1/directories';
const DEFAULT_MAX_DEPTH = 100;
const MAX_DEPTH_CAP = 1000;
const MAX_PAGE = 10_000;

function intParam(value: unknown, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < min) throw new CallfsError('BAD_REQUEST', `${name} must be an integer ≥ ${min}`);
  return Number(value);
}

function boolParam(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new CallfsError('BAD_REQUEST', `${name} must be true or false`);
}

const encodeCursor = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
function decodeCursor(cursor: unknown, recursive: boolean): ListCursor | string | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(String(cursor), 'base64url').toString('utf8')) as { t?: unknown; n?: unknown; p?: unknown };
    if (recursive && typeof value.p === 'string') return value.p;
    if (!recursive && (value.t === 'file' || value.t === 'directory') && typeof value.n === 'string') return { type: value.t, name: value.n };
  } catch {
    /* fall through */
  }
  throw new CallfsError('BAD_REQUEST', 'cursor is malformed (use the next_cursor of the previous page)');
}

/** /v1/directories/{path}?recursive&max_depth&limit&cursor */
export function directoriesRoutes(options: DirectoriesRoutesOptions): Router<RequestState> {
  const { engine, nameOf } = options;
  const router = new Router<RequestState>();
  router.get(`${PREFIX}{/*path}`, options.requireAuth, async (ctx: Context & { state: RequestState }) => {
    const { path } = requestPath(ctx, PREFIX);
    const recursive = boolParam(ctx.query.recursive, 'recursive');
    const maxDepth = Math.min(intParam(ctx.query.max_depth, 'max_depth', 0) ?? DEFAULT_MAX_DEPTH, MAX_DEPTH_CAP);
    const limit = intParam(ctx.query.limit, 'limit', 1);
    if (limit !== undefined && limit > MAX_PAGE) throw new CallfsError('BAD_REQUEST', `limit must be at most ${MAX_PAGE}`);
    const after = decodeCursor(ctx.query.cursor, recursive);
    const user = ctx.state.user as NonNullable<RequestState['user']>;
    const listing = recursive
      ? await engine.listTree(user, path, { maxDepth, ...(typeof after === 'string' ? { after } : {}) })
      : await engine.listDirectory(user, path, typeof after === 'object' ? { after } : {});
    const head = { path, type: 'directory', recursive, max_depth: recursive ? maxDepth : 0 };
    const render = (e: Entry): unknown => entryJson(e, nameOf);
    const cursorOf = (e: Entry): string => encodeCursor(recursive ? { p: e.path } : { t: e.type, n: e.name });
    ctx.status = 200;
    ctx.type = 'application/json';
    if (limit !== undefined) {
      // One page, bounded by MAX_PAGE: read one more item than asked to know whether another page follows.
      const page: Entry[] = [];
      let more = false;
      for await (const item of listing.items) {
        if (page.length === limit) {
          more = true;
          break;
        }
        page.push(item);
      }
      const last = page[page.length - 1];
      ctx.set('X-CallFS-Count', String(page.length));
      ctx.body = { ...head, count: page.length, items: page.map(render), ...(more && last !== undefined ? { next_cursor: cursorOf(last) } : {}) };
      return;
    }
    // Counted as the listing shows it: nothing inside a directory the caller may not open.
    ctx.set('X-CallFS-Count', String(await listing.count()));
    ctx.body = jsonListingStream({ items: listing.items, render, head, tail: (count) => ({ count }) });
  });
  return router;
}
