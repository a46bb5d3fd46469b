/**
 * `Content-Disposition: attachment` for a file name (RFC 6266), with the exact
 * name in `filename*` (RFC 8187 / 5987 UTF-8 percent-encoding) and an ASCII
 * `filename="…"` fallback for clients that ignore `filename*`.
 */
export function attachmentDisposition(name: string): string {
  const fallback = asciiFallback(name);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeExtValue(name)}`;
}

/**
 * Percent-encode everything but RFC 8187 attr-chars. encodeURIComponent
 * already encodes all else except ' ( ) * which attr-char does not allow either.
 */
function encodeExtValue(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Printable ASCII without the characters that are special inside a quoted
 * string (`"` `\`) or that some browsers decode or treat as a path (`%` `/`),
 * each replaced by `_`. A result without a letter or digit (a name written
 * wholly in another script) becomes "download".
 */
function asciiFallback(name: string): string {
  const safe = name.replace(/[^\x20-\x7e]|["\\%/]/gu, '_');
  return /[A-Za-z0-9]/.test(safe) ? safe : 'download';
}
