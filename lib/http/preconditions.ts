import fresh from 'fresh';
import type { Context } from 'koa';
import type { EntityTag, EntityTagCondition, WritePreconditions } from '../engine/conditions.js';

/** One list member that is an entity-tag (RFC 9110 §8.8.3), with the OWS around it and the comma after it. */
const TAG_MEMBER = /[ \t]*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*(?:,|$)/y;
/** Any other member, up to and with its comma. */
const OTHER_MEMBER = /[^,]*(?:,|$)/y;

/**
 * If-Match / If-None-Match as a condition: `*`, or the entity-tags of the
 * list. A member that is not an entity-tag (unquoted, say) is dropped, so it
 * matches nothing rather than being taken for a tag; an empty list matches
 * nothing either.
 */
export function parseEntityTags(value: string): EntityTagCondition {
  if (value.trim() === '*') return '*';
  const tags: EntityTag[] = [];
  for (let at = 0; at < value.length; ) {
    TAG_MEMBER.lastIndex = at;
    const tag = TAG_MEMBER.exec(value);
    if (tag !== null) {
      tags.push({ weak: tag[1] !== undefined, opaque: tag[2] ?? '' });
      at = TAG_MEMBER.lastIndex;
      continue;
    }
    OTHER_MEMBER.lastIndex = at;
    OTHER_MEMBER.exec(value);
    at = Math.max(OTHER_MEMBER.lastIndex, at + 1);
  }
  return tags;
}

/** An HTTP-date, or undefined for one that does not parse (RFC 9110 §13.1: such a header is ignored). */
export function parseHttpDate(value: string): Date | undefined {
  const time = Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time);
}

/** The precondition headers of a write (RFC 9110 §13.1), parsed for the engine, which evaluates them under the path's lock. */
export function requestPreconditions(ctx: Context): WritePreconditions {
  const out: WritePreconditions = {};
  const ifMatch = ctx.get('if-match');
  if (ifMatch !== '') out.ifMatch = parseEntityTags(ifMatch);
  const ifNoneMatch = ctx.get('if-none-match');
  if (ifNoneMatch !== '') out.ifNoneMatch = parseEntityTags(ifNoneMatch);
  const ifUnmodifiedSince = parseHttpDate(ctx.get('if-unmodified-since'));
  if (ifUnmodifiedSince !== undefined) out.ifUnmodifiedSince = ifUnmodifiedSince;
  return out;
}

/**
 * Whether a GET or HEAD answers 304: If-None-Match (weak comparison), else
 * If-Modified-Since, against the ETag and Last-Modified the response carries,
 * as `fresh` decides. Its caller has evaluated If-Match and
 * If-Unmodified-Since before (a 412 wins over a 304, RFC 9110 §13.2.2).
 *
 * `fresh` itself rather than Koa's `ctx.fresh`: Koa 3 bundles fresh 0.5,
 * which still weighs If-Modified-Since when If-None-Match is given (RFC 9110
 * §13.1.3 says to ignore it; fresh 1.0 fixed that), and answers only once the
 * status is already 2xx.
 *
 * Only the two validators are handed over, not Cache-Control: `fresh` calls
 * any request with `Cache-Control: no-cache` stale, which is a cache's rule
 * (do not answer from store without revalidating). This is the origin server,
 * where the revalidation happens; RFC 9110 §13.1.2 says a false If-None-Match
 * must not be performed, so a cache revalidating a no-cache request with its
 * validators gets its 304 instead of the whole file again.
 */
export function notModified(ctx: Context): boolean {
  const validators = { 'if-none-match': ctx.get('if-none-match') || undefined, 'if-modified-since': ctx.get('if-modified-since') || undefined };
  // Without a validator nothing is fresh; ctx.response.headers copies every header set so far, so it is not built for nothing.
  if (validators['if-none-match'] === undefined && validators['if-modified-since'] === undefined) return false;
  return fresh(validators, ctx.response.headers);
}
