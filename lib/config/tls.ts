import { DEFAULT_CIPHERS, getCiphers } from 'node:tls';

/**
 * The TLS policy of the main listener: the lowest protocol version and the
 * TLS 1.2 cipher suites an operator may choose. TLS 1.3 suites are all AEAD
 * and stay Node's defaults.
 */

export const TLS_MIN_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsMinVersion = (typeof TLS_MIN_VERSIONS)[number];

/**
 * Forward secrecy (ECDHE) and an AEAD cipher: the only TLS 1.2 suites served.
 * CBC suites (Lucky13-style padding oracles, SHA-1 MACs) and static-RSA key
 * exchange (no forward secrecy) are refused even when an operator asks.
 */
export const ALLOWED_TLS12_CIPHERS: readonly string[] = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

/** The default: every allowed suite, so both EC (the generated certificate) and RSA certificates work. */
export const DEFAULT_TLS12_CIPHERS: readonly string[] = ALLOWED_TLS12_CIPHERS;

/** A colon-separated OpenSSL list (the environment, or one string in a file) as a list. */
export function parseCipherList(value: unknown): unknown {
  return typeof value === 'string' ? value.split(':').map((s) => s.trim()).filter((s) => s !== '') : value;
}

/** Suite names are compared without regard to case (OpenSSL lists them in upper case, Node in lower). */
const canonicalName = (name: string): string => name.trim().toUpperCase();

/** Why a TLS 1.2 suite list cannot be served, one phrase per problem; empty when it can. */
export function cipherListProblems(list: unknown): string[] {
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) return ['must be a list of OpenSSL suite names (a YAML list, or colon-separated)'];
  if (list.length === 0) return ['must name at least one suite'];
  const known = new Set(getCiphers().map((c) => c.toUpperCase()));
  const problems: string[] = [];
  for (const name of list as string[]) {
    if (ALLOWED_TLS12_CIPHERS.includes(canonicalName(name))) continue;
    if (canonicalName(name).startsWith('TLS_')) problems.push(`${name} is a TLS 1.3 suite; those are not configurable (all are AEAD)`);
    else if (!known.has(canonicalName(name))) problems.push(`${name} is not a cipher suite name OpenSSL knows (keywords such as HIGH or !aNULL are not accepted either)`);
    else problems.push(`${name} is not an ECDHE suite with AES-GCM or ChaCha20-Poly1305`);
  }
  if (problems.length > 0) problems.push(`allowed: ${ALLOWED_TLS12_CIPHERS.join(', ')}`);
  return problems;
}

/**
 * The cipher string for Node: Node's own TLS 1.3 suites and the TLS 1.2
 * suites. The TLS 1.3 ones are named explicitly so that they do not depend on
 * how Node treats a list that has none.
 */
export function opensslCipherString(tls12: readonly string[]): string {
  const tls13 = DEFAULT_CIPHERS.split(':').filter((s) => s.startsWith('TLS_'));
  return [...tls13, ...tls12.map(canonicalName)].join(':');
}

/**
 * Whether a TLS 1.2 suite list can serve a certificate with this key type
 * (`KeyObject.asymmetricKeyType`): ECDHE-RSA suites need an RSA key, ECDHE-ECDSA
 * suites an EC (or EdDSA) key. Unknown key types are given the benefit of the doubt.
 */
export function servesKeyType(list: readonly string[], keyType: string | undefined): boolean {
  const auth = keyType === 'rsa' || keyType === 'rsa-pss' ? 'ECDHE-RSA-' : keyType === 'ec' || keyType === 'ed25519' || keyType === 'ed448' ? 'ECDHE-ECDSA-' : null;
  return auth === null || list.some((name) => canonicalName(name).startsWith(auth));
}
