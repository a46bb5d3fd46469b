import type { Queryable } from './driver.js';

/** Paths whose cached entries a transaction makes stale, applied when it ends. */
export interface Invalidations {
  /** Exactly these paths. */
  exact: Set<string>;
  /** These paths and everything below them. */
  subtree: Set<string>;
}

/** What one transaction remembers while it runs. */
export interface TxState {
  /** The namespace lock it holds (see lockNamespace). */
  namespaceLock: 'none' | 'shared' | 'exclusive';
  invalidations: Invalidations;
}

export function newTxState(namespaceLock: TxState['namespaceLock'] = 'none'): TxState {
  return { namespaceLock, invalidations: { exact: new Set(), subtree: new Set() } };
}

export function hasInvalidations(inv: Invalidations): boolean {
  return inv.exact.size > 0 || inv.subtree.size > 0;
}

// pg_advisory_xact_lock(classid, objid): 'cfs1' and 2 = "namespace structure".
const LOCK_CLASS = 0x63667331;
const LOCK_NAMESPACE = 2;

/**
 * Take the namespace lock for the rest of the transaction.
 *
 * Every write that adds a row under a directory or gives a row a new path
 * (create, move) holds it shared; every write that rewrites or removes a
 * whole directory (moving or deleting a directory, replacing one) holds it
 * exclusive. Why: a subtree UPDATE/DELETE only sees the rows committed when
 * its statement started, so a concurrent insert of a child under a directory
 * being moved would be left behind at a stale path (or, for a delete, fail
 * the foreign key). The exclusive holder waits for in-flight inserts to
 * commit and keeps new ones out until it commits; inserts then re-read their
 * parents with a fresh snapshot. Creates do not contend with each other.
 *
 * It is taken in a statement of its own because a READ COMMITTED statement's
 * snapshot is fixed when it starts, before a lock inside it is granted.
 */
export async function lockNamespace(q: Queryable, state: TxState, mode: 'shared' | 'exclusive'): Promise<void> {
  if (state.namespaceLock === 'exclusive' || state.namespaceLock === mode) return;
  await q.query(namespaceLockSql(mode));
  state.namespaceLock = mode;
}

/**
 * The statement taking the namespace lock (constants only, so that it can
 * open a transaction in BEGIN's round trip: see MetadataStore.transaction).
 */
export function namespaceLockSql(mode: 'shared' | 'exclusive'): string {
  return `SELECT ${namespaceLockCall(mode)}`;
}

/** namespaceLockSql's function call alone, for a SELECT that does more. */
export function namespaceLockCall(mode: 'shared' | 'exclusive'): string {
  return `${mode === 'exclusive' ? 'pg_advisory_xact_lock' : 'pg_advisory_xact_lock_shared'}(${LOCK_CLASS}, ${LOCK_NAMESPACE})`;
}
