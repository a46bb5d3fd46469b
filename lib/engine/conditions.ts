import { CallfsError } from '../errors.js';
import type { Entry } from '../metadata/types.js';

/**
 * Conditional writes as RFC 9110 §13 evaluates them at an origin server.
 * They are evaluated here, under the path's lock, against the entry the
 * write acts on; the HTTP layer parses the headers (lib/http/preconditions.ts)
 * and decides a GET's 304 itself.
 */

/** An entity-tag (RFC 9110 §8.8.3): its opaque part without the quotes, and whether it was `W/`. */
export interface EntityTag {
  weak: boolean;
  opaque: string;
}

/** If-Match / If-None-Match: `*` (any current representation) or a list of entity-tags. */
export type EntityTagCondition = '*' | EntityTag[];

/** The precondition headers of a write, parsed; absent when not given. */
export interface WritePreconditions {
  /** If-Match; strong comparison. */
  ifMatch?: EntityTagCondition;
  /** If-None-Match; weak comparison. */
  ifNoneMatch?: EntityTagCondition;
  /** If-Unmodified-Since (ignored when If-Match is given). */
  ifUnmodifiedSince?: Date;
}

/**
 * Whether `condition` matches the entry: `*` any existing entry, a list an
 * entry whose ETag is in it. Our ETags are strong (the file's SHA-256), so a
 * `W/` tag matches only under the weak comparison.
 */
function matches(condition: EntityTagCondition, entry: Entry | null, comparison: 'strong' | 'weak'): boolean {
  if (entry === null) return false;
  if (condition === '*') return true;
  const etag = entry.etag;
  return etag !== null && condition.some((t) => t.opaque === etag && (comparison === 'weak' || !t.weak));
}

/** HTTP dates have whole seconds. */
const seconds = (d: Date): number => Math.floor(d.getTime() / 1000);

/**
 * PRECONDITION_FAILED unless a write's preconditions hold for the entry it
 * acts on (null when the path does not exist), evaluated in RFC 9110 §13.2.2's
 * order: If-Match, else If-Unmodified-Since; then If-None-Match, which for a
 * write fails when it matches (so `If-None-Match: *` creates only).
 */
export function checkPreconditions(entry: Entry | null, pre: WritePreconditions): void {
  if (pre.ifMatch !== undefined) {
    if (!matches(pre.ifMatch, entry, 'strong')) throw new CallfsError('PRECONDITION_FAILED', entry === null ? 'If-Match given but nothing exists at the path' : 'If-Match does not match the current ETag');
  } else if (pre.ifUnmodifiedSince !== undefined && entry !== null && seconds(entry.mtime) > seconds(pre.ifUnmodifiedSince)) {
    throw new CallfsError('PRECONDITION_FAILED', 'modified since If-Unmodified-Since');
  }
  if (pre.ifNoneMatch !== undefined && matches(pre.ifNoneMatch, entry, 'weak')) {
    throw new CallfsError('PRECONDITION_FAILED', pre.ifNoneMatch === '*' ? 'If-None-Match: * and the path exists' : 'If-None-Match matches the current ETag');
  }
}
