import { Readable } from 'node:stream';
import mime from 'mime-types';
import { isRoot, mayAccess } from '../../auth/permissions.js';
import type { DavLock, DavProperty, DavPropertyChange, Entry } from '../../metadata/types.js';
import { CallfsError } from '../../errors.js';
import { assertUnlocked, checkIf, covers, locksCovering } from './conditions.js';
import { DavError, hrefOf, type DavRequest } from './context.js';
import { DAV, davChild, elements, escapeXml, isDav, nameOf, parseXml, propElement, propKey, readXmlBody, serialize, XML_HEAD, type PropName } from './xml.js';

/** What a PROPFIND asks for (RFC 4918 §9.1): everything, the names only, or these properties. */
type PropRequest = { kind: 'allprop'; include: PropName[] } | { kind: 'propname' } | { kind: 'prop'; names: PropName[] };

const dav = (name: string): PropName => ({ ns: DAV, name });

/** The live properties: computed from the entry, never stored; PROPPATCH may not change them. */
const LIVE = ['creationdate', 'displayname', 'getcontentlength', 'getcontenttype', 'getetag', 'getlastmodified', 'resourcetype', 'supportedlock', 'lockdiscovery', 'quota-available-bytes', 'quota-used-bytes'];
const LIVE_KEYS = new Set(LIVE.map((n) => propKey(dav(n))));
/** RFC 4331: the quota properties are not part of allprop. */
const NOT_IN_ALLPROP = new Set(['quota-available-bytes', 'quota-used-bytes']);

const SUPPORTED_LOCK = ['exclusive', 'shared']
  .map((scope) => `<D:lockentry><D:lockscope><D:${scope}/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>`)
  .join('');

/** The DAV:activelock of a lock (LOCK answers and DAV:lockdiscovery). */
export function activeLock(r: Pick<DavRequest, 'deps'>, lock: DavLock): string {
  const left = Math.max(0, Math.ceil((lock.expiresAt.getTime() - Date.now()) / 1000));
  return (
    '<D:activelock><D:locktype><D:write/></D:locktype>' +
    `<D:lockscope><D:${lock.shared ? 'shared' : 'exclusive'}/></D:lockscope>` +
    `<D:depth>${lock.deep ? 'infinity' : '0'}</D:depth>${lock.owner}` +
    `<D:timeout>Second-${left}</D:timeout>` +
    `<D:locktoken><D:href>${escapeXml(lock.token)}</D:href></D:locktoken>` +
    `<D:lockroot><D:href>${escapeXml(hrefOf(r.deps, lock.path, lock.deep))}</D:href></D:lockroot></D:activelock>`
  );
}

/** What rendering a batch of entries needs beyond the entries: dead properties, locks, quota. */
interface Extras {
  dead: Map<string, DavProperty[]>;
  locks: (entry: Entry) => DavLock[];
  quota: { usedBytes: number; freeBytes: number } | null;
}

/** The live properties an entry has, as XML content by name ('' for an empty element). */
function liveProps(r: DavRequest, entry: Entry, extras: Extras): Map<string, string> {
  const props = new Map<string, string>();
  const isDir = entry.type === 'directory';
  props.set('creationdate', entry.createdAt.toISOString());
  props.set('displayname', escapeXml(entry.name));
  if (!isDir) {
    props.set('getcontentlength', String(entry.size));
    props.set('getcontenttype', escapeXml(mime.lookup(entry.name) || 'application/octet-stream'));
    if (entry.etag !== null) props.set('getetag', escapeXml(`"${entry.etag}"`));
  }
  props.set('getlastmodified', entry.mtime.toUTCString());
  props.set('resourcetype', isDir ? '<D:collection/>' : '');
  props.set('supportedlock', SUPPORTED_LOCK);
  props.set('lockdiscovery', extras.locks(entry).map((l) => activeLock(r, l)).join(''));
  if (isDir && extras.quota !== null) {
    props.set('quota-available-bytes', String(extras.quota.freeBytes));
    props.set('quota-used-bytes', String(extras.quota.usedBytes));
  }
  return props;
}

function propstat(props: string[], status: string): string {
  return props.length === 0 ? '' : `<D:propstat><D:prop>${props.join('')}</D:prop><D:status>HTTP/1.1 ${status}</D:status></D:propstat>`;
}

/** One DAV:response of a PROPFIND. */
function responseFor(r: DavRequest, entry: Entry, request: PropRequest, extras: Extras): string {
  const live = liveProps(r, entry, extras);
  const dead = extras.dead.get(entry.id) ?? [];
  const found: string[] = [];
  const missing: string[] = [];
  if (request.kind === 'propname') {
    for (const name of live.keys()) found.push(propElement(dav(name)));
    for (const p of dead) found.push(propElement(p));
  } else if (request.kind === 'allprop') {
    for (const [name, content] of live) if (!NOT_IN_ALLPROP.has(name)) found.push(propElement(dav(name), content));
    for (const p of dead) found.push(p.value);
    for (const p of request.include) {
      const content = p.ns === DAV && NOT_IN_ALLPROP.has(p.name) ? live.get(p.name) : undefined;
      if (content !== undefined) found.push(propElement(p, content));
    }
  } else {
    for (const p of request.names) {
      const content = p.ns === DAV ? live.get(p.name) : undefined;
      const stored = content === undefined ? dead.find((d) => d.ns === p.ns && d.name === p.name) : undefined;
      if (content !== undefined) found.push(propElement(p, content));
      else if (stored !== undefined) found.push(stored.value);
      else missing.push(propElement(p));
    }
  }
  const href = escapeXml(hrefOf(r.deps, entry.path, entry.type === 'directory'));
  return `<D:response><D:href>${href}</D:href>${propstat(found, '200 OK')}${propstat(missing, '404 Not Found')}</D:response>\n`;
}

function parsePropfind(body: string): PropRequest {
  if (body.trim() === '') return { kind: 'allprop', include: [] };
  const root = parseXml(body).documentElement;
  if (root === null || !isDav(root, 'propfind')) throw new CallfsError('BAD_REQUEST', 'a PROPFIND body is a DAV:propfind element');
  const children = elements(root);
  const prop = children.find((c) => isDav(c, 'prop'));
  if (children.some((c) => isDav(c, 'propname'))) return { kind: 'propname' };
  if (children.some((c) => isDav(c, 'allprop'))) {
    const include = davChild(root, 'include');
    return { kind: 'allprop', include: include === undefined ? [] : elements(include).map(nameOf) };
  }
  if (prop === undefined) throw new CallfsError('BAD_REQUEST', 'a DAV:propfind names DAV:prop, DAV:allprop or DAV:propname');
  return { kind: 'prop', names: elements(prop).map(nameOf) };
}

/** Entries rendered per batch (one query for their dead properties). */
const BATCH = 500;

/**
 * PROPFIND, Depth 0 or 1. A directory's children are streamed a batch at a
 * time, so a listing of any size is never held in memory. Depth infinity
 * (and no Depth, which means infinity) is refused, as RFC 4918 §9.1 allows:
 * a whole tree in one answer is a denial of service waiting to happen.
 */
export async function propfind(r: DavRequest): Promise<void> {
  const depth = r.ctx.get('depth').trim().toLowerCase();
  if (depth !== '' && depth !== '0' && depth !== '1' && depth !== 'infinity') throw new CallfsError('BAD_REQUEST', 'Depth is 0, 1 or infinity');
  if (depth !== '0' && depth !== '1') {
    throw new DavError(403, 'BAD_REQUEST', 'PROPFIND with Depth: infinity is not served; ask for Depth: 0 or 1', `${XML_HEAD}<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>`);
  }
  const request = parsePropfind(await readXmlBody(r.ctx));
  const { engine, dav: store } = r.deps;
  const entry = await engine.stat(r.user, r.path);
  const listing = depth === '1' && entry.type === 'directory' ? await engine.listDirectory(r.user, r.path) : null;
  const wants = (name: string): boolean => request.kind !== 'prop' || request.names.some((p) => p.ns === DAV && p.name === name);
  const wantsDead = request.kind !== 'prop' || request.names.some((p) => !(p.ns === DAV && LIVE.includes(p.name)));
  const quota = wants('quota-available-bytes') || wants('quota-used-bytes') || (request.kind === 'allprop' && request.include.length > 0)
    ? await r.deps.quota?.().catch(() => null) ?? null
    : null;
  // Deep locks over the directory cover every child; a child's own locks are among those below it.
  const around = wants('lockdiscovery') ? await locksCovering(r, r.path) : [];
  const below = wants('lockdiscovery') && listing !== null ? await store.locksBelow(r.path) : [];
  const locks = (e: Entry): DavLock[] => [...around, ...below].filter((l) => covers(l, e.path));
  const extrasFor = async (batch: Entry[]): Promise<Extras> => ({
    dead: wantsDead ? await store.getProperties(batch.map((e) => e.id)) : new Map(),
    locks,
    quota,
  });
  const self = responseFor(r, entry, request, await extrasFor([entry]));
  async function* chunks(): AsyncGenerator<string> {
    yield `${XML_HEAD}<D:multistatus xmlns:D="DAV:">\n${self}`;
    if (listing !== null) {
      let batch: Entry[] = [];
      const flush = async (): Promise<string> => {
        const extras = await extrasFor(batch);
        const out = batch.map((e) => responseFor(r, e, request, extras)).join('');
        batch = [];
        return out;
      };
      for await (const child of listing.items) {
        batch.push(child);
        if (batch.length >= BATCH) yield await flush();
      }
      if (batch.length > 0) yield await flush();
    }
    yield '</D:multistatus>\n';
  }
  r.ctx.status = 207;
  r.ctx.type = 'application/xml; charset=utf-8';
  r.ctx.body = Readable.from(chunks(), { objectMode: false });
}

/**
 * PROPPATCH: set and remove dead properties, in document order, all or none.
 * Live properties are protected: a request naming one changes nothing (403
 * for it, 424 for the rest). Needs write permission on the entry, as a
 * chmod-free metadata change would in POSIX (setxattr).
 */
export async function proppatch(r: DavRequest): Promise<void> {
  const submitted = await checkIf(r);
  const entry = await r.deps.engine.stat(r.user, r.path);
  if (!isRoot(r.user) && !mayAccess(r.user, { ...entry, path: r.path }, 'w')) throw new CallfsError('PERMISSION_DENIED', `no write permission on ${r.path}`);
  const body = await readXmlBody(r.ctx);
  const root = body.trim() === '' ? null : parseXml(body).documentElement;
  if (root === null || !isDav(root, 'propertyupdate')) throw new CallfsError('BAD_REQUEST', 'a PROPPATCH body is a DAV:propertyupdate element');
  const changes: DavPropertyChange[] = [];
  for (const instruction of elements(root)) {
    const remove = isDav(instruction, 'remove');
    if (!remove && !isDav(instruction, 'set')) continue;
    const prop = davChild(instruction, 'prop');
    for (const el of prop === undefined ? [] : elements(prop)) changes.push({ ...nameOf(el), value: remove ? null : serialize(el) });
  }
  await assertUnlocked(r, [{ path: r.path }], submitted);
  const refused = changes.filter((c) => LIVE_KEYS.has(propKey(c)));
  if (refused.length === 0) await r.deps.dav.patchProperties(entry.id, changes);
  const rendered = (cs: DavPropertyChange[]) => cs.map((c) => propElement(c));
  const accepted = changes.filter((c) => !LIVE_KEYS.has(propKey(c)));
  const body207 = refused.length === 0
    ? propstat(rendered(changes), '200 OK')
    : propstat(rendered(refused), '403 Forbidden') + propstat(rendered(accepted), '424 Failed Dependency');
  r.ctx.status = 207;
  r.ctx.type = 'application/xml; charset=utf-8';
  const href = escapeXml(hrefOf(r.deps, r.path, entry.type === 'directory'));
  r.ctx.body = `${XML_HEAD}<D:multistatus xmlns:D="DAV:"><D:response><D:href>${href}</D:href>${body207}</D:response></D:multistatus>\n`;
}

/** The dead properties of `fromIds` copied onto `toIds` (COPY), pairwise. */
export async function copyDeadProperties(r: DavRequest, pairs: readonly { from: string; to: string }[]): Promise<void> {
  if (pairs.length === 0) return;
  const props = await r.deps.dav.getProperties(pairs.map((p) => p.from));
  for (const { from, to } of pairs) {
    const list = props.get(from);
    if (list !== undefined) await r.deps.dav.patchProperties(to, list.map((p) => ({ ns: p.ns, name: p.name, value: p.value })));
  }
}
