import { CallfsError } from '../errors.js';
import type { Entry } from '../metadata/types.js';

/**
 * Conditional requests as RFC 9110 §13 evaluates them at an origin server.
 * Written here rather than taken from `fresh` (jshttp): that library answers
 * only the GET half (If-None-Match / If-Modified-Since, with cache semantics
 * for `Cache-Control: no-cache` that an origin server must not apply), and
 * the order of evaluation across all four headers is the part that matters.
 */

/** The precondition headers of a request, as given. */
export interface WritePreconditions {
  /** If-Match: `*` or a list of entity-tags; strong comparison. */
  ifMatch?: string;
  /** If-None-Match: `*` or a list of entity-tags; weak comparison. */
  ifNoneMatch?: string;
  /** If-Unmodified-Since, parsed. */
  ifUnmodifiedSince?: Date;
  /** If-Modified-Since, parsed (GET and HEAD only). */
  ifModifiedSince?: Date;
}

interface EntityTag {
  weak: boolean;
  opaque: string;
}

/**
 * `*` (any) or the entity-tags of a list (`"a", W/"b"`). A member that is not
 * an entity-tag (unquoted, say) matches nothing: it is never taken for one.
 */
function parseTags(header: string): '*' | EntityTag[] {
  if (header.trim() === '*') return '*';
  const tags: EntityTag[] = [];
  for (const m of header.matchAll(/(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"/g)) tags.push({ weak: m[1] !== undefined, opaque: m[2] ?? '' });
  return tags;
}

/** Our ETags are strong: the file's SHA-256. */
function currentTag(entry: Entry): EntityTag | null {
  return entry.etag === null ? null : { weak: false, opaque: entry.etag };
}

/** Strong comparison (If-Match): both strong and the same. A `W/` tag never matches. */
function strongMatch(header: string, entry: Entry | null): boolean {
  if (entry === null) return false;
  const tags = parseTags(header);
  if (tags === '*') return true;
  const current = currentTag(entry);
  return current !== null && tags.some((t) => !t.weak && t.opaque === current.opaque);
}

/** Weak comparison (If-None-Match): the same opaque tag, weak or not. */
function weakMatch(header: string, entry: Entry | null): boolean {
  if (entry === null) return false;
  const tags = parseTags(header);
  if (tags === '*') return true;
  const current = currentTag(entry);
  return current !== null && tags.some((t) => t.opaque === current.opaque);
}

/** HTTP dates have whole seconds. */
const seconds = (d: Date): number => Math.floor(d.getTime() / 1000);

/**
 * Evaluate the preconditions against the entry the request acts on (null
 * when the path does not exist), in RFC 9110 §13.2.2's order:
 * If-Match, else If-Unmodified-Since; then If-None-Match, else (GET/HEAD)
 * If-Modified-Since. Throws PRECONDITION_FAILED (412) when one fails; for a
 * safe request (`safe`: GET, HEAD) a matching If-None-Match or a fresh
 * If-Modified-Since answers `not-modified` (304) instead.
 */
export function evaluatePreconditions(entry: Entry | null, pre: WritePreconditions, safe = false): 'proceed' | 'not-modified' {
  if (pre.ifMatch !== undefined) {
    if (!strongMatch(pre.ifMatch, entry)) throw new CallfsError('PRECONDITION_FAILED', entry === null ? 'If-Match given but nothing exists at the path' : 'If-Match does not match the current ETag');
  } else if (pre.ifUnmodifiedSince !== undefined && entry !== null && seconds(entry.mtime) > seconds(pre.ifUnmodifiedSince)) {
    throw new CallfsError('PRECONDITION_FAILED', 'modified since If-Unmodified-Since');
  }
  if (pre.ifNoneMatch !== undefined) {
    if (weakMatch(pre.ifNoneMatch, entry)) {
      if (safe) return 'not-modified';
      throw new CallfsError('PRECONDITION_FAILED', pre.ifNoneMatch.trim() === '*' ? 'If-None-Match: * and the path exists' : 'If-None-Match matches the current ETag');
    }
  } else if (safe && pre.ifModifiedSince !== undefined && entry !== null && seconds(entry.mtime) <= seconds(pre.ifModifiedSince)) {
    return 'not-modified';
  }
  return 'proceed';
}

/** PRECONDITION_FAILED unless a (write) request's preconditions hold for `entry`. */
export function checkPreconditions(entry: Entry | null, pre: WritePreconditions): void {
  evaluatePreconditions(entry, pre, false);
}
