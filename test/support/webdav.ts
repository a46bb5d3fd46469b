import type { Readable } from 'node:stream';
import { expect } from 'chai';
import type { TestServer } from './callfs.js';
import { request, type TestResponse } from './http.js';
import { KEYS } from './callfs.js';

/**
 * WebDAV from the tests' side: requests under the server's prefix with Basic
 * credentials, and a small namespace-aware XML reader for what comes back
 * (multistatus, lockdiscovery, error bodies). The reader is written here, not
 * taken from the server, so that the tests do not share the server's mistakes.
 */

export const DAV = 'DAV:';

export type User = keyof typeof KEYS;

/** `Authorization: Basic …` for a test user (its API key as the password). */
export function basic(user: string, password: string = KEYS[user as User]): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** "/a b/ü" → "/a%20b/%C3%BC": a CallFS path as a URL path, each segment percent-encoded. */
export function encodeSegments(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

export interface DavOptions {
  /** Basic credentials of this user (default alice); null: no Authorization header. */
  as?: User | null;
  headers?: Record<string, string>;
  body?: Buffer | string | Readable;
}

/** A client for one server: `dav(method, path)` where path is a CallFS path (encoded here). */
export function davClient(baseUrl: string, ca: Buffer, prefix = '/webdav') {
  const url = (path: string): string => `${baseUrl}${prefix}${encodeSegments(path)}`;
  const dav = (method: string, path: string, options: DavOptions = {}): Promise<TestResponse> => {
    const headers: Record<string, string> = {};
    const as = options.as === undefined ? 'alice' : options.as;
    if (as !== null) headers.authorization = basic(as);
    Object.assign(headers, options.headers);
    return request(url(path), { method, headers, ca, ...(options.body === undefined ? {} : { body: options.body }) });
  };
  return { url, dav };
}

// ---------------------------------------------------------------- XML reading

export interface XmlElement {
  /** Namespace URI ('' for none). */
  ns: string;
  local: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated text directly inside this element. */
  text: string;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, e: string) => {
    if (e.startsWith('#x') || e.startsWith('#X')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    const v = ENTITIES[e];
    if (v === undefined) throw new Error(`unknown XML entity ${whole}`);
    return v;
  });
}

/**
 * Parse an XML document into elements with resolved namespaces. Strict enough
 * for tests: mismatched tags, undeclared prefixes and trailing junk throw.
 */
export function parseXml(xml: string): XmlElement {
  const token = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[([\s\S]*?)\]\]>|<!DOCTYPE[^>]*>|<\/([^\s>]+)\s*>|<([^\s/>]+)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|([^<]+)/gy;
  const stack: { el: XmlElement; qname: string; scope: Map<string, string> }[] = [];
  let root: XmlElement | undefined;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = token.exec(xml)) !== null) {
    last = token.lastIndex;
    const [whole, cdata, close, open, attrText, selfClose, text] = m;
    const top = stack[stack.length - 1];
    if (whole.startsWith('<!--') || whole.startsWith('<?') || whole.startsWith('<!DOCTYPE')) continue;
    if (cdata !== undefined) {
      if (top === undefined) throw new Error('CDATA outside the root element');
      top.el.text += cdata;
    } else if (text !== undefined) {
      if (top === undefined) {
        if (text.trim() !== '') throw new Error(`text outside the root element: ${JSON.stringify(text.slice(0, 40))}`);
        continue;
      }
      top.el.text += decodeEntities(text);
    } else if (close !== undefined) {
      if (top === undefined || top.qname !== close) throw new Error(`mismatched </${close}>`);
      stack.pop();
    } else if (open !== undefined) {
      if (root !== undefined && top === undefined) throw new Error('a second root element');
      const scope = new Map(top?.scope ?? [['xml', 'http://www.w3.org/XML/1998/namespace']]);
      const rawAttrs: [string, string][] = [];
      for (const a of (attrText ?? '').matchAll(/([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        const name = a[1] as string;
        const value = decodeEntities(a[2] ?? a[3] ?? '');
        if (name === 'xmlns') scope.set('', value);
        else if (name.startsWith('xmlns:')) scope.set(name.slice(6), value);
        else rawAttrs.push([name, value]);
      }
      const colon = open.indexOf(':');
      const prefix = colon < 0 ? '' : open.slice(0, colon);
      const ns = scope.get(prefix);
      if (ns === undefined && prefix !== '') throw new Error(`undeclared namespace prefix ${prefix}`);
      const el: XmlElement = { ns: ns ?? '', local: colon < 0 ? open : open.slice(colon + 1), attrs: Object.fromEntries(rawAttrs), children: [], text: '' };
      if (top === undefined) root = el;
      else top.el.children.push(el);
      if (selfClose !== '/') stack.push({ el, qname: open, scope });
    }
  }
  if (last !== xml.length) throw new Error(`unparsable XML at offset ${last}: ${JSON.stringify(xml.slice(last, last + 40))}`);
  if (stack.length > 0) throw new Error(`unclosed <${stack[stack.length - 1]?.qname}>`);
  if (root === undefined) throw new Error('no root element');
  return root;
}

/** Children named {ns}local. */
export function children(el: XmlElement, ns: string, local: string): XmlElement[] {
  return el.children.filter((c) => c.ns === ns && c.local === local);
}

/** The first child named {ns}local, or undefined. */
export function child(el: XmlElement | undefined, ns: string, local: string): XmlElement | undefined {
  return el?.children.find((c) => c.ns === ns && c.local === local);
}

/** Every descendant (self included) named {ns}local, document order. */
export function descendants(el: XmlElement, ns: string, local: string): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement): void => {
    if (e.ns === ns && e.local === local) out.push(e);
    e.children.forEach(walk);
  };
  walk(el);
  return out;
}

/** The code of an HTTP status line ("HTTP/1.1 404 Not Found" → 404). */
export function statusCode(line: string | undefined): number {
  const m = /^\s*HTTP\/\d(?:\.\d)?\s+(\d{3})/.exec(line ?? '');
  if (m === null) throw new Error(`not a status line: ${JSON.stringify(line)}`);
  return Number(m[1]);
}

export interface PropResult {
  status: number;
  el: XmlElement;
}

export interface DavResponse {
  /** The href as sent (percent-encoded). */
  href: string;
  /** The href decoded to a path. */
  path: string;
  /** The response-level status, when the server gave one instead of propstats. */
  status?: number;
  /** Properties by Clark name ("{DAV:}getetag"), with the status of their propstat. */
  props: Map<string, PropResult>;
  el: XmlElement;
}

/** "{ns}local" */
export const clark = (ns: string, local: string): string => `{${ns}}${local}`;

/** Parse a 207 body into its responses. Throws when it is not a DAV:multistatus. */
export function parseMultistatus(xml: string): DavResponse[] {
  const root = parseXml(xml);
  if (root.ns !== DAV || root.local !== 'multistatus') throw new Error(`not a DAV:multistatus but {${root.ns}}${root.local}`);
  return children(root, DAV, 'response').map((r) => {
    const hrefs = children(r, DAV, 'href');
    const href = (hrefs[0]?.text ?? '').trim();
    const props = new Map<string, PropResult>();
    for (const ps of children(r, DAV, 'propstat')) {
      const status = statusCode(child(ps, DAV, 'status')?.text);
      for (const p of child(ps, DAV, 'prop')?.children ?? []) props.set(clark(p.ns, p.local), { status, el: p });
    }
    const statusEl = child(r, DAV, 'status');
    const out: DavResponse = { href, path: decodeURIComponent(href.replace(/^https?:\/\/[^/]+/, '')), props, el: r };
    if (statusEl !== undefined) out.status = statusCode(statusEl.text);
    return out;
  });
}

/** The text of a DAV: property that came back 200, or undefined. */
export function propText(r: DavResponse | undefined, local: string, ns = DAV): string | undefined {
  const p = r?.props.get(clark(ns, local));
  return p !== undefined && p.status === 200 ? p.el.text.trim() : undefined;
}

/** A PROPFIND body asking for these DAV: properties (and extra ones, as {ns}local). */
export function propfindBody(davProps: string[], extra: { ns: string; local: string }[] = []): string {
  const others = extra.map((p, i) => `<x${i}:${p.local} xmlns:x${i}="${p.ns}"/>`).join('');
  return `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>${davProps.map((p) => `<D:${p}/>`).join('')}${others}</D:prop></D:propfind>`;
}

/** A LOCK body (exclusive or shared write lock) with an owner. */
export function lockBody(scope: 'exclusive' | 'shared', owner = 'callfs-tests'): string {
  return `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:${scope}/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>${owner}</D:href></D:owner></D:lockinfo>`;
}

/** The token of a LOCK answer: the Lock-Token header without its angle brackets. */
export function lockToken(res: TestResponse): string {
  const header = res.headers['lock-token'];
  const m = /^\s*<([^>]+)>\s*$/.exec(String(header ?? ''));
  if (m === null) throw new Error(`no Lock-Token header in the ${res.status} answer: ${res.text.slice(0, 300)}`);
  return m[1] as string;
}

/**
 * The requests a WebDAV test makes of the server `getServer()` returns (set
 * in a before hook): WebDAV as a user (Basic), the /v1 API as a user
 * (Bearer, to check what WebDAV did through the other door), and PROPFIND,
 * MKCOL and PUT that expect success.
 */
export function davSession(getServer: () => TestServer) {
  const dav = (method: string, path: string, options: DavOptions = {}): Promise<TestResponse> => {
    const server = getServer();
    return davClient(server.url, server.ca).dav(method, path, options);
  };
  const v1 = (method: string, path: string, options: { as?: User; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<TestResponse> => {
    const server = getServer();
    return request(`${server.url}${path}`, { method, token: KEYS[options.as ?? 'alice'], ca: server.ca, ...(options.body === undefined ? {} : { body: options.body }), ...(options.headers === undefined ? {} : { headers: options.headers }) });
  };
  const propfind = async (path: string, depth: string, body?: string, as: User = 'alice'): Promise<DavResponse[]> => {
    const res = await dav('PROPFIND', path, { as, headers: { depth, 'content-type': 'application/xml' }, ...(body === undefined ? {} : { body }) });
    expect(res.status, `PROPFIND ${path} Depth ${depth}: ${res.text.slice(0, 300)}`).to.equal(207);
    expect(String(res.headers['content-type'])).to.match(/^(application|text)\/xml/);
    return parseMultistatus(res.text);
  };
  const mkcol = async (path: string): Promise<void> => {
    const res = await dav('MKCOL', path);
    expect(res.status, `MKCOL ${path}: ${res.text.slice(0, 200)}`).to.equal(201);
  };
  const put = async (path: string, body: string | Buffer, as: User = 'alice'): Promise<TestResponse> => {
    const res = await dav('PUT', path, { as, body });
    expect(res.status, `PUT ${path}: ${res.text.slice(0, 200)}`).to.be.oneOf([201, 204]);
    return res;
  };
  /** The WebDAV URL of a path (for Destination headers). */
  const url = (path: string): string => {
    const server = getServer();
    return davClient(server.url, server.ca).url(path);
  };
  return { dav, v1, propfind, mkcol, put, url };
}
