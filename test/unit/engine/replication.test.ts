import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { expect } from 'chai';
import type { Backend, PutOptions, PutResult } from '../../../lib/backends/types.js';
import { staticClusterView, type ClusterView } from '../../../lib/cluster/membership.js';
import { Repairer } from '../../../lib/cluster/repairer.js';
import { createEngine, type Engine, type EngineDeps } from '../../../lib/engine/index.js';
import { rankInstances } from '../../../lib/engine/placement.js';
import { fanOut } from '../../../lib/engine/replicate.js';
import { CallfsError } from '../../../lib/errors.js';
import { createLocalLockManager } from '../../../lib/locks/index.js';
import { createSilentLogger } from '../../../lib/log/index.js';
import type { MetadataStore } from '../../../lib/metadata/types.js';
import { createMemoryBackend, type MemoryBackend } from '../../fakes/memory-backend.js';
import { createMemoryMetadataStore } from '../../fakes/memory-metadata-store.js';
import { alice, rejectsWith, root } from '../../support/engine.js';

/**
 * Replication on in-memory parts: three instances, each a memory backend
 * that records its copies in the shared in-memory store as the CAS does;
 * the engine of instance "a" sees "b" and "c" as peers.
 */

const IDS = ['a', 'b', 'c'] as const;
type Id = (typeof IDS)[number];

interface Instance {
  backend: MemoryBackend;
  /** As the engine reaches it: recording its copies, failing when told to. */
  reach: Backend;
  fail: boolean;
}

function cluster(store: MetadataStore): Record<Id, Instance> {
  const make = (id: Id): Instance => {
    const backend = createMemoryBackend();
    const instance: Instance = {
      backend,
      fail: false,
      reach: {
        ...backend,
        async put(body: Readable, options?: PutOptions): Promise<PutResult> {
          if (instance.fail) {
            // Reads a little, then breaks, as a peer dying mid-upload does.
            await new Promise<void>((resolve) => body.once('readable', resolve));
            body.read();
            body.destroy();
            throw new CallfsError('BAD_GATEWAY', `instance ${id} is gone`, { component: 'peer' });
          }
          const stored = await backend.put(body, options);
          await store.recordBlob({ sha256: stored.sha256, instanceId: id, imageId: 'mem', size: stored.size });
          return stored;
        },
        open: (blobId, options) => (instance.fail ? Promise.reject(new CallfsError('BAD_GATEWAY', `instance ${id} is gone`, { component: 'peer' })) : backend.open(blobId, options)),
        async evict(blobId) {
          await backend.delete(blobId);
          return true;
        },
      },
    };
    return instance;
  };
  return { a: make('a'), b: make('b'), c: make('c') };
}

interface Setup {
  engine: Engine;
  deps: EngineDeps;
  store: MetadataStore;
  instances: Record<Id, Instance>;
  holders(sha256: string): Id[];
}

function setup(view: ClusterView): Setup {
  const store = createMemoryMetadataStore();
  const instances = cluster(store);
  const deps: EngineDeps = {
    store,
    locks: createLocalLockManager({ waitMs: 5000 }),
    backends: { cas: instances.a.reach },
    peers: new Map([['b', instances.b.reach], ['c', instances.c.reach]]),
    cluster: view,
    defaultBackend: 'cas',
    instanceId: 'a',
    maxUploadBytes: 64 * 1024 * 1024,
    logger: createSilentLogger(),
  };
  return {
    engine: createEngine(deps),
    deps,
    store,
    instances,
    holders: (sha256) => IDS.filter((id) => instances[id].backend.ids().includes(sha256)),
  };
}

const PUT = { mustCreate: false } as const;
const bytes = (n: number): Buffer => randomBytes(n);

describe('replication (engine, in memory)', function () {
  it('stores a PUT on `replicas` instances at once, this one first, the others by rendezvous of the path', async function () {
    const t = setup(staticClusterView(2));
    const content = bytes(300_000);
    const result = await t.engine.writeFile(root, '/r/one', Readable.from([content]), PUT);
    const expected = ['a', rankInstances('/r/one', ['b', 'c'])[0]];
    expect(result.copies).to.deep.equal(expected);
    expect(result.entry.instanceId).to.equal('a');
    expect(t.holders(result.entry.etag as string).sort()).to.deep.equal([...expected].sort());
    expect((await t.engine.replicasOf(result.entry)).sort()).to.deep.equal([...expected].sort());
    // Three copies when asked for three.
    const all = setup(staticClusterView(3));
    const three = await all.engine.writeFile(root, '/r/three', Readable.from([content]), PUT);
    expect(all.holders(three.entry.etag as string)).to.deep.equal(['a', 'b', 'c']);
  });

  it('refuses with 503 and commits nothing when fewer copies than min_replicas could be made; accepts down to it otherwise', async function () {
    const strict = setup(staticClusterView(3));
    strict.instances.b.fail = true;
    const err = await rejectsWith(strict.engine.writeFile(root, '/r/strict', Readable.from([bytes(200_000)]), PUT), 'SERVICE_UNAVAILABLE');
    expect(err.message).to.match(/2 of the 3 copies/);
    expect(await strict.store.get('/r/strict')).to.equal(null);

    const lenient = setup(staticClusterView(3, 2));
    lenient.instances.c.fail = true;
    const done = await lenient.engine.writeFile(root, '/r/lenient', Readable.from([bytes(200_000)]), PUT);
    expect(done.copies).to.deep.equal(['a', 'b']);
    expect(await lenient.engine.replicasOf(done.entry)).to.deep.equal(['a', 'b']);
  });

  it('says 503 before reading a byte when fewer instances are up than a write needs', async function () {
    const view: ClusterView = { ...staticClusterView(2), isUp: (id) => id === 'a', takesCopies: (id) => id === 'a' };
    const t = setup(view);
    const body = new PassThrough();
    await rejectsWith(t.engine.writeFile(root, '/r/alone', body, PUT), 'SERVICE_UNAVAILABLE');
    expect(t.instances.a.backend.ids()).to.deep.equal([]);
    // Not even this instance takes copies (it is draining, the others are down): still a 503, not a crash.
    const none = setup({ ...staticClusterView(2), isUp: (id) => id === 'a', takesCopies: () => false });
    await rejectsWith(none.engine.writeFile(root, '/r/nowhere', new PassThrough(), PUT), 'SERVICE_UNAVAILABLE');
  });

  it('the client\u2019s own error wins: a body over the limit is 413 on every copy', async function () {
    const t = setup(staticClusterView(2));
    t.deps.maxUploadBytes = 1000;
    await rejectsWith(t.engine.writeFile(root, '/r/big', Readable.from([bytes(5000)]), PUT), 'PAYLOAD_TOO_LARGE');
  });

  it('reads fail over: a lost local copy, then a dead peer, still answer the bytes from the copy that is left', async function () {
    const t = setup(staticClusterView(3));
    const content = bytes(100_000);
    const { entry } = await t.engine.writeFile(root, '/r/read', Readable.from([content]), PUT);
    await t.instances.a.backend.delete(entry.blobId as string);
    t.instances.b.fail = true;
    const chunks: Buffer[] = [];
    for await (const chunk of await t.engine.openContent(entry)) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(content)).to.equal(true);
    // With no copy left anywhere the first failure is the answer.
    t.instances.c.fail = true;
    await rejectsWith(t.engine.openContent(entry), 'FILE_NOT_FOUND');
  });

  it('the repairer brings a blob back to `replicas` copies, and a drain moves copies off an instance', async function () {
    const t = setup(staticClusterView(2));
    // Written with one copy (as before replication was turned on), then replicas raised to 2.
    const content = bytes(50_000);
    const stored = await t.instances.a.reach.put(Readable.from([content]));
    await t.store.create({ path: '/old', type: 'file', mode: 0o644, uid: alice.uid, gid: alice.gid, size: stored.size, backend: 'cas', instanceId: 'a', blobId: stored.id, etag: stored.sha256 }, { parents: { mode: 0o755, uid: 0, gid: 0 } });
    const draining: string[] = [];
    const view = { ...staticClusterView(2), notCounting: () => draining, draining: () => draining, takesCopies: (id: string) => !draining.includes(id), refresh: async () => undefined };
    const repairer = new Repairer({
      store: t.store,
      instanceId: 'a',
      view,
      backendOf: (id) => t.instances[id as Id]?.reach,
      instanceIds: IDS,
      intervalMs: 0,
      bytesPerSecond: 0,
      logger: createSilentLogger(),
    });
    const first = await repairer.pass();
    expect(first).to.include({ owner: true, repaired: 1, underReplicated: 0 });
    const holders = t.holders(stored.sha256);
    expect(holders).to.have.length(2);
    expect(await repairer.pass()).to.include({ repaired: 0, underReplicated: 0 });

    const other = holders.find((h) => h !== 'a') as Id;
    draining.push(other);
    const drained = await repairer.pass();
    expect(drained.drained).to.equal(1);
    const copies = (await t.store.cluster.listCopies(stored.sha256)).map((c) => c.instanceId).sort();
    expect(copies).to.not.include(other);
    expect(copies).to.have.length(2);
    expect((await t.store.cluster.copiesPerInstance()).get(other)).to.equal(undefined);
  });

  it('rebalances on request: copies move from the full instance to the others, the old copies go, every file reads', async function () {
    const t = setup(staticClusterView(1));
    const contents = Array.from({ length: 6 }, () => bytes(1024 * 1024));
    for (const [n, content] of contents.entries()) {
      const stored = await t.instances.a.reach.put(Readable.from([content]));
      await t.store.create({ path: `/even/${n}`, type: 'file', mode: 0o644, uid: alice.uid, gid: alice.gid, size: stored.size, backend: 'cas', instanceId: 'a', blobId: stored.id, etag: stored.sha256 }, { parents: { mode: 0o755, uid: 0, gid: 0 } });
    }
    const repairer = new Repairer({
      store: t.store,
      instanceId: 'a',
      view: { ...staticClusterView(1), refresh: async () => undefined },
      backendOf: (id) => t.instances[id as Id]?.reach,
      instanceIds: IDS,
      intervalMs: 0,
      bytesPerSecond: 0,
      logger: createSilentLogger(),
    });
    expect((await repairer.pass()).rebalanced, 'nothing moves unasked').to.equal(0);
    await t.store.cluster.setRequest('rebalance', true);
    const pass = await repairer.pass();
    expect(pass.rebalanced).to.be.at.least(3);
    expect(await t.store.cluster.hasRequest('rebalance')).to.equal(false);
    const held = IDS.map((id) => t.instances[id].backend.ids().length);
    expect(held.reduce((x, y) => x + y, 0), 'each content in one place').to.equal(6);
    expect(Math.max(...held) - Math.min(...held)).to.be.at.most(1);
    for (const [n, content] of contents.entries()) {
      const entry = (await t.store.get(`/even/${n}`)) as NonNullable<Awaited<ReturnType<MetadataStore['get']>>>;
      const chunks: Buffer[] = [];
      for await (const chunk of await t.engine.openContent(entry)) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(content)).to.equal(true);
    }
  });

  it('only one repairer works at a time: the lease', async function () {
    const t = setup(staticClusterView(2));
    const make = (id: string) =>
      new Repairer({ store: t.store, instanceId: id, view: { ...staticClusterView(2), refresh: async () => undefined }, backendOf: () => undefined, instanceIds: IDS, intervalMs: 0, bytesPerSecond: 0, logger: createSilentLogger() });
    const [one, two] = [make('a'), make('b')];
    expect((await one.pass()).owner).to.equal(true);
    expect((await two.pass()).owner).to.equal(false);
    await one.stop();
    expect((await two.pass()).owner).to.equal(true);
  });
});

describe('fanOut', function () {
  it('keeps feeding the other branches when one is destroyed midway, at the pace of the slowest', async function () {
    const content = bytes(8 * 1024 * 1024);
    const source = Readable.from((function* () {
      for (let i = 0; i < content.length; i += 65536) yield content.subarray(i, i + 65536);
    })());
    const [kept, cut] = fanOut(source, 2) as [PassThrough, PassThrough];
    cut.once('data', () => cut.destroy());
    const chunks: Buffer[] = [];
    for await (const chunk of kept) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(content)).to.equal(true);
  });

  it('fails every branch when the body fails', async function () {
    const source = new PassThrough();
    const branches = fanOut(source, 2);
    const errors = branches.map((b) => new Promise((resolve) => b.once('error', resolve)));
    source.write('x');
    source.destroy(new Error('client went away'));
    for (const e of await Promise.all(errors)) expect((e as Error).message).to.equal('client went away');
  });
});
