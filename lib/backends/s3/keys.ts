import { CallfsError } from '../../errors.js';
import { isCanonical } from '../../paths.js';

/**
 * The key scheme: a file at canonical path `/docs/a.txt` is the object
 * `<prefix>docs/a.txt`. Keys follow paths so that the bucket can be browsed
 * (and backed up, or served) by ordinary S3 tools; the entry's blobId records
 * the key, and renames copy the object to its new key (see lib/engine/follow-keys.ts).
 */

/** S3's limit on a key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/**
 * Normalise backend.s3_prefix: no leading '/', exactly one trailing '/'
 * unless empty. Throws BAD_REQUEST for a prefix that is not a clean path
 * (empty, '.' or '..' segments, control characters).
 */
export function normalizePrefix(raw: string): string {
  const trimmed = raw.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '') return '';
  if (!isCanonical('/' + trimmed)) throw new CallfsError('BAD_REQUEST', `backend.s3_prefix ${JSON.stringify(raw)} is not a clean path (no empty, "." or ".." segments)`);
  return trimmed + '/';
}

/** The key of a canonical file path. */
export function keyOfPath(prefix: string, path: string): string {
  if (!isCanonical(path) || path === '/') throw new CallfsError('INVALID_PATH', `not a canonical file path: ${JSON.stringify(path)}`);
  const key = prefix + path.slice(1);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new CallfsError('INVALID_PATH', `the path is too long for the S3 backend (object keys are at most ${MAX_KEY_BYTES} bytes, prefix included)`);
  }
  return key;
}

/**
 * The canonical path a key names, or null when the key is not one this
 * scheme produces. Anything else is treated as unknown and never sent to S3,
 * so a malformed id cannot reach outside the prefix.
 */
export function pathOfKey(prefix: string, key: string): string | null {
  if (typeof key !== 'string' || !key.startsWith(prefix) || Buffer.byteLength(key) > MAX_KEY_BYTES) return null;
  const rest = key.slice(prefix.length);
  if (rest === '') return null;
  const path = '/' + rest;
  return isCanonical(path) ? path : null;
}
