import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { S3Error } from './errors.js';

/** S3's XML: answers built and request bodies parsed by fast-xml-parser. */

export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false, processEntities: true });
const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: true, isArray: (name) => name === 'Part' || name === 'Object' });

/** Answer `status` with the XML document `{ root: body }`. */
export function sendXml(ctx: Context, root: string, body: Record<string, unknown>, status = 200): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ [root]: { '@_xmlns': S3_NS, ...body } }) as string}`;
}

export function errorXml(code: string, message: string, resource: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ Error: { Code: code, Message: message, Resource: resource, RequestId: requestId } }) as string}`;
}

const MAX_XML_BYTES = 1024 * 1024;

/** A small XML request body (CompleteMultipartUpload, DeleteObjects), parsed; MalformedXML when it is not. */
export async function readXml(ctx: Context): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await getRawBody(ctx.req, { limit: MAX_XML_BYTES, encoding: 'utf8' });
  } catch {
    throw new S3Error('MalformedXML', 400, 'the XML body could not be read (at most 1 MiB)');
  }
  try {
    const parsed = parser.parse(text, true) as Record<string, unknown>;
    return parsed;
  } catch {
    throw new S3Error('MalformedXML', 400, 'the XML you provided was not well-formed');
  }
}
