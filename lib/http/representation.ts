import mime from 'mime-types';
import rangeParser from 'range-parser';
import { create as contentDisposition } from 'content-disposition';
import type { Context } from 'koa';
import type { Readable } from 'node:stream';
import type { Entry } from '../metadata/types.js';
import { canSendDirect, type ByteRange } from '../backends/types.js';
import { CallfsError } from '../errors.js';
import type { RequestState } from './state.js';

/** Resolves a uid to a user name for display (falls back to the number). */
export type NameOf = (uid: number) => string;

/** "0644", "1777": the permission bits as 4 octal digits. */
export function modeString(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** Parse an octal mode ("640", "0640", "1777"); BAD_REQUEST otherwise. */
export function parseMode(value: unknown, what = 'mode'): number {
  if (typeof value !== 'string' || !/^0?[0-7]{3,4}$/.test(value.trim())) throw new CallfsError('BAD_REQUEST', `${what} must be an octal mode such as "0644"`);
  return Number.parseInt(value.trim(), 8);
}

/** The JSON form of an entry (API.md). */
export function entryJson(entry: Entry, nameOf: NameOf): Record<string, unknown> {
  const json: Record<string, unknown> = {
    name: entry.name,
    path: entry.path,
    type: entry.type,
    size: entry.size,
    mode: modeString(entry.mode),
    owner: nameOf(entry.uid),
    group: String(entry.gid),
    mtime: entry.mtime.toISOString(),
  };
  if (entry.type === 'file' && entry.etag !== null) json.etag = entry.etag;
  return json;
}

/** The X-CallFS-* headers (and, for files, ETag, Last-Modified, Content-Length). */
export function setEntryHeaders(ctx: Context, entry: Entry, nameOf: NameOf): void {
  ctx.set('X-CallFS-Type', entry.type);
  ctx.set('X-CallFS-Size', String(entry.size));
  ctx.set('X-CallFS-Mode', modeString(entry.mode));
  ctx.set('X-CallFS-Owner', nameOf(entry.uid));
  ctx.set('X-CallFS-Group', String(entry.gid));
  ctx.set('X-CallFS-MTime', entry.mtime.toISOString());
  if (entry.instanceId !== null) ctx.set('X-CallFS-Instance-ID', entry.instanceId);
  if (entry.type === 'file') {
    if (entry.etag !== null) ctx.set('ETag', `"${entry.etag}"`);
    ctx.set('Last-Modified', entry.mtime.toUTCString());
    ctx.set('Accept-Ranges', 'bytes');
    ctx.set('Content-Type', mime.lookup(entry.name) || 'application/octet-stream');
  }
}

/**
 * `Content-Disposition: attachment` for a file name (RFC 6266), written by
 * the content-disposition package: `filename` alone for a name that is plain
 * ASCII, else an ASCII fallback in `filename` and the exact name in
 * `filename*` (RFC 8187).
 */
export function attachmentDisposition(name: string): string {
  return contentDisposition(name, { fallback: asciiFallback(name) });
}

/**
 * Our fallback rather than the package's (which keeps `"`, `\` and `%` and
 * makes every other character `?`), because clients that ignore `filename*`
 * (curl -J) save under it: RFC 6266 Appendix D advises against `\` there (not
 * unescaped by every client, a path separator on Windows), so against `"`,
 * which needs one, and against `%` (percent-decoded by some); `/` separates
 * paths everywhere. Those and every character that is not printable ASCII
 * become `_`; a name with no letter or digit left (one wholly in another
 * script) becomes "download".
 */
function asciiFallback(name: string): string {
  const safe = name.replace(/[^\x20-\x7e]|["\\%/]/gu, '_');
  return /[A-Za-z0-9]/.test(safe) ? safe : 'download';
}

/** Outcome of a Range header against a size. */
export type RangeRequest = { kind: 'none' } | { kind: 'range'; range: ByteRange } | { kind: 'unsatisfiable' };

const WHOLE: RangeRequest = { kind: 'none' };
const UNSATISFIABLE: RangeRequest = { kind: 'unsatisfiable' };

/**
 * A single byte range (RFC 9110 §14), parsed by range-parser. Anything else
 * (several ranges, another unit, bad syntax) is ignored and the whole
 * representation is sent, as the RFC allows. Several ranges are recognised by
 * the header rather than by range-parser's answer: it drops the specs that
 * are unsatisfiable, so `bytes=0-1,99-` would come back as one range.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined || !/^bytes=/i.test(header) || header.includes(',')) return WHOLE;
  const parsed = rangeParser(size, header);
  if (parsed === -2) return WHOLE;
  if (parsed === -1) return unsatisfiable(header, size);
  const [range] = parsed;
  return range === undefined ? WHOLE : { kind: 'range', range: { start: range.start, end: range.end } };
}

/**
 * range-parser 1.x answers -1 (unsatisfiable) for two well-formed specs that
 * RFC 9110 §14.1 treats otherwise (2.x gets them right, but needs Node 22):
 * a suffix longer than the representation means all of it, and `a-b` with
 * b < a is invalid, which a server ignores. Only a single spec that
 * range-parser found well-formed reaches here.
 */
function unsatisfiable(header: string, size: number): RangeRequest {
  const [first = '', last = ''] = header.slice(header.indexOf('=') + 1).split('-').map((s) => s.trim());
  if (first === '') {
    // A non-zero suffix is satisfiable even on an empty file, but a 206 cannot carry zero bytes: that file is the answer.
    if (Number(last) > 0) return size > 0 ? { kind: 'range', range: { start: 0, end: size - 1 } } : WHOLE;
    return UNSATISFIABLE;
  }
  if (last !== '' && Number(last) < Number(first)) return WHOLE;
  return UNSATISFIABLE;
}

/**
 * A file's bytes as the response body, `length` bytes long; status and the
 * other headers are set before. A CAS read writes itself into the response
 * with reused buffers, outside Koa's response handling; any other stream (S3,
 * a peer's response) is piped by Koa. Either way a failure after the headers
 * went out breaks the transfer rather than ending it cleanly.
 */
export function sendContent(ctx: Context, stream: Readable, length: number): void {
  if (!canSendDirect(stream)) {
    ctx.body = stream;
    ctx.length = length;
    return;
  }
  ctx.length = length;
  ctx.respond = false;
  const state = ctx.state as RequestState;
  stream.sendTo(ctx.res, (err) => {
    if (state.signal?.aborted === true) state.log.debug({ err }, 'response body stopped: the client went away');
    else state.log.warn({ err }, 'response body failed after the headers were sent');
  });
}
