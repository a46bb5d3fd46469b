import { expect } from 'chai';
import type { MetadataStore } from '../../lib/metadata/types.js';
import { casFile, collect, DIR_ATTRS, dir, expectCode, file, sha, type ContractContext } from './metadata-helpers.js';

/** The CAS blob index (reference counts, collector, scrubber) and single-use links. */
export function blobsAndLinksContract(ctx: ContractContext): void {
  const refs = async (store: MetadataStore, instance: string, blob: string): Promise<number | undefined> =>
    (await store.getBlob(instance, blob))?.refCount;

  it('keeps blob reference counts in step with creates, replacements, moves and deletes', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const instance = `i-${base.slice(1)}`;
    const [x, y] = [sha(`x${base}`), sha(`y${base}`)];
    await store.create(dir(base));
    const a = await store.create(casFile(`${base}/a`, instance, x));
    expect(await refs(store, instance, x)).to.equal(1);
    await store.create(casFile(`${base}/b`, instance, x));
    expect(await refs(store, instance, x)).to.equal(2);
    // Same blob on another instance is another row.
    await store.create(casFile(`${base}/other`, `${instance}-2`, x));
    expect(await refs(store, `${instance}-2`, x)).to.equal(1);
    expect(await refs(store, instance, x)).to.equal(2);

    await store.update(a.path, a.version, { blobId: y, etag: y, size: 3 });
    expect([await refs(store, instance, x), await refs(store, instance, y)]).to.deep.equal([1, 1]);
    const a2 = await store.get(a.path);
    await store.update(a.path, a2?.version ?? 0, { mode: 0o600, mtime: new Date() });
    expect([await refs(store, instance, x), await refs(store, instance, y)]).to.deep.equal([1, 1]);

    await store.move(`${base}/b`, `${base}/sub/b`, { parents: DIR_ATTRS });
    expect(await refs(store, instance, x)).to.equal(1);

    const beforeZero = new Date(Date.now() - 1000);
    // Overwriting a (blob y) with b (blob x): y loses its last reference.
    await store.move(`${base}/sub/b`, a.path, { overwrite: true });
    const yRow = await store.getBlob(instance, y);
    expect(yRow?.refCount).to.equal(0);
    expect(yRow?.touchedAt.getTime()).to.be.at.least(beforeZero.getTime());
    expect(await refs(store, instance, x)).to.equal(1);

    // Re-pointing a CAS file to S3 releases its reference.
    const cur = await store.get(a.path);
    await store.update(a.path, cur?.version ?? 0, { backend: 's3', instanceId: null, blobId: 'bucket-key' });
    expect(await refs(store, instance, x)).to.equal(0);
    for (const n of ['c1', 'c2', 'c3']) await store.create(casFile(`${base}/deep/${n}`, instance, x), { parents: DIR_ATTRS });
    expect(await refs(store, instance, x)).to.equal(3);
    await store.delete(base, { recursive: true });
    expect(await refs(store, instance, x)).to.equal(0);
    expect(await refs(store, `${instance}-2`, x)).to.equal(0);
    // S3 entries never touch the CAS index.
    await store.create(file(`${base}-s3`, { backend: 's3', blobId: 'k', etag: x }));
    expect(await store.getBlob('', 'k')).to.equal(null);
  });

  it('counts the references of creates committed together, several naming one blob', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const instance = `i-${base.slice(1)}`;
    const [x, y] = [sha(`x${base}`), sha(`y${base}`)];
    await store.create(dir(base));
    const chain = await store.getChain(`${base}/f0`);
    // Concurrent guarded creates share commits: one INSERT of several rows.
    const blobs = [x, y, x, x, y, x];
    const made = await Promise.all(blobs.map((blob, i) => store.createIfUnchanged(casFile(`${base}/f${i}`, instance, blob), chain)));
    expect(made.every((e) => e !== null)).to.equal(true);
    expect([await refs(store, instance, x), await refs(store, instance, y)]).to.deep.equal([4, 2]);
    await store.delete(base, { recursive: true });
    expect([await refs(store, instance, x), await refs(store, instance, y)]).to.deep.equal([0, 0]);
  });

  it('records blobs, keeps counts on re-record, and collects only unreferenced untouched ones', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const instance = `i-${base.slice(1)}`;
    const [kept, lost] = [sha(`k${base}`), sha(`l${base}`)];
    const rec = await store.recordBlob({ sha256: kept, instanceId: instance, imageId: 'img-1', size: 10 });
    expect(rec).to.include({ sha256: kept, instanceId: instance, imageId: 'img-1', size: 10, refCount: 0, quarantined: false, lastVerifiedAt: null });
    await store.create(casFile(base, instance, kept));
    const again = await store.recordBlob({ sha256: kept, instanceId: instance, imageId: 'img-2', size: 10 });
    expect(again).to.include({ refCount: 1, imageId: 'img-2' });
    expect(again.touchedAt.getTime()).to.be.at.least(rec.touchedAt.getTime());
    await store.recordBlob({ sha256: lost, instanceId: instance, imageId: 'img-1', size: 4 });

    const future = new Date(Date.now() + 60_000);
    const past = new Date(Date.now() - 60_000);
    expect((await store.listCollectableBlobs(instance, future, 10)).map((b) => b.sha256)).to.deep.equal([lost]);
    expect(await store.listCollectableBlobs(instance, past, 10)).to.have.length(0);
    expect(await store.forgetBlob(instance, lost, past)).to.equal(false);
    expect(await store.forgetBlob(instance, kept, future)).to.equal(false);
    expect(await store.forgetBlob(instance, lost, future)).to.equal(true);
    expect(await store.getBlob(instance, lost)).to.equal(null);
    expect(await store.getBlob(instance, kept)).to.not.equal(null);
    await expectCode(store.recordBlob({ sha256: 'not-a-hash', instanceId: instance, imageId: 'i', size: 1 }), 'BAD_REQUEST');
  });

  it('orders blobs for the scrubber and records verification and quarantine', async () => {
    const store = ctx.store();
    const instance = `i-${ctx.uniquePath().slice(1)}`;
    const hashes = [sha('s1'), sha('s2'), sha('s3')];
    for (const h of hashes) await store.recordBlob({ sha256: h, instanceId: instance, imageId: 'img', size: 1 });
    const [h1, h2, h3] = hashes as [string, string, string];
    await store.markBlobVerified(instance, h1, true);
    expect((await store.getBlob(instance, h1))?.lastVerifiedAt).to.be.instanceOf(Date);
    await store.markBlobVerified(instance, h2, false);
    expect((await store.getBlob(instance, h2))?.quarantined).to.equal(true);
    const order = (await store.listBlobsForScrub(instance, 10)).map((b) => b.sha256);
    expect(order).to.deep.equal([h3, h1]);
    expect(await store.listBlobsForScrub(instance, 1)).to.have.length(1);
    // A row that keeps only a reference count (no image: its copy was dropped) is not a copy to scrub.
    await store.cluster.dropCopy(instance, h3);
    expect((await store.listBlobsForScrub(instance, 10)).map((b) => b.sha256)).to.deep.equal([h1]);
    expect((await collect(store.listBlobs(instance))).map((b) => b.sha256).sort()).to.deep.equal([...hashes].sort());
    expect(await collect(store.listBlobs(`${instance}-none`))).to.have.length(0);
  });

  it('lets exactly one of 20 concurrent consumers take a link', async () => {
    const store = ctx.store();
    const id = `link-${ctx.uniquePath().slice(1)}`;
    const link = await store.createLink({ id, path: '/docs/a.txt', createdBy: 1001, expiresAt: new Date(Date.now() + 3_600_000) });
    expect(link).to.include({ id, path: '/docs/a.txt', createdBy: 1001, usedAt: null });
    const results = await Promise.all(Array.from({ length: 20 }, () => store.consumeLink(id)));
    expect(results.filter((r) => r.status === 'consumed')).to.have.length(1);
    expect(results.filter((r) => r.status === 'used')).to.have.length(19);
    const consumed = results.find((r) => r.status === 'consumed');
    expect(consumed?.status === 'consumed' ? consumed.link.usedAt : null).to.be.instanceOf(Date);
    await expectCode(store.createLink({ id, path: '/x', createdBy: 1, expiresAt: new Date() }), 'FILE_ALREADY_EXISTS');
  });

  it('classifies links as not_found or expired without consuming them', async () => {
    const store = ctx.store();
    const id = `link-${ctx.uniquePath().slice(1)}`;
    expect(await store.consumeLink(`${id}-missing`)).to.deep.equal({ status: 'not_found' });
    const expiresAt = new Date(Date.now() + 60_000);
    await store.createLink({ id, path: '/f', createdBy: 0, expiresAt });
    const late = await store.consumeLink(id, new Date(expiresAt.getTime() + 1));
    expect(late.status).to.equal('expired');
    expect(late.status === 'expired' ? late.link.usedAt : 'x').to.equal(null);
    expect((await store.consumeLink(id)).status).to.equal('consumed');
    expect((await store.consumeLink(id)).status).to.equal('used');
  });

  it('purges links that expired or were used before a date', async () => {
    const store = ctx.store();
    const id = `purge-${ctx.uniquePath().slice(1)}`;
    // Dates long past so that no other test's links fall before the cut-off.
    await store.createLink({ id: `${id}-expired`, path: '/f', createdBy: 0, expiresAt: new Date('1995-01-01T00:00:00Z') });
    await store.createLink({ id: `${id}-used`, path: '/f', createdBy: 0, expiresAt: new Date('1996-06-01T00:00:00Z') });
    expect((await store.consumeLink(`${id}-used`, new Date('1995-06-01T00:00:00Z'))).status).to.equal('consumed');
    await store.createLink({ id: `${id}-used-late`, path: '/f', createdBy: 0, expiresAt: new Date('2099-01-01T00:00:00Z') });
    expect((await store.consumeLink(`${id}-used-late`, new Date('1997-06-01T00:00:00Z'))).status).to.equal('consumed');
    await store.createLink({ id: `${id}-live`, path: '/f', createdBy: 0, expiresAt: new Date('2099-01-01T00:00:00Z') });
    expect(await store.purgeLinks(new Date('1997-01-01T00:00:00Z'))).to.equal(2);
    expect(await store.consumeLink(`${id}-expired`)).to.deep.equal({ status: 'not_found' });
    expect(await store.consumeLink(`${id}-used`)).to.deep.equal({ status: 'not_found' });
    expect((await store.consumeLink(`${id}-used-late`)).status).to.equal('used');
    expect((await store.consumeLink(`${id}-live`)).status).to.equal('consumed');
  });

  it('answers ping', async () => {
    await ctx.store().ping();
  });
}
