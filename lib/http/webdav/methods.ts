import { Readable } from 'node:stream';
import { CallfsError, isCallfsError } from '../../errors.js';
import type { Entry } from '../../metadata/types.js';
import { baseName, isWithin, parentOf } from '../../paths.js';
import { requestPreconditions } from '../preconditions.js';
import { serveFile } from '../routes/files.js';
import { declaredLength, uploadBody } from '../upload-body.js';
import { assertUnlocked, checkIf } from './conditions.js';
import { assertParentCollection, DavError, entryOrNull, hasBody, hrefOf, pathOfUrl, type DavRequest } from './context.js';
import { copyDeadProperties } from './properties.js';
import { escapeXml } from './xml.js';

export const ALLOWED = 'OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK';

/** OPTIONS: what is served. `MS-Author-Via: DAV` makes Windows and Office use WebDAV rather than FrontPage. */
export function options(r: DavRequest): void {
  r.ctx.set('DAV', '1, 2');
  r.ctx.set('MS-Author-Via', 'DAV');
  r.ctx.set('Allow', ALLOWED);
  r.ctx.set('Accept-Ranges', 'bytes');
  r.ctx.status = 200;
}

/** GET and HEAD: a file as /v1/files serves it; a collection as a small HTML index of its entries. */
export async function get(r: DavRequest, head: boolean): Promise<void> {
  const { engine, nameOf } = r.deps;
  const entry = head ? await engine.stat(r.user, r.path) : await engine.statForRead(r.user, r.path);
  if (entry.type === 'file') return serveFile(r.ctx, engine, entry, { head, nameOf });
  r.ctx.status = 200;
  r.ctx.type = 'text/html; charset=utf-8';
  if (head) return;
  const { items } = await engine.listDirectory(r.user, r.path);
  const title = escapeXml(r.path);
  const link = (e: Entry): string => {
    const name = escapeXml(baseName(e.path) + (e.type === 'directory' ? '/' : ''));
    return `<li><a href="${escapeXml(hrefOf(r.deps, e.path, e.type === 'directory'))}">${name}</a></li>\n`;
  };
  async function* page(): AsyncGenerator<string> {
    yield `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><ul>\n`;
    for await (const e of items) yield link(e);
    yield '</ul></body></html>\n';
  }
  r.ctx.body = Readable.from(page(), { objectMode: false });
}

/** A PUT body from this size on is not read at all when a lock refuses it; a smaller one is, and refused at the commit. */
const EARLY_LOCK_CHECK_BYTES = 1024 * 1024;

/** PUT: create (201) or replace (204) a file; the parent collection must exist (409). */
export async function put(r: DavRequest): Promise<void> {
  if (r.path === '/') throw new DavError(405, 'IS_A_DIRECTORY', 'the root is a collection');
  const submitted = await checkIf(r);
  const existing = await entryOrNull(r, r.path);
  if (existing?.type === 'directory') throw new DavError(405, 'IS_A_DIRECTORY', `${r.path} is a collection`);
  const change = [{ path: r.path, membership: existing === null }];
  // Checked before the commit in any case; before the bytes too when they are many, so that a refusal costs no upload.
  const declared = declaredLength(r.ctx);
  if (declared.length === undefined || declared.length >= EARLY_LOCK_CHECK_BYTES) await assertUnlocked(r, change, submitted);
  const result = await r.deps.engine
    .writeFile(r.user, r.path, uploadBody(r.ctx.req), {
      mustCreate: false,
      noParents: true,
      ...declared,
      ...requestPreconditions(r.ctx),
      // A lock taken while the bytes streamed in counts too.
      beforeCommit: () => assertUnlocked(r, change, submitted),
      signal: r.ctx.state.signal,
    })
    .catch((err: unknown) => {
      // RFC 4918 §9.7.1: no parent collection is a conflict, not a missing resource.
      if (isCallfsError(err, 'FILE_NOT_FOUND')) throw new DavError(409, 'FILE_NOT_FOUND', `the parent collection of ${r.path} does not exist`);
      throw err;
    });
  if (result.entry.etag !== null) r.ctx.set('ETag', `"${result.entry.etag}"`);
  r.ctx.status = result.created ? 201 : 204;
}

/** DELETE: a file, or a collection with its whole tree (a big tree finishes in a tree job; it is gone from the namespace at once). */
export async function del(r: DavRequest): Promise<void> {
  if (r.path === '/') throw new CallfsError('PERMISSION_DENIED', 'the root cannot be deleted');
  const submitted = await checkIf(r);
  const entry = await r.deps.engine.stat(r.user, r.path);
  await assertUnlocked(r, [{ path: r.path, membership: true, deep: entry.type === 'directory' }], submitted);
  await r.deps.engine.remove(r.user, r.path, { recursive: true, ...requestPreconditions(r.ctx), signal: r.ctx.state.signal });
  await r.deps.dav.removeLocksAt(r.path);
  r.ctx.status = 204;
}

/** MKCOL: a new collection (201); something there already → 405; no parent → 409; a body → 415. */
export async function mkcol(r: DavRequest): Promise<void> {
  if (hasBody(r.ctx)) throw new CallfsError('UNSUPPORTED_MEDIA_TYPE', 'MKCOL takes no request body');
  const submitted = await checkIf(r);
  if ((await entryOrNull(r, r.path)) !== null) throw new DavError(405, 'FILE_ALREADY_EXISTS', `${r.path} exists`);
  await assertParentCollection(r, r.path, parentOf(r.path));
  await assertUnlocked(r, [{ path: r.path, membership: true }], submitted);
  const made = await r.deps.engine.makeDirectory(r.user, r.path, { signal: r.ctx.state.signal });
  if (!made.created) throw new DavError(405, 'FILE_ALREADY_EXISTS', `${r.path} exists`);
  r.ctx.status = 201;
}

/** Destination, Overwrite and Depth of a COPY or MOVE, checked. */
function transferHeaders(r: DavRequest, depths: readonly string[]): { dest: string; overwrite: boolean; depth: string } {
  const destination = r.ctx.get('destination');
  if (destination === '') throw new CallfsError('BAD_REQUEST', `${r.ctx.method} needs a Destination header`);
  const dest = pathOfUrl(r, destination);
  if (dest === null) throw new DavError(502, 'BAD_REQUEST', 'the Destination is not in this server\u2019s WebDAV tree');
  const overwrite = (r.ctx.get('overwrite').trim() || 'T').toUpperCase();
  if (overwrite !== 'T' && overwrite !== 'F') throw new CallfsError('BAD_REQUEST', 'Overwrite is T or F');
  const depth = r.ctx.get('depth').trim().toLowerCase() || 'infinity';
  if (!depths.includes(depth)) throw new CallfsError('BAD_REQUEST', `${r.ctx.method} takes Depth ${depths.join(' or ')}`);
  if (dest === r.path) throw new DavError(403, 'BAD_REQUEST', 'the source and the destination are the same');
  return { dest, overwrite: overwrite === 'T', depth };
}

/**
 * The checks COPY and MOVE share: the source, the destination's parent (409),
 * an existing destination and Overwrite (412), the If header. The source,
 * what is at the destination, and the lock tokens submitted.
 */
async function prepareTransfer(r: DavRequest, dest: string, overwrite: boolean): Promise<{ source: Entry; existing: Entry | null; submitted: Set<string> }> {
  const source = await r.deps.engine.stat(r.user, r.path);
  if (source.type === 'directory' && isWithin(dest, r.path)) throw new DavError(403, 'BAD_REQUEST', 'a collection cannot be copied or moved into itself');
  const submitted = await checkIf(r);
  await assertParentCollection(r, dest, parentOf(dest));
  const existing = await entryOrNull(r, dest);
  if (existing !== null && !overwrite) throw new DavError(412, 'PRECONDITION_FAILED', `${dest} exists and Overwrite is F`);
  return { source, existing, submitted };
}

/** Depth 0 | infinity. A file's copy is a new entry naming the same blob on the CAS (no byte is copied); dead properties follow. */
export async function copy(r: DavRequest): Promise<void> {
  const { dest, overwrite, depth } = transferHeaders(r, ['0', 'infinity']);
  const { source, existing, submitted } = await prepareTransfer(r, dest, overwrite);
  await assertUnlocked(r, [{ path: dest, membership: true, deep: existing?.type === 'directory' }], submitted);
  const { engine } = r.deps;
  const signal = r.ctx.state.signal;
  if (existing !== null) await engine.remove(r.user, dest, { recursive: true, signal });
  const pairs: { from: string; to: string }[] = [];
  const one = async (from: Entry, to: string): Promise<void> => {
    const made = from.type === 'file'
      ? await engine.copyFile(r.user, from.path, to, { signal })
      : await engine.makeDirectory(r.user, to, { mode: from.mode & 0o7777, signal });
    pairs.push({ from: from.id, to: made.entry.id });
    if (pairs.length >= 500) await copyDeadProperties(r, pairs.splice(0));
  };
  await one(source, dest);
  if (source.type === 'directory' && depth === 'infinity') {
    const { items } = await engine.listTree(r.user, r.path, { maxDepth: Number.MAX_SAFE_INTEGER });
    for await (const item of items) await one(item, dest + item.path.slice(r.path === '/' ? 0 : r.path.length));
  }
  await copyDeadProperties(r, pairs);
  r.ctx.status = existing === null ? 201 : 204;
}

/** MOVE: the engine's move (a whole tree in one transaction); the source's locks end, dead properties go with the entry. */
export async function move(r: DavRequest): Promise<void> {
  if (r.path === '/') throw new CallfsError('PERMISSION_DENIED', 'the root cannot be moved');
  const { dest, overwrite } = transferHeaders(r, ['infinity']);
  const { source, existing, submitted } = await prepareTransfer(r, dest, overwrite);
  await assertUnlocked(
    r,
    [
      { path: r.path, membership: true, deep: source.type === 'directory' },
      { path: dest, membership: true, deep: existing?.type === 'directory' },
    ],
    submitted,
  );
  const { engine } = r.deps;
  const signal = r.ctx.state.signal;
  // A file replaces a file in one step; anything else at the destination is deleted first (RFC 4918 §9.9.3).
  const replaceInPlace = existing !== null && existing.type === 'file' && source.type === 'file';
  if (existing !== null && !replaceInPlace) await engine.remove(r.user, dest, { recursive: true, signal });
  await engine.move(r.user, r.path, dest, { overwrite: replaceInPlace, signal });
  await r.deps.dav.removeLocksAt(r.path);
  r.ctx.status = existing === null ? 201 : 204;
}
