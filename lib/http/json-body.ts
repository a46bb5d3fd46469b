import type { Context } from 'koa';
import { CallfsError } from '../errors.js';

const MAX_JSON_BYTES = 64 * 1024;

/**
 * Read a small JSON object body (PATCH, link generation). Bodies over 64 KiB
 * are PAYLOAD_TOO_LARGE; malformed JSON or a non-object is BAD_REQUEST.
 */
export async function readJsonBody(ctx: Context): Promise<Record<string, unknown>> {
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > MAX_JSON_BYTES) throw new CallfsError('PAYLOAD_TOO_LARGE', `a JSON body is limited to ${MAX_JSON_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_JSON_BYTES) throw new CallfsError('PAYLOAD_TOO_LARGE', `a JSON body is limited to ${MAX_JSON_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CallfsError('BAD_REQUEST', 'the body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new CallfsError('BAD_REQUEST', 'the body must be a JSON object');
  return value as Record<string, unknown>;
}
