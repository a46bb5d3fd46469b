import { DOMParser, XMLSerializer, type Document, type Element, type Node } from '@xmldom/xmldom';
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { CallfsError } from '../../errors.js';

/**
 * XML for WebDAV: request bodies parsed by @xmldom/xmldom, a namespace-aware
 * DOM parser (property names are namespace + local name whatever prefix a
 * client picks, and a dead property's value is kept as the XML it was sent
 * as); answers written as strings, escaped here.
 */

export const DAV = 'DAV:';

/** A property's name: namespace ('' for none) and local name. */
export interface PropName {
  ns: string;
  name: string;
}

export const propKey = (p: PropName): string => `${p.ns}\u0000${p.name}`;

/** Request bodies (PROPFIND, PROPPATCH, LOCK) are small: more is refused. */
const MAX_XML_BYTES = 1024 * 1024;

/** The request body as text; '' when there is none. */
export async function readXmlBody(ctx: Context): Promise<string> {
  const length = ctx.get('content-length');
  if (length === '0' || (length === '' && ctx.get('transfer-encoding') === '')) return '';
  try {
    return await getRawBody(ctx.req, { limit: MAX_XML_BYTES, encoding: 'utf8', ...(length === '' ? {} : { length }) });
  } catch (err) {
    const type = (err as { type?: unknown }).type;
    if (type === 'entity.too.large') throw new CallfsError('PAYLOAD_TOO_LARGE', `a WebDAV request body is limited to ${MAX_XML_BYTES} bytes`, { cause: err });
    throw new CallfsError('BAD_REQUEST', 'the request body could not be read', { cause: err });
  }
}

/** Parse an XML body: BAD_REQUEST when it is not well-formed or namespace-valid. */
export function parseXml(text: string): Document {
  let doc: Document;
  try {
    doc = new DOMParser({
      onError: (level, message) => {
        if (level !== 'warning') throw new Error(message);
      },
    }).parseFromString(text, 'text/xml');
  } catch {
    throw new CallfsError('BAD_REQUEST', 'the request body is not well-formed XML');
  }
  if (doc.documentElement === null) throw new CallfsError('BAD_REQUEST', 'the request body has no XML element');
  return doc;
}

/** The element children of a node. */
export function elements(node: Node): Element[] {
  const out: Element[] = [];
  for (let n = node.firstChild; n !== null; n = n.nextSibling) if (n.nodeType === n.ELEMENT_NODE) out.push(n as Element);
  return out;
}

export function nameOf(el: Element): PropName {
  return { ns: el.namespaceURI ?? '', name: el.localName ?? el.nodeName };
}

export function isDav(el: Element, name: string): boolean {
  return el.namespaceURI === DAV && el.localName === name;
}

export function davChild(el: Element, name: string): Element | undefined {
  return elements(el).find((c) => isDav(c, name));
}

/** An element as XML text, with the namespace declarations it needs. */
export function serialize(el: Element): string {
  return new XMLSerializer().serializeToString(el);
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

/** A property element with `content`: DAV: ones with the D: prefix, others declaring their namespace. */
export function propElement(p: PropName, content = ''): string {
  const open = p.ns === DAV ? `D:${p.name}` : `${p.name} xmlns="${escapeXml(p.ns)}"`;
  const close = p.ns === DAV ? `D:${p.name}` : p.name;
  return content === '' ? `<${open}/>` : `<${open}>${content}</${close}>`;
}

export const XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n';

/** A DAV:error body naming a precondition (RFC 4918 §16), with hrefs where it has them. */
export function errorBody(condition: string, hrefs: readonly string[] = []): string {
  const inner = hrefs.map((h) => `<D:href>${escapeXml(h)}</D:href>`).join('');
  return `${XML_HEAD}<D:error xmlns:D="DAV:"><D:${condition}${inner === '' ? '/>' : `>${inner}</D:${condition}>`}</D:error>`;
}
