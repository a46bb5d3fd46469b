import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { CallfsError } from '../errors.js';

const MAX_JSON_BYTES = 64 * 1024;

/**
 * Read a small JSON object body (PATCH, link generation). Bodies over 64 KiB
 * are PAYLOAD_TOO_LARGE; malformed JSON or a non-object is BAD_REQUEST.
 *
 * raw-body (the reader under koa-bodyparser and co-body) checks Content-Length
 * before reading and counts a chunked body as it comes; when it refuses one it
 * leaves the request paused, not destroyed, so the 413 can still be sent and
 * the rest of the body drained (lingering-close.ts).
 */
export async function readJsonBody(ctx: Context): Promise<Record<string, unknown>> {
  let raw: Buffer;
  try {
    raw = await getRawBody(ctx.req, { limit: MAX_JSON_BYTES, ...(ctx.get('content-length') === '' ? {} : { length: ctx.get('content-length') }) });
  } catch (err) {
    const type = (err as { type?: unknown }).type;
    if (type === 'entity.too.large') throw new CallfsError('PAYLOAD_TOO_LARGE', `a JSON body is limited to ${MAX_JSON_BYTES} bytes`, { cause: err });
    if (type === 'request.aborted' || type === 'request.size.invalid') throw new CallfsError('BAD_REQUEST', 'the body ended before its Content-Length', { cause: err });
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new CallfsError('BAD_REQUEST', 'the body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new CallfsError('BAD_REQUEST', 'the body must be a JSON object');
  return value as Record<string, unknown>;
}
