import { AsyncLocalStorage } from 'node:async_hooks';
import { CallfsError, unavailable } from '../../lib/errors.js';
import { assertBlobPlacement } from '../../lib/metadata/blobs-links-sql.js';
import type { BlobRecord, BlobRowToWrite, Entry, InstanceRecord, MetadataOps, MetadataStore, SingleUseLink } from '../../lib/metadata/types.js';
import { ancestorsOf, assertCanonical, parentOf } from '../../lib/paths.js';
import * as blobs from './memory-metadata/blobs.js';
import * as cluster from './memory-metadata/cluster.js';
import * as links from './memory-metadata/links.js';
import * as listing from './memory-metadata/listing.js';
import * as ns from './memory-metadata/namespace.js';
import { Table } from './memory-metadata/table.js';

export interface MemoryMetadataStoreOptions {
  /** Time source for the times the store sets itself (ctime, touched, created, used); tests may move it. */
  now?: () => Date;
  /**
   * Model an entry cache that holds every ancestor but never the path asked
   * about: cachedAncestors answers with the committed ancestors whether or
   * not the path exists (the engine's presumed-new writes then meet the
   * path at their commit). Default: no cache, cachedAncestors is null.
   */
  cachedAncestors?: boolean;
}

/** The store's three tables, committed or as one transaction or operation sees them. */
interface Tables {
  inodes: Table<ns.Row>;
  blobs: Table<BlobRecord>;
  links: Table<SingleUseLink>;
}

const layerOver = (t: Tables): Tables => ({ inodes: t.inodes.layer(), blobs: t.blobs.layer(), links: t.links.layer() });
const commit = (t: Tables): void => {
  t.inodes.commit();
  t.blobs.commit();
  t.links.commit();
};

async function* lazily<T>(take: () => T[]): AsyncGenerator<T> {
  yield* take();
}

/**
 * A MetadataStore in memory: the namespace, the blob index with its
 * reference counts and the single-use links, with the rules of the SQL store
 * (it passes the same contract suite, test/contract/metadata-contract.ts).
 * For tests of the engine and the HTTP layer that need a real store but no
 * database.
 *
 * Concurrency is the simplest that meets the contract: writes and whole
 * transactions run one at a time, in arrival order; reads outside a
 * transaction see committed rows only. As with the embedded (PGlite) store,
 * using the store instead of the transaction object from inside one of its
 * transactions is refused with INTERNAL_ERROR, since the write would wait for
 * the transaction forever. After close() every call is SERVICE_UNAVAILABLE.
 *
 * Not modelled: metrics, the entry cache (but see cachedAncestors) and its invalidation, the
 * namespace lock's interplay between concurrent transactions (nothing
 * runs concurrently here), timeouts and lost connections.
 */
export function createMemoryMetadataStore(options: MemoryMetadataStoreOptions = {}): MetadataStore {
  const clock = options.now ?? (() => new Date());
  let lastId = 0;
  const nextId = (): string => String(++lastId);
  const committed: Tables = { inodes: Table.base(), blobs: Table.base(), links: Table.base() };
  committed.inodes.set('/', ns.rootRow(nextId(), clock()));
  // Membership and leases are not transactional: their statements stand alone.
  const instances = Table.base<InstanceRecord>();
  const leases = new Map<string, cluster.Lease>();
  const requests = new Set<string>();
  const outbox = new Map<string, { instanceId: string; sha256: string; at: number; attempts: number; nextAt: number }>();
  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();
  const insideTransaction = new AsyncLocalStorage<{ open: boolean }>();

  const assertUsable = (): void => {
    if (closed) throw unavailable('metadata', 'the in-memory metadata store is closed');
    if (insideTransaction.getStore()?.open === true) {
      throw new CallfsError('INTERNAL_ERROR', 'in-memory metadata store: the store was used from inside one of its transactions; use the transaction object');
    }
  };

  /** One writer at a time, in arrival order. */
  function serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn);
    queue = run.catch(() => undefined);
    return run;
  }

  /** One operation on a layer over `tables`: all of its changes, or (when it throws) none. */
  function apply<T>(tables: Tables, op: (s: ns.Scope) => T): T {
    const layer = layerOver(tables);
    const result = op({ ...layer, now: clock(), nextId });
    commit(layer);
    return result;
  }

  /** A standalone write: its own transaction. */
  async function write<T>(op: (s: ns.Scope) => T, check: () => void = () => {}): Promise<T> {
    assertUsable();
    check();
    return serialized(async () => apply(committed, op));
  }

  /** A guarded write, with the blob-index row it carries written in the same commit, after the entry (as the SQL store's script does). */
  async function guarded(blobRow: BlobRowToWrite | undefined, op: (s: ns.Scope) => Entry | null, check: () => void): Promise<Entry | null> {
    if (blobRow !== undefined) assertBlobPlacement(blobRow.blob);
    const done = await write((s) => {
      const entry = op(s);
      return { entry, row: blobRow === undefined ? null : blobs.recordBlob(s.blobs, blobRow.blob, s.now) };
    }, check);
    if (blobRow !== undefined && done.row !== null) blobRow.written(done.row);
    return done.entry;
  }

  /** The operations over `tables`: the committed ones (the store), or a transaction's layer. */
  function opsOver(tables: Tables, assertOpen: () => void, writeOp: <T>(op: (s: ns.Scope) => T) => Promise<T>): MetadataOps {
    const read = async <T>(fn: () => T): Promise<T> => {
      assertOpen();
      return fn();
    };
    return {
      get: (path) => read(() => {
        assertCanonical(path);
        const row = tables.inodes.get(path);
        return row === undefined ? null : ns.entryOf(row);
      }),
      getChain: (path) => read(() => ns.getChain(tables.inodes, path)),
      listChildren: (path, opts = {}) => lazily(() => {
        assertOpen();
        return listing.listChildren(tables.inodes, path, opts);
      }),
      listRecursive: (path, opts) => lazily(() => {
        assertOpen();
        return listing.listRecursive(tables.inodes, path, opts);
      }),
      create: (entry, opts) => writeOp((s) => ns.createEntry(s, entry, opts)),
      update: (path, version, patch) => writeOp((s) => ns.updateEntry(s, path, version, patch)),
      move: (from, to, opts) => writeOp((s) => ns.moveEntry(s, from, to, opts)),
      delete: async (path, opts) => ({ removed: await writeOp((s) => ns.deleteEntry(s, path, opts)) }),
      recordBlob: (blob) => writeOp((s) => blobs.recordBlob(s.blobs, blob, s.now)),
      getBlob: (instanceId, sha256) => read(() => blobs.getBlob(tables.blobs, instanceId, sha256)),
      createLink: (link) => writeOp((s) => links.createLink(s.links, link, s.now)),
      getLink: (id) => read(() => links.getLink(tables.links, id)),
      consumeLink: (id, now) => writeOp((s) => links.consumeLink(s.links, id, now ?? s.now)),
    };
  }

  const storeOps = opsOver(committed, assertUsable, (op) => write(op));

  return {
    ...storeOps,

    transaction: async (fn) => {
      assertUsable();
      // The namespace lock option asks for nothing more: one transaction runs at a time.
      return serialized(async () => {
        const layer = layerOver(committed);
        const state = { open: true };
        const assertOpen = (): void => {
          if (!state.open) throw new CallfsError('INTERNAL_ERROR', 'in-memory metadata store: a transaction was used after it ended');
        };
        try {
          const result = await insideTransaction.run(state, () => fn(opsOver(layer, assertOpen, async (op) => {
            assertOpen();
            return apply(layer, op);
          })));
          commit(layer);
          return result;
        } finally {
          state.open = false;
        }
      });
    },

    cachedAncestors: async (path) => {
      assertUsable();
      assertCanonical(path);
      if (options.cachedAncestors !== true || path === '/') return null;
      const chain = ns.getChain(committed.inodes, parentOf(path));
      return chain.length === ancestorsOf(path).length ? chain : null;
    },

    createIfUnchanged: (entry, expected, blobRow) =>
      guarded(blobRow, (s) => ns.createIfUnchanged(s, entry, expected), () => ns.assertGuardedCreate(entry, expected)),
    updateIfUnchanged: (path, version, patch, expected, blobRow) =>
      guarded(blobRow, (s) => ns.updateIfUnchanged(s, path, version, patch, expected), () => ns.assertGuardedUpdate(path, version, patch)),

    listCollectableBlobs: async (instanceId, olderThan, limit) => {
      assertUsable();
      return blobs.listCollectableBlobs(committed.blobs, instanceId, olderThan, limit);
    },
    forgetBlob: (instanceId, sha256, olderThan) => write((s) => blobs.forgetBlob(s.blobs, instanceId, sha256, olderThan)),
    listBlobsForScrub: async (instanceId, limit) => {
      assertUsable();
      return blobs.listBlobsForScrub(committed.blobs, instanceId, limit);
    },
    markBlobVerified: (instanceId, sha256, ok) => write((s) => blobs.markBlobVerified(s.blobs, instanceId, sha256, ok, s.now)),
    listBlobs: (instanceId, options) => lazily(() => {
      assertUsable();
      return blobs.listBlobs(committed.blobs, instanceId, options);
    }),
    purgeLinks: (before) => write((s) => links.purgeLinks(s.links, before)),
    cluster: {
      heartbeat: async (instance) => {
        assertUsable();
        return cluster.heartbeat(instances, instance, clock());
      },
      listInstances: async () => {
        assertUsable();
        return cluster.listInstances(instances, clock());
      },
      setInstanceState: (id, state) => write((s) => cluster.setInstanceState(instances, s.blobs, id, state, s.now)),
      acquireLease: async (name, owner, ttlMs) => {
        assertUsable();
        return cluster.acquireLease(leases, name, owner, ttlMs, clock());
      },
      releaseLease: async (name, owner) => {
        assertUsable();
        if (leases.get(name)?.owner === owner) leases.delete(name);
      },
      listCopies: async (sha256) => {
        assertUsable();
        return cluster.listCopies(committed.blobs, sha256);
      },
      listUnderReplicated: async (opts) => {
        assertUsable();
        return cluster.listUnderReplicated(committed.blobs, opts);
      },
      countUnderReplicated: async (replicas, notCounting) => {
        assertUsable();
        return cluster.countUnderReplicated(committed.blobs, replicas, notCounting);
      },
      underReplicatedPerInstance: async (replicas, notCounting) => {
        assertUsable();
        return cluster.underReplicatedPerInstance(committed.blobs, replicas, notCounting);
      },
      isReferenced: async (sha256) => {
        assertUsable();
        return cluster.isReferenced(committed.blobs, sha256);
      },
      dropCopy: (instanceId, sha256) => write((s) => cluster.dropCopy(s.blobs, instanceId, sha256)),
      listCopiesOn: async (instanceId, after, limit) => {
        assertUsable();
        return cluster.listCopiesOn(committed.blobs, instanceId, after, limit);
      },
      copiesPerInstance: async () => {
        assertUsable();
        return cluster.copiesPerInstance(committed.blobs);
      },
      enqueueReplica: async (instanceId, sha256) => {
        assertUsable();
        const key = `${instanceId}\u0000${sha256}`;
        if (!outbox.has(key)) outbox.set(key, { instanceId, sha256, at: clock().getTime(), attempts: 0, nextAt: 0 });
      },
      listReplicaOutbox: async (instanceId, limit) => {
        assertUsable();
        const now = clock().getTime();
        return [...outbox.values()].filter((r) => r.instanceId === instanceId && r.nextAt <= now).sort((a, b) => a.at - b.at).slice(0, limit).map((r) => ({ sha256: r.sha256, attempts: r.attempts }));
      },
      settleReplica: async (instanceId, sha256, retryInMs) => {
        assertUsable();
        const key = `${instanceId}\u0000${sha256}`;
        const row = outbox.get(key);
        if (row === undefined) return;
        if (retryInMs === null) outbox.delete(key);
        else outbox.set(key, { ...row, attempts: row.attempts + 1, nextAt: clock().getTime() + retryInMs });
      },
      countReplicaOutbox: async () => {
        assertUsable();
        return outbox.size;
      },
      setRequest: async (name, on) => {
        assertUsable();
        if (on) requests.add(name);
        else requests.delete(name);
      },
      hasRequest: async (name) => {
        assertUsable();
        return requests.has(name);
      },
    },

    count: async (path, recursive) => {
      assertUsable();
      return listing.countListing(committed.inodes, path, recursive);
    },
    ping: async () => assertUsable(),
    close: async () => {
      closed = true;
    },
  };
}
