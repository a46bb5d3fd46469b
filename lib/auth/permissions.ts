import { CallfsError } from '../errors.js';
import type { EntryType } from '../metadata/types.js';
import type { User } from './users.js';

/**
 * POSIX permission checks (API.md "Unix permissions"). Each rule comes as a
 * `may…` function returning a boolean and an `assert…` function throwing
 * PERMISSION_DENIED. They only judge; finding the entries (and answering 404
 * for a missing path before any 403) is the engine's job.
 */

/** The kind of access asked for: read, write, search/execute. */
export type Access = 'r' | 'w' | 'x';

/** What a check needs of an entry; a metadata Entry is one. */
export interface PermissionSubject {
  /** Permission bits, possibly with setuid/setgid/sticky (e.g. 0o1777). */
  mode: number;
  uid: number;
  gid: number;
  /** Needed because root's search/execute right differs between files and directories. */
  type: EntryType;
  /** For error messages only. */
  path?: string;
}

const STICKY = 0o1000;
const ANY_EXECUTE = 0o111;
const BITS: Record<Access, number> = { r: 4, w: 2, x: 1 };

/** uid 0 is root. */
export function isRoot(user: User): boolean {
  return user.uid === 0;
}

/** True when `gid` is the user's primary group or one of their supplementary groups. */
export function inGroup(user: User, gid: number): boolean {
  return user.gid === gid || user.groups.includes(gid);
}

/**
 * Whether `user` may `want` on `entry`. Exactly one class applies, as in
 * POSIX: the owner's bits if the uid matches (even when the group or other
 * bits would allow more), else the group's if the entry's group is one of the
 * user's, else the others'. Root may read and write anything and search any
 * directory, but executes a file only if some execute bit is set.
 */
export function mayAccess(user: User, entry: PermissionSubject, want: Access): boolean {
  if (isRoot(user)) {
    return want !== 'x' || entry.type === 'directory' || (entry.mode & ANY_EXECUTE) !== 0;
  }
  const shift = user.uid === entry.uid ? 6 : inGroup(user, entry.gid) ? 3 : 0;
  return ((entry.mode >> shift) & BITS[want]) !== 0;
}

/** Throws PERMISSION_DENIED unless {@link mayAccess}. */
export function assertAccess(user: User, entry: PermissionSubject, want: Access): void {
  if (!mayAccess(user, entry, want)) throw denied(`${want} permission on ${describe(entry)}`);
}

/**
 * Whether `user` may search every directory of `chain`: the directories from
 * the root down to (and including) the parent of the path being reached.
 */
export function maySearchPath(user: User, chain: readonly PermissionSubject[]): boolean {
  return chain.every((dir) => mayAccess(user, dir, 'x'));
}

/** Throws PERMISSION_DENIED, naming the first directory that cannot be searched, unless {@link maySearchPath}. */
export function assertSearchPath(user: User, chain: readonly PermissionSubject[]): void {
  for (const dir of chain) {
    if (!mayAccess(user, dir, 'x')) throw denied(`search permission on ${describe(dir)}`);
  }
}

/**
 * Whether `user` may remove (delete, or rename away) `victim` from `dir`:
 * write and search on the directory and, when the directory has the sticky
 * bit (like /tmp), only the victim's owner, the directory's owner or root.
 */
export function mayRemoveFromDirectory(user: User, dir: PermissionSubject, victim: PermissionSubject): boolean {
  if (!mayAccess(user, dir, 'w') || !mayAccess(user, dir, 'x')) return false;
  if ((dir.mode & STICKY) === 0 || isRoot(user)) return true;
  return user.uid === victim.uid || user.uid === dir.uid;
}

/** Throws PERMISSION_DENIED unless {@link mayRemoveFromDirectory}. */
export function assertRemoveFromDirectory(user: User, dir: PermissionSubject, victim: PermissionSubject): void {
  if (!mayRemoveFromDirectory(user, dir, victim)) throw denied(`removal of ${describe(victim)} from ${describe(dir)}`);
}

/** Whether `user` may change the mode of `entry`: its owner or root. */
export function mayChmod(user: User, entry: PermissionSubject): boolean {
  return isRoot(user) || user.uid === entry.uid;
}

/** Throws PERMISSION_DENIED unless {@link mayChmod}. */
export function assertChmod(user: User, entry: PermissionSubject): void {
  if (!mayChmod(user, entry)) throw denied(`changing the mode of ${describe(entry)} (owner or root only)`);
}

/** Whether `user` may change owners and groups: root only (API.md). */
export function mayChown(user: User): boolean {
  return isRoot(user);
}

/** Throws PERMISSION_DENIED unless {@link mayChown}. */
export function assertChown(user: User): void {
  if (!mayChown(user)) throw denied('changing owner or group (root only)');
}

function describe(entry: PermissionSubject): string {
  return entry.path ?? `this ${entry.type}`;
}

function denied(what: string): CallfsError {
  return new CallfsError('PERMISSION_DENIED', `permission denied: ${what}`);
}
