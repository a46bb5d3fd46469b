import type { CallfsError } from '../errors.js';
import { GroupCommit } from '../group-commit.js';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import { ancestorsOf, assertCanonical } from '../paths.js';
import * as blobs from './blobs-links-sql.js';
import * as clusterSql from './cluster-sql.js';
import type { EntryCache } from './cache.js';
import { isConnectionError, isRetryableDbError, mapDbError } from './db-errors.js';
import type { Queryable, Row, SqlDriver, Statement } from './driver.js';
import type { Invalidator, PendingDelivery } from './invalidation.js';
import * as listing from './listing-sql.js';
import * as ns from './namespace-sql.js';
import * as trees from './tree-jobs-sql.js';
import * as dav from './dav-sql.js';
import * as uploads from './uploads-sql.js';
import * as s3 from './s3-sql.js';
import { plainEntry, toBlob, toEntry } from './rows.js';
import { namespaceLockCall, namespaceLockSql, newTxState, type TxState } from './tx-state.js';
import type { BlobRecord, BlobRowToWrite, Entry, MetadataOps, MetadataStore } from './types.js';

/** What both factories hand to createStore. */
export interface StoreParts {
  driver: SqlDriver;
  cache: EntryCache;
  invalidator: Invalidator;
  logger: Logger;
  metrics?: Metrics;
  /** Rows per keyset page of listings. */
  listPageSize: number;
}

// Standalone writes are re-run (whole transaction) after a deadlock or serialization failure.
const WRITE_ATTEMPTS = 3;

/**
 * First in a guarded-write script, with the shared namespace lock in the
 * same statement: the plans Postgres keeps for it — the
 * parent's foreign-key check, the reference-count trigger, the guard — are
 * used as they are for the transaction, instead of being made again for
 * each statement as the session's force_custom_plan would (0.05 ms a PUT
 * for the foreign-key check alone). Every statement of the script reads by
 * key, so no plan may scan a table: a plan made while the namespace was
 * nearly empty stays right once it is not.
 */
const GUARDED_OPENING: Statement = {
  sql: `SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true), ${namespaceLockCall('shared')}`,
  params: [],
};

/** The MetadataStore over a driver: caching, transactions, error mapping and metrics. */
export function createStore(parts: StoreParts): MetadataStore {
  const { driver, cache, invalidator, metrics, listPageSize } = parts;
  let closing: Promise<void> | null = null;

  const count = (operation: string, outcome: string, startedAt: number): void => {
    metrics?.metadataOperations.inc({ operation, outcome });
    metrics?.metadataDuration.observe({ operation }, (performance.now() - startedAt) / 1000);
  };
  const outcomeOf = (err: CallfsError): string => err.code.toLowerCase();

  async function instrument<T>(operation: string, fn: () => Promise<T>, passThrough?: (err: unknown) => boolean): Promise<T> {
    const startedAt = performance.now();
    try {
      const result = await fn();
      count(operation, 'ok', startedAt);
      return result;
    } catch (err) {
      if (passThrough?.(err) === true) {
        count(operation, 'aborted', startedAt);
        throw err;
      }
      const mapped = mapDbError(err, driver.description);
      count(operation, outcomeOf(mapped), startedAt);
      throw mapped;
    }
  }

  async function* instrumentStream<T>(operation: string, source: () => AsyncGenerator<T>): AsyncGenerator<T> {
    const startedAt = performance.now();
    try {
      yield* source();
      count(operation, 'ok', startedAt);
    } catch (err) {
      const mapped = mapDbError(err, driver.description);
      count(operation, outcomeOf(mapped), startedAt);
      throw mapped;
    }
  }

  // Answers of a move job's move that end the job (others are tried again).
  const REFUSALS = new Set<string>(['FILE_NOT_FOUND', 'FILE_ALREADY_EXISTS', 'NOT_A_DIRECTORY', 'BAD_REQUEST', 'PRECONDITION_FAILED', 'PERMISSION_DENIED', 'DIRECTORY_NOT_EMPTY']);

  // Blob records of concurrent CAS puts share one INSERT (each is validated alone first, so that
  // one bad record cannot fail the others). Its rows may be locked by a write's reference-count
  // trigger in another order: after a deadlock or serialization failure the batch runs again.
  const blobRecords = new GroupCommit<blobs.BlobPlacement, BlobRecord>(async (items) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await blobs.recordBlobs(driver, items);
      } catch (err) {
        if (attempt >= WRITE_ATTEMPTS || !isRetryableDbError(err)) throw err;
      }
    }
  });

  // Path lookups that miss the cache share statements too.
  const chainLookups = new GroupCommit<string, ns.StoredEntry[]>((paths) => ns.getChains(driver, paths));

  /** One transaction with invalidation around its commit. */
  async function inTransaction<T>(fn: (q: Queryable, state: TxState) => Promise<T>, namespaceLock?: 'shared'): Promise<T> {
    const state = newTxState(namespaceLock);
    let pending: PendingDelivery | null = null;
    let committed = false;
    try {
      const result = await driver.transaction(
        async (q) => {
          const value = await fn(q, state);
          pending = await invalidator.beforeCommit(q, state.invalidations);
          return value;
        },
        namespaceLock === undefined ? {} : { begin: namespaceLockSql(namespaceLock) },
      );
      committed = true;
      return result;
    } finally {
      // Also after a failure: a COMMIT whose answer was lost may still have committed.
      await invalidator.afterCommit(state.invalidations, pending, committed);
    }
  }

  /** A standalone write: its own transaction, re-run after a deadlock or serialization failure. */
  async function write<T>(fn: (q: Queryable, state: TxState) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await inTransaction(fn);
      } catch (err) {
        if (attempt >= WRITE_ATTEMPTS || !isRetryableDbError(err)) throw err;
        parts.logger.debug({ err, attempt }, 'metadata store: retrying a write after a transaction conflict');
      }
    }
  }

  /** What a guarded write's caller gets back from its batch: the write's row, and the blob-index row it carried. */
  type GuardedOutcome = { committed: boolean; row: Row | null; blobRow: Row | null; pending: PendingDelivery | null; error?: unknown };

  /**
   * A guarded write — a create (which can share its batch's one INSERT) or
   * any other statement — with the blob-index row it carries (see
   * BlobRowToWrite), and the paths it makes stale.
   */
  type GuardedWrite = { write: { create: ns.GuardedCreate } | { statement: Statement }; blob: blobs.BlobPlacement | null; state: TxState };

  /**
   * Guarded writes as one script (one round trip on Postgres): the namespace
   * lock, the writes, the blob-index rows they carry, and the invalidator's
   * NOTIFYs before the COMMIT. Each write's first row, or null when its
   * guard held it back.
   */
  async function runGuarded(writes: GuardedWrite[]): Promise<GuardedOutcome[]> {
    const statements: Statement[] = [GUARDED_OPENING];
    // Creates at distinct paths share one INSERT, first: returned rows are matched to them by path.
    // Any other write (and a create at a path already taken in the batch) is a statement of its
    // own after it, in the order the writes came.
    const creates = new Map<string, ns.GuardedCreate>();
    for (const w of writes) if ('create' in w.write && !creates.has(w.write.create.path)) creates.set(w.write.create.path, w.write.create);
    // In blob order, as the blob rows are locked by their reference-count trigger and then by recordBlobsStatement.
    const createRows = [...creates.values()].sort((a, b) => (a.blobKey < b.blobKey ? -1 : a.blobKey > b.blobKey ? 1 : 0));
    const createsAt = createRows.length === 0 ? -1 : statements.push(ns.createRowsStatement(createRows)) - 1;
    const at = writes.map((w) => ('create' in w.write && creates.get(w.write.create.path) === w.write.create ? -1 : statements.push('statement' in w.write ? w.write.statement : ns.createRowsStatement([w.write.create])) - 1));
    // The blob rows come after the entries: an entry's reference-count trigger makes a new blob's
    // row with its count, and the row's place is then filled in without new index entries
    // (migration 011).
    const placements = blobs.distinctBlobs(writes.flatMap((w) => (w.blob === null ? [] : [w.blob])));
    const blobsAt = placements.length === 0 ? -1 : statements.push(blobs.recordBlobsStatement(placements)) - 1;
    const collect: Queryable = {
      query: async (sql, params = []) => {
        statements.push({ sql, params });
        return [];
      },
    };
    const pendings: Array<PendingDelivery | null> = [];
    for (const w of writes) pendings.push(await invalidator.beforeCommit(collect, w.state.invalidations));
    try {
      const results = await driver.script(statements);
      const created = new Map((createsAt < 0 ? [] : results[createsAt] ?? []).map((r) => [String(r.path), r]));
      const blobRows = new Map((blobsAt < 0 ? [] : results[blobsAt] ?? []).map((r) => [blobs.blobKey(r.instance_id, r.sha256), r]));
      return writes.map((w, i) => {
        const own = at[i] ?? -1;
        const row = own >= 0 ? results[own]?.[0] ?? null : 'create' in w.write ? created.get(w.write.create.path) ?? null : null;
        const blobRow = w.blob === null ? null : blobRows.get(blobs.blobKey(w.blob.instanceId, w.blob.sha256)) ?? null;
        return { committed: true, row, blobRow, pending: pendings[i] ?? null };
      });
    } catch (error) {
      return writes.map((_, i) => ({ committed: false, row: null, blobRow: null, pending: pendings[i] ?? null, error }));
    }
  }

  // Guarded writes of concurrent callers share one script, and so one commit. A failing statement
  // rolls back the whole script: the writes are then run again one by one, so that only the
  // failing one's caller sees its error (not after a lost connection: the outcome is unknown). A
  // lone write is run again after a deadlock or serialization failure.
  const guardedWrites = new GroupCommit<GuardedWrite, GuardedOutcome>(async (writes) => {
    const outcomes = await runGuarded(writes);
    const failure = outcomes[0]?.error;
    if (failure === undefined || isConnectionError(failure)) return outcomes;
    if (writes.length === 1 && !isRetryableDbError(failure)) return outcomes;
    for (const o of outcomes) await invalidator.afterCommit(newTxState().invalidations, o.pending, false);
    return Promise.all(writes.map(async (w) => (await runGuarded([w]))[0] as GuardedOutcome));
  });

  async function guardedWrite(operation: string, build: () => GuardedWrite['write'], state: TxState, blobRow: BlobRowToWrite | undefined): Promise<Entry | null> {
    return instrument(operation, async () => {
      const write = build();
      if (blobRow !== undefined) blobs.assertBlobPlacement(blobRow.blob);
      const outcome = await guardedWrites.submit({ write, blob: blobRow?.blob ?? null, state });
      // Also after a failure: a COMMIT whose answer was lost may still have committed.
      await invalidator.afterCommit(state.invalidations, outcome.pending, outcome.committed);
      if (outcome.error !== undefined) throw outcome.error;
      if (blobRow !== undefined) {
        if (outcome.blobRow === null) throw new Error('guarded write: the blob-index row was not returned');
        blobRow.written(toBlob(outcome.blobRow));
      }
      return outcome.row === null ? null : plainEntry(toEntry(outcome.row));
    });
  }

  /** Operations bound to an open transaction: no cache, writes record their invalidations. */
  function transactionOps(q: Queryable, state: TxState): MetadataOps {
    return {
      get: (path) => instrument('get', async () => {
        assertCanonical(path);
        const e = await ns.getEntry(q, path);
        return e === null ? null : plainEntry(e);
      }),
      getChain: (path) => instrument('getChain', async () => (await ns.getChain(q, path)).map(plainEntry)),
      listChildren: (path, options = {}) => instrumentStream('listChildren', () => listing.listChildren(q, path, options, listPageSize)),
      listRecursive: (path, options) => instrumentStream('listRecursive', () => listing.listRecursive(q, path, options, listPageSize)),
      create: (entry, options) => instrument('create', async () => plainEntry(await ns.createEntry(q, state, entry, options))),
      update: (path, version, patch) => instrument('update', async () => plainEntry(await ns.updateEntry(q, state, path, version, patch))),
      move: (from, to, options) => instrument('move', async () => movedResult(await ns.moveEntry(q, state, from, to, options))),
      delete: (path, options) => instrument('delete', async () => ({ removed: (await ns.deleteEntry(q, state, path, options)).map(plainEntry) })),
      detachTree: (path, job) => instrument('detachTree', () => trees.detachTree(q, state, path, job)),
      startMove: (from, to, job) => instrument('startTreeMove', () => trees.startMove(q, state, from, to, job)),
      firstUnremovable: (path, user) => instrument('firstUnremovable', () => ns.firstUnremovable(q, path, user)),
      recordBlob: (blob) => instrument('recordBlob', () => blobs.recordBlob(q, blob)),
      getBlob: (instanceId, sha256) => instrument('getBlob', () => blobs.getBlob(q, instanceId, sha256)),
      createLink: (link) => instrument('createLink', () => blobs.createLink(q, link)),
      getLink: (id) => instrument('getLink', () => blobs.getLink(q, id)),
      consumeLink: (id, now) => instrument('consumeLink', () => blobs.consumeLink(q, id, now)),
    };
  }

  /** Cache hits only after the invalidator says every committed invalidation has been applied. */
  async function cachedOrNull<T>(paths: string[], read: () => T): Promise<T | null> {
    if (!paths.every((p) => cache.has(p))) return null;
    if (!(await invalidator.beforeCacheRead())) return null;
    return paths.every((p) => cache.has(p)) ? read() : null;
  }

  async function readThrough(path: string): Promise<Entry | null> {
    const hit = await cachedOrNull([path], () => cache.get(path));
    if (hit !== null && hit !== undefined) {
      metrics?.metadataCache.inc({ result: 'hit' });
      return hit;
    }
    metrics?.metadataCache.inc({ result: cache.usable ? 'miss' : 'bypass' });
    const generation = cache.generation();
    const stored = await ns.getEntry(driver, path);
    if (stored === null) return null;
    const entry = plainEntry(stored);
    cache.set(entry, generation);
    return entry;
  }

  /** The entries at `paths` as the cache holds them now, when every one of them is cached (a hit), else null. */
  function cachedNow(paths: string[]): Entry[] | null {
    const hit = paths.map((p) => cache.get(p));
    if (!hit.every((e): e is Entry => e !== undefined)) return null;
    metrics?.metadataCache.inc({ result: 'hit' });
    return hit;
  }

  /** cachedNow, once the invalidator says every committed invalidation has been applied. */
  async function cachedEntries(paths: string[]): Promise<Entry[] | null> {
    return cachedOrNull(paths, () => cachedNow(paths));
  }

  async function chainThrough(path: string): Promise<Entry[]> {
    const hit = await cachedEntries([...ancestorsWithSelf(path)]);
    if (hit !== null) return hit;
    metrics?.metadataCache.inc({ result: cache.usable ? 'miss' : 'bypass' });
    const generation = cache.generation();
    const chain = (await chainLookups.submit(path)).map(plainEntry);
    for (const entry of chain) cache.set(entry, generation);
    return chain;
  }

  /**
   * Without the invalidator's round trip (cachedOrNull): what it would wait for is another
   * instance's change to these rows, which the guard of the write decided on them finds anyway.
   */
  async function cachedAncestors(path: string): Promise<Entry[] | null> {
    assertCanonical(path);
    if (path === '/' || !cache.usable || cache.has(path)) return null;
    return cachedNow(ancestorsOf(path));
  }

  return {
    get: (path) => instrument('get', async () => {
      assertCanonical(path);
      return readThrough(path);
    }),
    getChain: (path) => instrument('getChain', async () => {
      assertCanonical(path);
      return chainThrough(path);
    }),
    listChildren: (path, options = {}) => instrumentStream('listChildren', () => listing.listChildren(driver, path, options, listPageSize)),
    listRecursive: (path, options) => instrumentStream('listRecursive', () => listing.listRecursive(driver, path, options, listPageSize)),
    count: (path, recursive) => instrument('count', () => listing.countListing(driver, path, recursive)),
    create: (entry, options) => instrument('create', async () => plainEntry(await write((q, state) => ns.createEntry(q, state, entry, options)))),
    update: (path, version, patch) =>
      instrument('update', async () => plainEntry(await write((q, state) => ns.updateEntry(q, state, path, version, patch)))),
    move: (from, to, options) => instrument('move', async () => movedResult(await write((q, state) => ns.moveEntry(q, state, from, to, options)))),
    delete: (path, options) => instrument('delete', async () => ({ removed: (await write((q, state) => ns.deleteEntry(q, state, path, options))).map(plainEntry) })),
    detachTree: (path, job) => instrument('detachTree', () => write((q, state) => trees.detachTree(q, state, path, job))),
    startMove: (from, to, job) => instrument('startTreeMove', () => write((q, state) => trees.startMove(q, state, from, to, job))),
    firstUnremovable: (path, user) => instrument('firstUnremovable', () => ns.firstUnremovable(driver, path, user)),
    recordBlob: (blob) => instrument('recordBlob', async () => {
      blobs.assertBlobPlacement(blob);
      return blobRecords.submit(blob);
    }),
    getBlob: (instanceId, sha256) => instrument('getBlob', () => blobs.getBlob(driver, instanceId, sha256)),
    createLink: (link) => instrument('createLink', () => blobs.createLink(driver, link)),
    getLink: (id) => instrument('getLink', () => blobs.getLink(driver, id)),
    consumeLink: (id, now) => instrument('consumeLink', () => blobs.consumeLink(driver, id, now)),
    cachedAncestors,
    transaction: (fn, options = {}) => {
      // What the caller's function throws is the caller's business: rethrown as is, after the rollback.
      const fromCaller = new WeakSet<object>();
      return instrument(
        'transaction',
        () =>
          inTransaction(async (q, state) => {
            try {
              return await fn(transactionOps(q, state));
            } catch (err) {
              if (typeof err === 'object' && err !== null) fromCaller.add(err);
              throw err;
            }
          }, options.namespaceLock),
        (err) => typeof err === 'object' && err !== null && fromCaller.has(err),
      );
    },
    createIfUnchanged: (entry, expected, blobRow) =>
      // A new path: no instance can hold a cached entry for it, so nothing to invalidate.
      guardedWrite('createIfUnchanged', () => ({ create: ns.guardedCreate(entry, expected) }), newTxState('shared'), blobRow),
    updateIfUnchanged: (path, version, patch, expected, blobRow) => {
      const state = newTxState('shared');
      state.invalidations.exact.add(path);
      return guardedWrite('updateIfUnchanged', () => ({ statement: ns.updateIfUnchangedStatement(path, version, patch, expected) }), state, blobRow);
    },
    listCollectableBlobs: (instanceId, olderThan, limit) =>
      instrument('listCollectableBlobs', () => blobs.listCollectableBlobs(driver, instanceId, olderThan, limit)),
    forgetBlob: (instanceId, sha256, olderThan) => instrument('forgetBlob', () => blobs.forgetBlob(driver, instanceId, sha256, olderThan)),
    listBlobsForScrub: (instanceId, limit) => instrument('listBlobsForScrub', () => blobs.listBlobsForScrub(driver, instanceId, limit)),
    markBlobVerified: (instanceId, sha256, ok) => instrument('markBlobVerified', () => blobs.markBlobVerified(driver, instanceId, sha256, ok)),
    listBlobs: (instanceId, options) => instrumentStream('listBlobs', () => blobs.listBlobs(driver, instanceId, listPageSize, options)),
    purgeLinks: (before) => instrument('purgeLinks', () => blobs.purgeLinks(driver, before)),
    trees: {
      get: (id) => instrument('getTreeJob', () => trees.getJob(driver, id)),
      claim: (owner, leaseMs) => instrument('claimTreeJob', () => trees.claimJob(driver, owner, leaseMs)),
      // Deadlocks with a concurrent delete of the same rows are retried like any standalone write.
      removeBatch: (id, limit, owner, leaseMs) => instrument('removeTreeBatch', () => write((q) => trees.removeBatch(q, id, limit, owner, leaseMs))),
      prune: (before) => instrument('pruneTreeJobs', () => trees.pruneJobs(driver, before)),
      runMove: (id) => instrument('runTreeMove', async () => {
        try {
          // No statement timeout on Postgres: the move's one UPDATE grows with the tree.
          return await write((q, state) => trees.runMove(q, state, id, driver.kind === 'postgres'));
        } catch (err) {
          const mapped = mapDbError(err, driver.description);
          // A move the namespace refuses now ends the job; anything else is tried again later.
          if (REFUSALS.has(mapped.code)) {
            await trees.failMove(driver, id, { code: mapped.code, message: mapped.message });
            const job = await trees.getJob(driver, id);
            if (job !== null) return job;
          }
          throw mapped;
        }
      }),
    },
    s3: {
      getObjectMeta: (ids) => instrument('s3GetObjectMeta', () => s3.getObjectMeta(driver, ids)),
      putObjectMeta: (id, meta) => instrument('s3PutObjectMeta', () => s3.putObjectMeta(driver, id, meta)),
      createMultipart: (upload) => instrument('s3CreateMultipart', () => s3.createMultipart(driver, upload)),
      getMultipart: (id) => instrument('s3GetMultipart', () => s3.getMultipart(driver, id)),
      listMultipart: (bucket, prefix, limit) => instrument('s3ListMultipart', () => s3.listMultipart(driver, bucket, prefix, limit)),
      removeMultipart: (id) => instrument('s3RemoveMultipart', () => s3.removeMultipart(driver, id)),
      putPart: (id, part) => instrument('s3PutPart', () => s3.putPart(driver, id, part)),
      listParts: (id) => instrument('s3ListParts', () => s3.listParts(driver, id)),
      staleMultipart: (instanceId, before, limit) => instrument('s3StaleMultipart', () => s3.staleMultipart(driver, instanceId, before, limit)),
    },
    uploads: {
      create: (upload, maxOpen) => instrument('createUpload', () => uploads.createUpload(driver, upload, maxOpen)),
      get: (id) => instrument('getUpload', () => uploads.getUpload(driver, id)),
      advance: (id, from, to, expiresAt) => instrument('advanceUpload', () => uploads.advanceUpload(driver, id, from, to, expiresAt)),
      remove: (id) => instrument('removeUpload', () => uploads.removeUpload(driver, id)),
      on: (instanceId, expiredBefore, limit) => instrument('uploadsOn', () => uploads.uploadsOn(driver, instanceId, expiredBefore, limit)),
    },
    dav: {
      locksAt: (paths) => instrument('davLocksAt', () => dav.locksAt(driver, paths)),
      locksBelow: (path) => instrument('davLocksBelow', () => dav.locksBelow(driver, path)),
      getLock: (token) => instrument('davGetLock', () => dav.getLock(driver, token)),
      createLock: (lock) => instrument('davCreateLock', () => write((q) => dav.createLock(q, lock))),
      refreshLock: (token, seconds) => instrument('davRefreshLock', () => dav.refreshLock(driver, token, seconds)),
      removeLock: (token) => instrument('davRemoveLock', () => dav.removeLock(driver, token)),
      removeLocksAt: (path) => instrument('davRemoveLocksAt', () => dav.removeLocksAt(driver, path)),
      getProperties: (ids) => instrument('davGetProperties', () => dav.getProperties(driver, ids)),
      patchProperties: (id, changes) => instrument('davPatchProperties', () => write((q) => dav.patchProperties(q, id, changes))),
      copyProperties: (from, to) => instrument('davCopyProperties', () => write((q) => dav.copyProperties(q, from, to))),
    },
    cluster: {
      heartbeat: (instance) => instrument('heartbeat', () => clusterSql.heartbeat(driver, instance)),
      listInstances: () => instrument('listInstances', () => clusterSql.listInstances(driver)),
      setInstanceState: (id, state) => instrument('setInstanceState', () => clusterSql.setInstanceState(driver, id, state)),
      acquireLease: (name, owner, ttlMs) => instrument('acquireLease', () => clusterSql.acquireLease(driver, name, owner, ttlMs)),
      releaseLease: (name, owner) => instrument('releaseLease', () => clusterSql.releaseLease(driver, name, owner)),
      listCopies: (sha256) => instrument('listCopies', () => clusterSql.listCopies(driver, sha256)),
      listUnderReplicated: (options) => instrument('listUnderReplicated', () => clusterSql.listUnderReplicated(driver, options)),
      countUnderReplicated: (replicas, notCounting) => instrument('countUnderReplicated', () => clusterSql.countUnderReplicated(driver, replicas, notCounting)),
      underReplicatedPerInstance: (replicas, notCounting) => instrument('underReplicatedPerInstance', () => clusterSql.underReplicatedPerInstance(driver, replicas, notCounting)),
      isReferenced: (sha256) => instrument('isReferenced', () => clusterSql.isReferenced(driver, sha256)),
      dropCopy: (instanceId, sha256) => instrument('dropCopy', () => clusterSql.dropCopy(driver, instanceId, sha256)),
      listCopiesOn: (instanceId, after, limit) => instrument('listCopiesOn', () => clusterSql.listCopiesOn(driver, instanceId, after, limit)),
      copiesPerInstance: () => instrument('copiesPerInstance', () => clusterSql.copiesPerInstance(driver)),
      enqueueReplica: (instanceId, sha256) => instrument('enqueueReplica', () => clusterSql.enqueueReplica(driver, instanceId, sha256)),
      listReplicaOutbox: (instanceId, limit) => instrument('listReplicaOutbox', () => clusterSql.listReplicaOutbox(driver, instanceId, limit)),
      settleReplica: (instanceId, sha256, retryInMs) => instrument('settleReplica', () => clusterSql.settleReplica(driver, instanceId, sha256, retryInMs)),
      countReplicaOutbox: () => instrument('countReplicaOutbox', () => clusterSql.countReplicaOutbox(driver)),
      setRequest: (name, on) => instrument('setRequest', () => clusterSql.setRequest(driver, name, on)),
      hasRequest: (name) => instrument('hasRequest', () => clusterSql.hasRequest(driver, name)),
    },
    ping: () => instrument('ping', async () => {
      await driver.query('SELECT 1');
    }),
    close: () => {
      closing ??= (async () => {
        try {
          await invalidator.stop();
        } finally {
          cache.setUsable(false);
          await driver.close();
        }
      })();
      return closing;
    },
  };
}

function* ancestorsWithSelf(path: string): Generator<string> {
  yield '/';
  if (path === '/') return;
  let at = path.indexOf('/', 1);
  while (at > 0) {
    yield path.slice(0, at);
    at = path.indexOf('/', at + 1);
  }
  yield path;
}

function movedResult(moved: { entry: Entry; replaced: Entry | null }): { entry: Entry; replaced: Entry | null } {
  return { entry: plainEntry(moved.entry), replaced: moved.replaced === null ? null : plainEntry(moved.replaced) };
}
