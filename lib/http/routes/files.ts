import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Engine } from '../../engine/index.js';
import { assertPlainName } from '../../engine/index.js';
import { checkPreconditions } from '../../engine/context.js';
import type { Entry } from '../../metadata/types.js';
import { CallfsError, isCallfsError } from '../../errors.js';
import { encodePath, parentOf, pathFromUrl } from '../../paths.js';
import { acceptedBackendNames, backendTypeOf, isInstanceLocal } from '../../backends/registry.js';
import type { RequestState } from '../state.js';
import { entryJson, parseMode, parseRange, sendContent, setEntryHeaders, type NameOf } from '../representation.js';
import { notModified, requestPreconditions } from '../preconditions.js';
import { jsonListingStream } from '../json-stream.js';
import { readJsonBody } from '../json-body.js';
import { declaredLength, uploadBody } from '../upload-body.js';
import { acceptedJob } from './jobs.js';

export interface FilesRoutesOptions {
  engine: Engine;
  nameOf: NameOf;
  /** Resolves an owner given by name or number to a uid (BAD_REQUEST when unknown). */
  uidOf: (owner: unknown) => number;
  requireAuth: Middleware<RequestState>;
  /** Base URL of this server, for CROSS_SERVER_CONFLICT's update_url. */
  externalUrl: string;
}

type Ctx = Context & { state: RequestState };

const PREFIX = '/v1/files';

/** The raw path after the prefix, and whether it ended with '/'. */
export function requestPath(ctx: Context, prefix: string): { path: string; trailingSlash: boolean } {
  const raw = ctx.path.slice(prefix.length);
  return { path: pathFromUrl(raw === '' ? '/' : raw), trailingSlash: raw.endsWith('/') && raw !== '/' };
}

/** /v1/files/{path}: GET, HEAD, POST, PUT, PATCH, DELETE as API.md says. */
export function filesRoutes(options: FilesRoutesOptions): Router<RequestState> {
  const { engine, nameOf } = options;
  const router = new Router<RequestState>();

  const user = (ctx: Ctx) => ctx.state.user as NonNullable<RequestState['user']>;
  const signal = (ctx: Ctx) => ctx.state.signal;

  async function get(ctx: Ctx, head: boolean): Promise<void> {
    const { path } = requestPath(ctx, PREFIX);
    // HEAD is stat(2): search on the ancestors is enough; GET reads, so it needs r.
    const entry = head ? await engine.stat(user(ctx), path) : await engine.statForRead(user(ctx), path);
    if (entry.type === 'directory') {
      setEntryHeaders(ctx, entry, nameOf);
      if (head) {
        ctx.status = 200;
        return;
      }
      const { items } = await engine.listDirectory(user(ctx), path);
      ctx.status = 200;
      ctx.type = 'application/json';
      ctx.body = jsonListingStream({ items, render: (e: Entry) => entryJson(e, nameOf), bare: true });
      return;
    }
    await serveFile(ctx, engine, entry, { head, nameOf });
  }

  function newMode(ctx: Ctx): number | undefined {
    const header = ctx.get('x-callfs-mode');
    return header === '' ? undefined : parseMode(header, 'X-CallFS-Mode');
  }

  async function create(ctx: Ctx): Promise<void> {
    const { path, trailingSlash } = requestPath(ctx, PREFIX);
    const mode = newMode(ctx);
    try {
      if (trailingSlash) {
        ctx.req.resume();
        const result = await engine.makeDirectory(user(ctx), path, { ...(mode === undefined ? {} : { mode }), signal: signal(ctx) });
        ctx.status = result.created ? 201 : 200;
        ctx.body = entryJson(result.entry, nameOf);
        return;
      }
      await upload(ctx, path, mode, true);
    } catch (err) {
      // The engine says which instance holds the path; where to send the PUT is ours to say.
      if (isCallfsError(err, 'CROSS_SERVER_CONFLICT') && err.details !== undefined) {
        Object.assign(err.details, { update_url: `${options.externalUrl}${PREFIX}${encodePath(path)}` });
      }
      throw err;
    }
  }

  async function upload(ctx: Ctx, path: string, mode: number | undefined, mustCreate: boolean): Promise<void> {
    const result = await engine.writeFile(user(ctx), path, uploadBody(ctx.req), {
      mustCreate,
      ...(mode === undefined ? {} : { mode }),
      ...declaredLength(ctx),
      ...requestPreconditions(ctx),
      signal: signal(ctx),
    });
    ctx.status = result.created ? 201 : 200;
    setEntryHeaders(ctx, result.entry, nameOf);
    // Kept from when a replace was forwarded to the holding instance: it names where the bytes went.
    if (result.storedOn !== null) ctx.set('X-CallFS-Proxied-To', result.storedOn);
    if (result.copies !== undefined && result.copies.length > 0) ctx.set('X-CallFS-Replicas', result.copies.join(','));
    ctx.body = entryJson(result.entry, nameOf);
  }

  async function put(ctx: Ctx): Promise<void> {
    const { path, trailingSlash } = requestPath(ctx, PREFIX);
    if (trailingSlash) {
      ctx.set('Connection', 'close');
      throw new CallfsError('IS_A_DIRECTORY', 'PUT needs a file path (it ends with "/")');
    }
    await upload(ctx, path, newMode(ctx), false);
  }

  async function patch(ctx: Ctx): Promise<void> {
    const { path } = requestPath(ctx, PREFIX);
    const body = await readJsonBody(ctx);
    const known = ['name', 'destination', 'overwrite', 'create_parents', 'mode', 'owner', 'group', 'backend', 'instance'];
    const unknown = Object.keys(body).filter((k) => !known.includes(k));
    if (unknown.length > 0) throw new CallfsError('BAD_REQUEST', `unknown field(s): ${unknown.join(', ')}`);
    const u = user(ctx);
    const pre = requestPreconditions(ctx);
    // Every value is checked before anything changes, so that a bad one changes nothing.
    const backendTarget = backendTypeOf(body.backend);
    if (body.backend !== undefined && backendTarget === undefined) throw new CallfsError('BAD_REQUEST', `"backend" must be ${acceptedBackendNames()}`);
    if (body.instance !== undefined) {
      if (typeof body.instance !== 'string' || !engine.knowsInstance(body.instance)) throw new CallfsError('BAD_REQUEST', '"instance" must be the id of this instance or of a configured peer');
      if (backendTarget !== undefined && !isInstanceLocal(backendTarget)) throw new CallfsError('BAD_REQUEST', `"instance" moves bytes onto that instance: "backend" cannot be ${String(body.backend)}, which every instance shares`);
    }
    const change: { mode?: number; uid?: number; gid?: number } = {};
    if (body.mode !== undefined) change.mode = parseMode(body.mode, '"mode"');
    if (body.owner !== undefined) change.uid = options.uidOf(body.owner);
    if (body.group !== undefined) change.gid = parseGid(body.group);
    let target = path;
    if (body.name !== undefined || body.destination !== undefined) {
      if (body.name !== undefined && body.destination !== undefined) throw new CallfsError('BAD_REQUEST', 'give either "name" or "destination", not both');
      if (body.overwrite !== undefined && typeof body.overwrite !== 'boolean') throw new CallfsError('BAD_REQUEST', '"overwrite" must be a boolean');
      if (body.create_parents !== undefined && typeof body.create_parents !== 'boolean') throw new CallfsError('BAD_REQUEST', '"create_parents" must be a boolean');
      if (body.destination !== undefined && typeof body.destination !== 'string') throw new CallfsError('BAD_REQUEST', '"destination" must be a path');
      target = body.name !== undefined ? (parentOf(path) === '/' ? '' : parentOf(path)) + '/' + assertPlainName(body.name) : pathFromUrl(String(body.destination));
      // Nothing else to change: a big tree's move may go on as a job (202); otherwise the rest waits for it.
      const alone = Object.keys(change).length === 0 && backendTarget === undefined && body.instance === undefined;
      const moved = await engine.move(u, path, target, { overwrite: body.overwrite === true, createParents: body.create_parents === true, background: alone, signal: signal(ctx) });
      if (moved.job !== null) return acceptedJob(ctx, moved.job);
    }
    // The bytes move (streamed, under the path's lock) after any rename, to where the file now is.
    if (body.instance !== undefined || backendTarget !== undefined) {
      await engine.moveBytes(u, target, { ...(backendTarget === undefined ? {} : { backend: backendTarget }), ...(typeof body.instance === 'string' ? { instanceId: body.instance } : {}) }, { ...pre, signal: signal(ctx) });
    }
    if (Object.keys(change).length > 0) await engine.setAttributes(u, target, change, { ...pre, signal: signal(ctx) });
    if (target === path && Object.keys(change).length === 0 && body.name === undefined && body.destination === undefined && backendTarget === undefined && body.instance === undefined) {
      throw new CallfsError('BAD_REQUEST', 'nothing to change: give name, destination, mode, owner, group, backend or instance');
    }
    ctx.status = 200;
    ctx.body = { path: target };
  }

  async function del(ctx: Ctx): Promise<void> {
    const { path } = requestPath(ctx, PREFIX);
    const recursive = ctx.query.recursive;
    if (recursive !== undefined && recursive !== 'true' && recursive !== 'false') throw new CallfsError('BAD_REQUEST', 'recursive must be true or false');
    const job = await engine.remove(user(ctx), path, { recursive: recursive === 'true', ...requestPreconditions(ctx), signal: signal(ctx) });
    // A big tree already left the namespace; its job goes on removing the old entries.
    if (job !== null) acceptedJob(ctx, job);
    else ctx.status = 204;
  }

  const pattern = `${PREFIX}{/*path}`;
  // @koa/router serves HEAD with the GET route.
  router.get(pattern, options.requireAuth, (ctx) => get(ctx as Ctx, ctx.method === 'HEAD'));
  router.post(pattern, options.requireAuth, (ctx) => create(ctx as Ctx));
  router.put(pattern, options.requireAuth, (ctx) => put(ctx as Ctx));
  router.patch(pattern, options.requireAuth, (ctx) => patch(ctx as Ctx));
  router.delete(pattern, options.requireAuth, (ctx) => del(ctx as Ctx));
  return router;
}

function parseGid(group: unknown): number {
  const n = typeof group === 'number' ? group : typeof group === 'string' && /^\d+$/.test(group) ? Number(group) : Number.NaN;
  if (!Number.isInteger(n) || n < 0 || n > 4_294_967_294) throw new CallfsError('BAD_REQUEST', '"group" must be a numeric gid');
  return n;
}

/**
 * A file's answer to GET or HEAD: its headers, the conditional requests
 * (412, 304), a range (206, 416) or the whole content. Shared with WebDAV.
 */
export async function serveFile(ctx: Ctx, engine: Engine, entry: Entry, options: { head: boolean; nameOf: NameOf }): Promise<void> {
  const { head, nameOf } = options;
  const { signal } = ctx.state;
  setEntryHeaders(ctx, entry, nameOf);
  // If-Match and If-Unmodified-Since first: a 412 wins over a 304 (RFC 9110 §13.2.2).
  const { ifMatch, ifUnmodifiedSince } = requestPreconditions(ctx);
  checkPreconditions(entry, { ifMatch, ifUnmodifiedSince });
  if (notModified(ctx)) {
    ctx.status = 304;
    return;
  }
  const range = head ? ({ kind: 'none' } as const) : parseRange(ctx.get('range') || undefined, entry.size);
  if (range.kind === 'unsatisfiable') {
    ctx.set('Content-Range', `bytes */${entry.size}`);
    throw new CallfsError('RANGE_NOT_SATISFIABLE', `range not satisfiable for a ${entry.size}-byte file`);
  }
  if (head) {
    const replicas = await engine.replicasOf(entry);
    if (replicas.length > 0) ctx.set('X-CallFS-Replicas', replicas.join(','));
    ctx.status = 200;
    ctx.length = entry.size;
    return;
  }
  if (range.kind === 'range') {
    const stream = await engine.openContent(entry, { range: range.range, signal });
    ctx.status = 206;
    ctx.set('Content-Range', `bytes ${range.range.start}-${range.range.end}/${entry.size}`);
    sendContent(ctx, stream, range.range.end - range.range.start + 1);
    return;
  }
  const stream = await engine.openContent(entry, { signal });
  ctx.status = 200;
  sendContent(ctx, stream, entry.size);
}
