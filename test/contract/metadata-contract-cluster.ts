import { expect } from 'chai';
import type { MetadataStore } from '../../lib/metadata/types.js';
import { casFile, dir, sha, type ContractContext } from './metadata-helpers.js';

/** Replication's records: copies of blobs, the instances, leases (migration 004). */
export function clusterContract(ctx: ContractContext): void {
  const record = (store: MetadataStore, instanceId: string, blob: string, imageId = 'img-1') => store.recordBlob({ sha256: blob, instanceId, imageId, size: 10 });
  const ids = (copies: { instanceId: string }[]): string[] => copies.map((c) => c.instanceId);

  it('lists the copies of a content, and keeps a replica while an entry names the content on another instance', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const [a, b] = [`a-${base.slice(1)}`, `b-${base.slice(1)}`];
    const x = sha(`x${base}`);
    await record(store, a, x);
    await record(store, b, x);
    await store.create(dir(base));
    await store.create(casFile(`${base}/f`, a, x));
    expect(ids(await store.cluster.listCopies(x))).to.deep.equal([a, b].sort());
    expect(await store.cluster.isReferenced(x)).to.equal(true);
    const future = new Date(Date.now() + 60_000);
    // b holds no reference itself, yet its copy is the replica of a's entry.
    expect((await store.listCollectableBlobs(b, future, 1000)).map((r) => r.sha256)).to.not.include(x);
    expect(await store.forgetBlob(b, x, future)).to.equal(false);
    await store.delete(`${base}/f`);
    expect(await store.cluster.isReferenced(x)).to.equal(false);
    expect((await store.listCollectableBlobs(b, future, 1000)).map((r) => r.sha256)).to.include(x);
    expect(await store.forgetBlob(b, x, future)).to.equal(true);
    expect(ids(await store.cluster.listCopies(x))).to.deep.equal([a]);
  });

  it('finds referenced contents with too few good copies on instances that count, with their holders', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const [a, b, c] = ['a', 'b', 'c'].map((n) => `${n}-${base.slice(1)}`) as [string, string, string];
    const [one, two, bad, unref] = ['one', 'two', 'bad', 'unref'].map((n) => sha(`${n}${base}`)) as [string, string, string, string];
    await store.create(dir(base));
    for (const [blob, holders] of [[one, [a]], [two, [a, b]], [bad, [a, b]], [unref, [c]]] as const) {
      for (const h of holders) await record(store, h, blob);
      if (blob !== unref) await store.create(casFile(`${base}/${blob.slice(0, 8)}`, a, blob));
    }
    await store.markBlobVerified(b, bad, false);
    const mine = new Set([one, two, bad, unref]);
    const under = async (notCounting: string[]) =>
      (await store.cluster.listUnderReplicated({ after: '', replicas: 2, notCounting, limit: 100_000 })).filter((u) => mine.has(u.sha256));
    expect((await under([])).map((u) => [u.sha256, u.holders])).to.deep.equal([[one, [a]], [bad, [a]]].sort((p, q) => (p[0] as string).localeCompare(q[0] as string)));
    // A draining b no longer counts, but still holds a good copy to copy from.
    const draining = await under([b]);
    expect(draining.map((u) => u.sha256).sort()).to.deep.equal([one, two, bad].sort());
    expect(draining.find((u) => u.sha256 === two)?.holders).to.deep.equal([a, b].sort());
    // Paging: after the first one, the rest.
    const all = await under([b]);
    const first = all[0]?.sha256 ?? '';
    const rest = (await store.cluster.listUnderReplicated({ after: first, replicas: 2, notCounting: [b], limit: 100_000 })).filter((u) => mine.has(u.sha256));
    expect(rest.map((u) => u.sha256)).to.deep.equal(all.slice(1).map((u) => u.sha256));
    const counted = await store.cluster.countUnderReplicated(2, [b]);
    expect(counted).to.be.at.least(3);
    // Per instance: a holds good copies of one, two and bad; b of two (its copy of bad is quarantined); c none that matter.
    const per = await store.cluster.underReplicatedPerInstance(2, [b]);
    expect([per.get(a), per.get(b), per.get(c)]).to.deep.equal([3, 1, undefined]);
  });

  it('forgets an instance: its copies stop counting, its references stay, and it rejoins active', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const [a, b] = [`a-${base.slice(1)}`, `b-${base.slice(1)}`];
    const x = sha(`x${base}`);
    await store.create(dir(base));
    await record(store, a, x);
    await record(store, b, x);
    await store.create(casFile(`${base}/f`, a, x));
    await store.cluster.heartbeat({ id: a, url: 'https://a.example:8443', usedBytes: 10, freeBytes: 1000 });
    const forgotten = await store.cluster.setInstanceState(a, 'forgotten');
    expect(forgotten.state).to.equal('forgotten');
    expect(ids(await store.cluster.listCopies(x))).to.deep.equal([b]);
    expect((await store.getBlob(a, x))?.refCount).to.equal(1);
    expect(await store.cluster.isReferenced(x)).to.equal(true);
    const back = await store.cluster.heartbeat({ id: a, url: 'https://a.example:8443', usedBytes: 0, freeBytes: 1000 });
    expect(back.state).to.equal('active');
    expect(back.seenAgoMs).to.be.within(0, 5000);
    expect(ids(await store.cluster.listCopies(x))).to.deep.equal([b]);
    const listed = (await store.cluster.listInstances()).find((r) => r.id === a);
    expect(listed?.url).to.equal('https://a.example:8443');
    expect(listed?.freeBytes).to.equal(1000);
  });

  it('drops one copy, lists an instance\u2019s copies in pages and counts copies per instance', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const a = `a-${base.slice(1)}`;
    const blobs = [1, 2, 3].map((n) => sha(`${n}${base}`)).sort();
    for (const blob of blobs) await record(store, a, blob);
    expect((await store.cluster.copiesPerInstance()).get(a)).to.deep.equal({ blobs: 3, bytes: 30 });
    const firstTwo = await store.cluster.listCopiesOn(a, '', 2);
    expect(firstTwo.map((c) => c.sha256)).to.deep.equal(blobs.slice(0, 2));
    expect((await store.cluster.listCopiesOn(a, firstTwo[1]?.sha256 ?? '', 2)).map((c) => c.sha256)).to.deep.equal(blobs.slice(2));
    await store.cluster.dropCopy(a, blobs[0] as string);
    expect((await store.cluster.copiesPerInstance()).get(a)).to.deep.equal({ blobs: 2, bytes: 20 });
    await store.cluster.setInstanceState(a, 'draining');
    expect((await store.cluster.listInstances()).find((r) => r.id === a)?.state).to.equal('draining');
  });

  it('gives a lease to one owner at a time, renewable by it, and to another once released', async () => {
    const store = ctx.store();
    const name = `lease-${ctx.uniquePath().slice(1)}`;
    expect(await store.cluster.acquireLease(name, 'one', 60_000)).to.equal(true);
    expect(await store.cluster.acquireLease(name, 'two', 60_000)).to.equal(false);
    expect(await store.cluster.acquireLease(name, 'one', 60_000)).to.equal(true);
    await store.cluster.releaseLease(name, 'two');
    expect(await store.cluster.acquireLease(name, 'two', 60_000)).to.equal(false);
    await store.cluster.releaseLease(name, 'one');
    expect(await store.cluster.acquireLease(name, 'two', 60_000)).to.equal(true);
    // An expired lease goes to whoever asks.
    expect(await store.cluster.acquireLease(`${name}-x`, 'one', 0)).to.equal(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(await store.cluster.acquireLease(`${name}-x`, 'two', 60_000)).to.equal(true);
  });
}
