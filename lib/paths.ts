import { CallfsError } from './errors.js';

/** Longest canonical path, in UTF-8 bytes. */
export const MAX_PATH_BYTES = 4096;
/** Longest single segment, in UTF-8 bytes. */
export const MAX_SEGMENT_BYTES = 255;

// C0/C1 controls and DEL, and the Unicode bidi controls that can disguise a name.
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

/**
 * Characters that render as nothing, so that two different names could look
 * the same: format characters (zero-width space, word joiner, BOM, soft
 * hyphen, …), the other default-ignorable code points (Hangul fillers,
 * combining grapheme joiner, …), noncharacters and lone surrogates. Kept,
 * because scripts and emoji need them: ZWNJ and ZWJ, the variation selectors
 * and Mongolian free variation selectors (they pick a glyph of the character
 * before them), and tag characters inside an emoji tag sequence (subdivision
 * flags), which are taken out before this test.
 */
const INVISIBLE = /(?!\u200c|\u200d|[\u180b-\u180d]|\u180f|[\ufe00-\ufe0f]|[\u{e0100}-\u{e01ef}])[\p{Cf}\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}\p{Cs}]/u;
const EMOJI_TAG_SEQUENCE = /\p{Extended_Pictographic}[\u{e0020}-\u{e007e}]+\u{e007f}/gu;

const invalid = (why: string): CallfsError => new CallfsError('INVALID_PATH', `invalid path: ${why}`);

/**
 * Turn a raw path (already percent-decoded once, so that a decoded '%2F' shows
 * up as `encodedSlash`) into its canonical form: '/'-rooted, no empty, '.' or
 * '..' segments, no trailing '/'. Throws INVALID_PATH for anything that climbs
 * above the root, contains a backslash, NUL, control, bidi or invisible
 * character, or is too long.
 */
export function canonicalize(raw: string): string {
  if (raw.includes('\\')) throw invalid('backslash is not allowed');
  if (FORBIDDEN.test(raw)) throw invalid('control or bidi characters are not allowed');
  if (INVISIBLE.test(raw.replace(EMOJI_TAG_SEQUENCE, ''))) throw invalid('invisible characters (zero-width, format, noncharacters) are not allowed');
  const out: string[] = [];
  for (const segment of raw.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (out.length === 0) throw invalid("'..' climbs above the root");
      out.pop();
      continue;
    }
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) throw invalid(`a segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
    out.push(segment);
  }
  const path = '/' + out.join('/');
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw invalid(`longer than ${MAX_PATH_BYTES} bytes`);
  return path;
}

/**
 * Decode the path part of a URL exactly once and canonicalise it. A '%2F'
 * (an encoded slash inside a segment) is refused rather than silently turned
 * into a separator.
 */
export function pathFromUrl(encoded: string): string {
  if (/%2f/i.test(encoded)) throw invalid('an encoded slash (%2F) inside a segment is not allowed');
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    throw invalid('malformed percent-encoding');
  }
  return canonicalize(decoded);
}

/** True when `path` is already canonical. */
export function isCanonical(path: string): boolean {
  try {
    return canonicalize(path) === path;
  } catch {
    return false;
  }
}

/** Throw INVALID_PATH unless `path` is canonical (stores call this on every input). */
export function assertCanonical(path: string): void {
  if (!isCanonical(path)) throw invalid(`not canonical: ${JSON.stringify(path)}`);
}

/** Parent of a canonical path ('/' for top-level entries and for the root itself). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Last segment of a canonical path ('' for the root). */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The canonical ancestors of a path, root first, excluding the path itself. */
export function ancestorsOf(path: string): string[] {
  if (path === '/') return [];
  const parts = path.split('/').slice(1, -1);
  const out = ['/'];
  let acc = '';
  for (const p of parts) {
    acc += '/' + p;
    out.push(acc);
  }
  return out;
}

/** True when `path` is `root` or inside it. */
export function isWithin(path: string, root: string): boolean {
  return root === '/' || path === root || path.startsWith(root + '/');
}

/** "/a b/c" → "/a%20b/c": a canonical path as a URL path, each segment encoded once. */
export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}
