import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { isRoot, mayAccess } from '../../auth/permissions.js';
import type { DavLock } from '../../metadata/types.js';
import { CallfsError } from '../../errors.js';
import { parentOf } from '../../paths.js';
import { assertUnlocked, checkIf, covers } from './conditions.js';
import { assertParentCollection, DavError, entryOrNull, hrefOf, type DavRequest } from './context.js';
import { activeLock } from './properties.js';
import { davChild, elements, errorBody, isDav, parseXml, readXmlBody, serialize, XML_HEAD } from './xml.js';

/** A lock's timeout when the client names none, and the longest it may have (seconds). */
export const DEFAULT_LOCK_SECONDS = 600;
export const MAX_LOCK_SECONDS = 3600;

/** `Timeout: Second-N, Infinite`: the first value understood, capped (RFC 4918 §10.7). */
export function lockTimeout(header: string): number {
  for (const part of header.split(',').map((p) => p.trim().toLowerCase())) {
    if (part === 'infinite') return MAX_LOCK_SECONDS;
    const m = /^second-(\d+)$/.exec(part);
    if (m !== null) return Math.min(MAX_LOCK_SECONDS, Math.max(1, Number(m[1])));
  }
  return DEFAULT_LOCK_SECONDS;
}

function lockAnswer(r: DavRequest, locks: readonly DavLock[], status: number): void {
  r.ctx.status = status;
  r.ctx.type = 'application/xml; charset=utf-8';
  r.ctx.body = `${XML_HEAD}<D:prop xmlns:D="DAV:"><D:lockdiscovery>${locks.map((l) => activeLock(r, l)).join('')}</D:lockdiscovery></D:prop>\n`;
}

/** A lock taken by another user is theirs: it cannot be refreshed or removed by this one (root excepted). */
const ownsLock = (r: DavRequest, lock: DavLock): boolean => lock.uid === r.user.uid || isRoot(r.user);

/**
 * LOCK: a new exclusive or shared write lock on a resource (Depth 0, or
 * infinity for a collection's tree), or, with no body, a refresh of the
 * locks whose tokens the If header names. A LOCK of a path with nothing at
 * it creates an empty file there (RFC 4918 §9.10.4). The locks live in the
 * metadata store, so every instance of a cluster sees and honours them.
 */
export async function lock(r: DavRequest): Promise<void> {
  const timeoutSeconds = lockTimeout(r.ctx.get('timeout'));
  const body = await readXmlBody(r.ctx);
  const submitted = await checkIf(r);
  if (body.trim() === '') {
    if (submitted.size === 0) throw new CallfsError('BAD_REQUEST', 'a LOCK without a body refreshes a lock: name its token in an If header');
    const refreshed: DavLock[] = [];
    for (const token of submitted) {
      const held = await r.deps.dav.getLock(token);
      if (held === null || !covers(held, r.path) || !ownsLock(r, held)) continue;
      const renewed = await r.deps.dav.refreshLock(token, timeoutSeconds);
      if (renewed !== null) refreshed.push(renewed);
    }
    if (refreshed.length === 0) throw new DavError(412, 'PRECONDITION_FAILED', 'no lock of this resource was named', errorBody('lock-token-matches-request-uri'));
    lockAnswer(r, refreshed, 200);
    return;
  }
  const root = parseXml(body).documentElement;
  if (root === null || !isDav(root, 'lockinfo')) throw new CallfsError('BAD_REQUEST', 'a LOCK body is a DAV:lockinfo element');
  const scope = davChild(root, 'lockscope');
  const shared = scope !== undefined && elements(scope).some((e) => isDav(e, 'shared'));
  if (scope === undefined || (!shared && !elements(scope).some((e) => isDav(e, 'exclusive')))) throw new CallfsError('BAD_REQUEST', 'DAV:lockscope must be exclusive or shared');
  const type = davChild(root, 'locktype');
  if (type === undefined || !elements(type).some((e) => isDav(e, 'write'))) throw new CallfsError('BAD_REQUEST', 'DAV:locktype must be write');
  const owner = davChild(root, 'owner');
  const depth = r.ctx.get('depth').trim().toLowerCase() || 'infinity';
  if (depth !== '0' && depth !== 'infinity') throw new CallfsError('BAD_REQUEST', 'a LOCK has Depth 0 or infinity');

  let entry = await entryOrNull(r, r.path);
  let created = false;
  if (entry === null) {
    await assertParentCollection(r, r.path, parentOf(r.path));
    await assertUnlocked(r, [{ path: r.path, membership: true }], submitted);
    const made = await r.deps.engine.writeFile(r.user, r.path, Readable.from([]), { mustCreate: true, length: 0, signal: r.ctx.state.signal });
    entry = made.entry;
    created = true;
  } else if (!isRoot(r.user) && !mayAccess(r.user, { ...entry, path: r.path }, 'w')) {
    throw new CallfsError('PERMISSION_DENIED', `no write permission on ${r.path}`);
  }
  const wanted = {
    token: `urn:uuid:${randomUUID()}`,
    path: r.path,
    deep: depth === 'infinity' && entry.type === 'directory',
    shared,
    owner: owner === undefined ? '' : serialize(owner),
    uid: r.user.uid,
    timeoutSeconds,
  };
  const { lock: taken, conflicts } = await r.deps.dav.createLock(wanted);
  if (taken === null) {
    const hrefs = [...new Set(conflicts.map((c) => hrefOf(r.deps, c.path, c.deep)))];
    throw new DavError(423, 'LOCKED', `${r.path} is locked`, errorBody('no-conflicting-lock', hrefs));
  }
  r.ctx.set('Lock-Token', `<${taken.token}>`);
  lockAnswer(r, [taken], created ? 201 : 200);
}

/** UNLOCK: remove the lock whose token the Lock-Token header names (it must cover the request's resource). */
export async function unlock(r: DavRequest): Promise<void> {
  const token = /^\s*<([^>]+)>\s*$/.exec(r.ctx.get('lock-token'))?.[1];
  if (token === undefined) throw new CallfsError('BAD_REQUEST', 'UNLOCK needs a Lock-Token header: <token>');
  const held = await r.deps.dav.getLock(token);
  if (held === null || !covers(held, r.path)) throw new DavError(409, 'PRECONDITION_FAILED', 'no such lock on this resource', errorBody('lock-token-matches-request-uri'));
  if (!ownsLock(r, held)) throw new CallfsError('PERMISSION_DENIED', 'the lock was taken by another user');
  await r.deps.dav.removeLock(token);
  r.ctx.status = 204;
}
