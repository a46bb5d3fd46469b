import { hash, timingSafeEqual } from 'node:crypto';
import { isUsableApiKey } from './api-keys.js';

export { usersFromConfig, checkAuthUsers, type AuthUsersInput, type AuthUsersCheck } from './users-config.js';

/** A caller's identity: a name, a uid (0 is root), a primary gid and supplementary groups. */
export interface User {
  name: string;
  uid: number;
  gid: number;
  groups: number[];
}

/** A user with the API key that authenticates as them. One user may have several specs (keys). */
export type UserSpec = User & { apiKey: string };

/** The configured users, looked up by key, name or uid. */
export interface UserDirectory {
  /**
   * The user whose key is the Bearer token of an Authorization header, or null
   * when the header is missing, malformed or the key is unknown. Accepts only
   * `Bearer <token>`: the scheme in any case, one space, one token.
   */
  authenticate(authorizationHeader: string | undefined): User | null;
  byName(name: string): User | undefined;
  /** With several names on one uid, the first one configured. */
  byUid(uid: number): User | undefined;
  /** Every user, once each, in configuration order. */
  list(): readonly User[];
}

/** `Bearer`, case-insensitive, exactly one space, one token of visible ASCII characters. */
const BEARER = /^bearer ([\x21-\x7e]+)$/i;

/**
 * Keys (and the peers' secret, lib/http/middleware/auth.ts) are compared as
 * SHA-256 digests: fixed length, so timingSafeEqual applies and length leaks
 * nothing. One-shot `hash()` rather than a Hash object: 0.7 µs against
 * 1.3 µs per request.
 */
export function digest(key: string): Buffer {
  return hash('sha256', key, 'buffer');
}

/**
 * Build the directory. Throws an Error when two specs share a key, when one
 * name is given two different identities, or when a key could never be sent as
 * a Bearer token (empty, whitespace or non-ASCII characters). Length and other
 * policy are {@link checkAuthUsers}'s business.
 */
export function createUserDirectory(specs: readonly UserSpec[]): UserDirectory {
  const keys: { digest: Buffer; user: User }[] = [];
  const byName = new Map<string, User>();
  const byUid = new Map<number, User>();
  const seenKeys = new Set<string>();
  for (const spec of specs) {
    if (!isUsableApiKey(spec.apiKey)) {
      throw new Error(`user ${spec.name}: the API key must be non-empty visible ASCII without spaces`);
    }
    if (seenKeys.has(spec.apiKey)) throw new Error(`user ${spec.name}: an API key is configured twice`);
    seenKeys.add(spec.apiKey);
    let user = byName.get(spec.name);
    if (user === undefined) {
      user = Object.freeze({ name: spec.name, uid: spec.uid, gid: spec.gid, groups: Object.freeze([...spec.groups]) as number[] });
      byName.set(user.name, user);
      if (!byUid.has(user.uid)) byUid.set(user.uid, user);
    } else if (!sameIdentity(user, spec)) {
      throw new Error(`user ${spec.name}: configured twice with different uid, gid or groups`);
    }
    keys.push({ digest: digest(spec.apiKey), user });
  }
  const users = Object.freeze([...byName.values()]);

  return {
    authenticate(header) {
      if (typeof header !== 'string') return null;
      const token = BEARER.exec(header)?.[1];
      if (token === undefined) return null;
      const presented = digest(token);
      // Compare with every key, without stopping at a match, so that the time
      // taken says nothing about which key (or how much of one) matched.
      let found: User | null = null;
      for (const key of keys) {
        if (timingSafeEqual(presented, key.digest)) found ??= key.user;
      }
      return found;
    },
    byName: (name) => byName.get(name),
    byUid: (uid) => byUid.get(uid),
    list: () => users,
  };
}

function sameIdentity(a: User, b: User): boolean {
  return (
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.groups.length === b.groups.length &&
    a.groups.every((g, i) => g === b.groups[i])
  );
}
