/** The shortest API key accepted from configuration. */
export const MIN_API_KEY_LENGTH = 16;

/**
 * Whether `key` can ever arrive as a Bearer token: non-empty visible ASCII,
 * no spaces (the Authorization header carries exactly one token).
 */
export function isUsableApiKey(key: unknown): key is string {
  return typeof key === 'string' && /^[\x21-\x7e]+$/.test(key);
}
