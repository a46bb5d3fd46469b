import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/index.js';
import type { EntryCache } from './cache.js';
import type { ListenSubscription, Queryable, SqlDriver } from './driver.js';
import { hasInvalidations, type Invalidations } from './tx-state.js';

/**
 * Keeping the entry cache of every instance coherent with the database.
 *
 * Writers: a writing transaction NOTIFYs the paths it changed (inside the
 * transaction, so Postgres delivers it exactly when, and only if, it
 * commits), invalidates its own cache after the commit, and then waits, at
 * most `notifyWaitMs`, until its own listener has received its own
 * notification: by then Postgres has signalled every listening session.
 *
 * That alone leaves a window: the other sessions send their copies in no set
 * order, measured here up to a few ms after the writer's own on a busy
 * machine, so a reader elsewhere could still hit its old cached entry right
 * after the write was acknowledged. Readers therefore close it: before
 * serving anything from its cache, an instance makes one round trip on its
 * listening connection (`beforeCacheRead`). Postgres sends a session's
 * pending notifications before the answer to its next query, on the same
 * connection, so when the round trip returns every invalidation committed
 * before the read began has been applied. Concurrent reads share round
 * trips, so the listening connection carries at most one at a time however
 * many reads are served: a hit costs that latency but no database work.
 *
 * Other paths are closed too: reads inside transactions bypass the cache; a
 * value read from the database while an invalidation came in is not cached
 * (EntryCache generations); and while the listening connection is down its
 * instance clears and bypasses its cache until it is listening again. The
 * one residual assumption is Postgres's: a commit signals listeners before
 * it is acknowledged, and a signalled session sends its notifications
 * before the answer to a query it receives afterwards.
 */
export interface Invalidator {
  /** Subscribe (Postgres); resolves after the first attempt, successful or not. */
  start(): Promise<void>;
  /** True when the cache may serve a hit now: every invalidation committed until now has been applied. */
  beforeCacheRead(): Promise<boolean>;
  /** Inside the transaction, just before COMMIT. */
  beforeCommit(tx: Queryable, inv: Invalidations): Promise<PendingDelivery | null>;
  /** After the transaction ended (`committed` false when it failed or its outcome is unknown). */
  afterCommit(inv: Invalidations, pending: PendingDelivery | null, committed: boolean): Promise<void>;
  stop(): Promise<void>;
}

export interface PendingDelivery {
  token: string;
  delivered: Promise<void>;
}

export const INVALIDATION_CHANNEL = 'callfs_metadata_invalidation';

function applyLocally(cache: EntryCache, inv: Invalidations): void {
  for (const path of inv.subtree) cache.invalidateSubtree(path);
  for (const path of inv.exact) cache.invalidate(path);
}

/** Embedded mode: one process owns the database, so invalidating its own cache is enough. */
export function createLocalInvalidator(cache: EntryCache): Invalidator {
  return {
    start: async () => {},
    beforeCacheRead: async () => true,
    beforeCommit: async () => null,
    afterCommit: async (inv) => applyLocally(cache, inv),
    stop: async () => {},
  };
}

export interface NotifyInvalidatorOptions {
  driver: SqlDriver;
  cache: EntryCache;
  logger: Logger;
  /** Longest wait for the writer's own notification after a commit (ms). */
  notifyWaitMs: number;
}

/**
 * Cross-instance invalidation. Payload: `<token>|<e|s>|<path>`, where `e`
 * invalidates exactly the path and `s` the path with its subtree, and the
 * token identifies the writing transaction (instance id + sequence).
 */
export function createNotifyInvalidator(options: NotifyInvalidatorOptions): Invalidator {
  const { driver, cache, logger, notifyWaitMs } = options;
  if (driver.listen === undefined) throw new Error('this driver cannot LISTEN');
  const listen = driver.listen.bind(driver);
  const instance = randomBytes(6).toString('hex');
  let sequence = 0;
  let listening = false;
  let subscription: ListenSubscription | null = null;
  const waiters = new Map<string, () => void>();

  const releaseAllWaiters = (): void => {
    for (const resolve of waiters.values()) resolve();
    waiters.clear();
  };

  const onNotify = (payload: string): void => {
    logger.trace({ payload }, 'metadata store: invalidation received');
    const first = payload.indexOf('|');
    const second = payload.indexOf('|', first + 1);
    const kind = payload.slice(first + 1, second);
    const path = payload.slice(second + 1);
    if (first < 0 || second < 0 || !path.startsWith('/') || (kind !== 'e' && kind !== 's')) {
      logger.warn({ payload }, 'metadata store: malformed invalidation; clearing the cache');
      cache.clear();
    } else if (kind === 's') cache.invalidateSubtree(path);
    else cache.invalidate(path);
    const token = first > 0 ? payload.slice(0, first) : '';
    const resolve = waiters.get(token);
    if (resolve !== undefined) {
      waiters.delete(token);
      resolve();
    }
  };

  // Round trips shared by concurrent readers: `running` is in flight; `next` starts when it ends,
  // for readers that arrived after `running` was sent (it may not cover their reads).
  let running: Promise<boolean> | null = null;
  let next: Promise<boolean> | null = null;
  const startSync = (): Promise<boolean> => {
    const sub = subscription;
    const p: Promise<boolean> = (sub === null ? Promise.resolve(false) : sub.sync().then(() => true, () => false)).finally(() => {
      if (running === p) running = null;
    });
    running = p;
    return p;
  };

  return {
    async start() {
      subscription = await listen(INVALIDATION_CHANNEL, {
        onNotify,
        onUp: () => {
          listening = true;
          cache.setUsable(true);
          logger.info('metadata store: listening for cache invalidations');
        },
        onDown: () => {
          listening = false;
          cache.setUsable(false);
          releaseAllWaiters();
        },
      });
    },

    beforeCacheRead() {
      if (!listening) return Promise.resolve(false);
      if (running === null) return startSync();
      next ??= running.then(() => {
        next = null;
        return startSync();
      });
      return next;
    },

    async beforeCommit(tx, inv) {
      if (!hasInvalidations(inv)) return null;
      const token = `${instance}.${++sequence}`;
      const payloads = [...[...inv.subtree].map((p) => `${token}|s|${p}`), ...[...inv.exact].map((p) => `${token}|e|${p}`)];
      await tx.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [INVALIDATION_CHANNEL, payloads]);
      if (!listening) return null;
      const delivered = new Promise<void>((resolve) => waiters.set(token, resolve));
      return { token, delivered };
    },

    async afterCommit(inv, pending, committed) {
      applyLocally(cache, inv);
      if (pending === null) return;
      if (!committed) {
        waiters.delete(pending.token);
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, notifyWaitMs)));
      try {
        await Promise.race([pending.delivered, timedOut]);
      } finally {
        clearTimeout(timer);
        waiters.delete(pending.token);
      }
    },

    async stop() {
      const sub = subscription;
      subscription = null;
      await sub?.stop();
      listening = false;
      releaseAllWaiters();
    },
  };
}
