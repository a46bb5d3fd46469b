import { isRoot } from '../../auth/permissions.js';
import type { DavLock } from '../../metadata/types.js';
import { ancestorsOf, isWithin, parentOf } from '../../paths.js';
import { DavError, entryOrNull, hrefOf, pathOfUrl, type DavRequest } from './context.js';
import { parseIf, submittedTokens } from './if-header.js';
import { errorBody } from './xml.js';

/** Whether `lock` covers `path`: its own path, or below it for a deep lock. */
export const covers = (lock: DavLock, path: string): boolean => lock.path === path || (lock.deep && isWithin(path, lock.path));

/** The locks that cover `path` (its own and its ancestors' deep ones), in one round trip. */
export async function locksCovering(r: Pick<DavRequest, 'deps'>, path: string): Promise<DavLock[]> {
  return (await r.deps.dav.locksAt([path, ...ancestorsOf(path)])).filter((l) => covers(l, path));
}

/**
 * Evaluate the If header (RFC 4918 §10.4): 412 unless one of its lists is
 * true — every condition of it: a state token that is a current lock of the
 * resource, an entity tag equal to the resource's, each maybe negated with
 * Not. The lock tokens it names are what the request submits.
 */
export async function checkIf(r: DavRequest): Promise<Set<string>> {
  const header = r.ctx.get('if');
  if (header === '') return new Set();
  const lists = parseIf(header);
  const states = new Map<string, Promise<{ etag: string | null; locks: DavLock[] } | null>>();
  const stateOf = (path: string) => {
    let state = states.get(path);
    if (state === undefined) {
      state = (async () => {
        const entry = await entryOrNull(r, path).catch(() => null);
        const locks = await locksCovering(r, path);
        return { etag: entry?.type === 'file' && entry.etag !== null ? `"${entry.etag}"` : null, locks };
      })();
      states.set(path, state);
    }
    return state;
  };
  let holds = false;
  for (const list of lists) {
    const path = list.resource === null ? r.path : pathOfUrl(r, list.resource);
    const state = path === null ? null : await stateOf(path);
    const met = state !== null && list.conditions.every((c) => {
      const value = c.token !== undefined ? state.locks.some((l) => l.token === c.token) : state.etag !== null && sameEtag(state.etag, c.etag ?? '');
      return value !== c.not;
    });
    if (met) {
      holds = true;
      break;
    }
  }
  if (!holds) throw new DavError(412, 'PRECONDITION_FAILED', 'the If header does not hold');
  return submittedTokens(lists);
}

const sameEtag = (a: string, b: string): boolean => a.replace(/^W\//, '') === b.replace(/^W\//, '');

/** A change a request makes to `path`, for the locks it must have the tokens of. */
export interface LockedChange {
  path: string;
  /** It adds or removes `path` in its parent collection (whose depth-0 lock then counts too). */
  membership?: boolean;
  /** It changes everything below `path` (DELETE or MOVE of a collection, a replaced collection). */
  deep?: boolean;
}

/**
 * 423 with DAV:lock-token-submitted unless, for every locked resource the
 * changes touch, the request submitted a token of one of its locks, taken by
 * the same user (or the user is root).
 */
export async function assertUnlocked(r: DavRequest, changes: readonly LockedChange[], submitted: ReadonlySet<string>): Promise<void> {
  const { dav } = r.deps;
  // One round trip for the locks on the paths and their ancestors, one per tree below a deep change.
  const around = await dav.locksAt([...new Set(changes.flatMap((c) => [c.path, ...ancestorsOf(c.path)]))]);
  const byRoot = new Map<string, DavLock[]>();
  for (const change of changes) {
    const parent = parentOf(change.path);
    const locks = around.filter((l) => covers(l, change.path) || (change.membership === true && change.path !== '/' && l.path === parent));
    if (change.deep === true) locks.push(...(await dav.locksBelow(change.path)));
    for (const lock of locks) byRoot.set(lock.path, [...new Set([...(byRoot.get(lock.path) ?? []), lock])]);
  }
  for (const [path, locks] of byRoot) {
    if (locks.some((l) => submitted.has(l.token) && (l.uid === r.user.uid || isRoot(r.user)))) continue;
    throw new DavError(423, 'LOCKED', `${path} is locked`, errorBody('lock-token-submitted', [hrefOf(r.deps, path, false)]));
  }
}
