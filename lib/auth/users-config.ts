import { MIN_API_KEY_LENGTH, isUsableApiKey } from './api-keys.js';
import type { UserSpec } from './users.js';

/**
 * The three ways configuration names users (API.md "Unix permissions"):
 *
 * - `users`: `{ name: { api_key, uid, gid, groups? } }`, the full form;
 * - `api_keys`: the original's list; key i is user `api-user-<i+1>` with uid
 *   1000 + i + 1 and gid 1000;
 * - `api_key_users`: the original's `{ name: key }` map; its names, sorted,
 *   get uids 2001, 2002, … and gid 1000.
 *
 * A legacy name that is also in `users` is that user with one more key (its
 * uid, gid and groups come from `users`, and it takes no generated uid).
 * Generated uids can coincide with configured ones: different names sharing a
 * uid is allowed (they then own each other's files, as in /etc/passwd) but
 * reported as a warning.
 */
export interface AuthUsersInput {
  users?: Record<string, { api_key: string; uid: number; gid: number; groups?: number[] }>;
  api_keys?: readonly string[];
  api_key_users?: Record<string, string>;
}

/** What {@link checkAuthUsers} found: problems make the configuration invalid, warnings do not. */
export interface AuthUsersCheck {
  /** One line per problem, each naming its config key. */
  problems: string[];
  warnings: string[];
}

const LEGACY_GID = 1000;
const API_KEYS_FIRST_UID = 1001;
const API_KEY_USERS_FIRST_UID = 2001;
/** The largest id: 2^32 - 2, since (uid_t)-1 means "no change" in chown(2). */
const MAX_ID = 4_294_967_294;
/** Names travel in headers (X-CallFS-Owner) and logs: keep them to a safe alphabet. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}$/;

const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_ID;

interface Sourced {
  spec: UserSpec;
  where: string;
}

function collect(input: AuthUsersInput): { specs: Sourced[]; problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const specs: Sourced[] = [];
  const identities = new Map<string, Omit<UserSpec, 'apiKey'>>();

  const users = input.users ?? {};
  for (const [name, raw] of Object.entries(users)) {
    const where = `auth.users.${name}`;
    if (!NAME.test(name)) problems.push(`${where}: a user name is 1 to 64 of A-Z a-z 0-9 . _ @ - and does not start with . @ or -`);
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push(`${where}: must be a mapping { api_key, uid, gid, groups }`);
      continue;
    }
    const groups: unknown = raw.groups ?? [];
    if (!isId(raw.uid)) problems.push(`${where}.uid: must be an integer from 0 to ${MAX_ID}`);
    if (!isId(raw.gid)) problems.push(`${where}.gid: must be an integer from 0 to ${MAX_ID}`);
    if (!Array.isArray(groups) || !groups.every(isId)) problems.push(`${where}.groups: must be a list of integers from 0 to ${MAX_ID}`);
    const identity = { name, uid: raw.uid, gid: raw.gid, groups: Array.isArray(groups) ? [...new Set(groups as number[])] : [] };
    identities.set(name, identity);
    specs.push({ spec: { ...identity, apiKey: raw.api_key }, where: `${where}.api_key` });
  }

  const generated = new Map<string, string>();
  (input.api_keys ?? []).forEach((apiKey, i) => {
    const name = `api-user-${i + 1}`;
    const where = `auth.api_keys[${i}]`;
    generated.set(name, where);
    const identity = identities.get(name) ?? { name, uid: API_KEYS_FIRST_UID + i, gid: LEGACY_GID, groups: [] };
    specs.push({ spec: { ...identity, apiKey }, where });
  });

  let nextUid = API_KEY_USERS_FIRST_UID;
  const keyUsers = input.api_key_users ?? {};
  for (const name of Object.keys(keyUsers).sort()) {
    const where = `auth.api_key_users.${name}`;
    if (!NAME.test(name)) problems.push(`${where}: a user name is 1 to 64 of A-Z a-z 0-9 . _ @ - and does not start with . @ or -`);
    const clash = generated.get(name);
    if (clash !== undefined && !identities.has(name)) problems.push(`${where}: the name is already given to ${clash}`);
    const identity = identities.get(name) ?? { name, uid: nextUid++, gid: LEGACY_GID, groups: [] };
    specs.push({ spec: { ...identity, apiKey: keyUsers[name] as string }, where });
  }

  const firstUse = new Map<string, string>();
  for (const { spec, where } of specs) {
    const key: unknown = spec.apiKey;
    if (typeof key !== 'string' || key === '') {
      problems.push(`${where}: the API key is missing or not a string`);
      continue;
    }
    if (key.length < MIN_API_KEY_LENGTH) problems.push(`${where}: the API key is shorter than ${MIN_API_KEY_LENGTH} characters`);
    if (!isUsableApiKey(key)) problems.push(`${where}: the API key may only hold visible ASCII characters, no spaces`);
    const first = firstUse.get(key);
    if (first !== undefined) problems.push(`${where}: duplicate API key (also used by ${first})`);
    else firstUse.set(key, where);
  }

  const warnings: string[] = [];
  const namesByUid = new Map<number, Set<string>>();
  for (const { spec } of specs) {
    const names = namesByUid.get(spec.uid) ?? new Set<string>();
    names.add(spec.name);
    namesByUid.set(spec.uid, names);
  }
  for (const [uid, names] of namesByUid) {
    if (names.size > 1) warnings.push(`auth: users ${[...names].join(', ')} share uid ${uid} and so own each other's files`);
  }
  return { specs, problems, warnings };
}

/** List what is wrong with (problems) or worth saying about (warnings) the configured users. */
export function checkAuthUsers(input: AuthUsersInput): AuthUsersCheck {
  const { problems, warnings } = collect(input);
  return { problems, warnings };
}

/**
 * Turn the configured users into one spec per key, for createUserDirectory.
 * Throws an Error listing every problem {@link checkAuthUsers} reports, so
 * that a server never starts with an ambiguous or weak key set.
 */
export function usersFromConfig(input: AuthUsersInput): UserSpec[] {
  const { specs, problems } = collect(input);
  if (problems.length > 0) throw new Error(`invalid auth configuration:\n  ${problems.join('\n  ')}`);
  return specs.map(({ spec }) => spec);
}
