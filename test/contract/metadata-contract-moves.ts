import { expect } from 'chai';
import type { CallfsError } from '../../lib/errors.js';
import type { BlobRecord, BlobRowToWrite } from '../../lib/metadata/types.js';
import { casFile, collect, DIR_ATTRS, dir, expectCode, expectConsistentTree, file, sha, type ContractContext } from './metadata-helpers.js';

/** Moves, whole-subtree renames and transactions. */
export function movesContract(ctx: ContractContext): void {
  /** What a guarded-write test starts from: a directory `base/d`, its chain as read, and an instance id of the test's own. */
  async function guardedSetup() {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const instance = `i-${base.slice(1)}`;
    const d = await store.create(dir(`${base}/d`), { parents: DIR_ATTRS });
    return { store, base, instance, d, chain: await store.getChain(`${base}/d`) };
  }

  it('applies a write decided on earlier reads only while each row read is unchanged (createIfUnchanged, updateIfUnchanged)', async () => {
    const { store, base, instance, d, chain } = await guardedSetup();
    const refs = async (blob: string): Promise<number | undefined> => (await store.getBlob(instance, blob))?.refCount;
    expect(chain.map((e) => e.path)).to.deep.equal(['/', base, `${base}/d`]);

    const created = await store.createIfUnchanged(casFile(`${base}/d/f`, instance, sha('g1'), 7), chain);
    expect(created).to.include({ path: `${base}/d/f`, name: 'f', parentId: d.id, size: 7, etag: sha('g1'), version: 1 });
    expect(await store.get(`${base}/d/f`)).to.deep.include({ id: created!.id, etag: sha('g1') });
    expect(await refs(sha('g1'))).to.equal(1);
    // The rows read must end with the new entry's parent.
    await expectCode(store.createIfUnchanged(casFile(`${base}/d/sub/f`, instance, sha('g0')), chain), 'INTERNAL_ERROR');
    await expectCode(store.createIfUnchanged(casFile(`${base}/d/f0`, instance, sha('g0')), []), 'INTERNAL_ERROR');
    // Something exists at the path now: nothing is written.
    expect(await store.createIfUnchanged(casFile(`${base}/d/f`, instance, sha('g2')), chain)).to.equal(null);
    expect((await store.get(`${base}/d/f`))?.etag).to.equal(sha('g1'));

    const updated = await store.updateIfUnchanged(created!.path, created!.version, { blobId: sha('g2'), etag: sha('g2'), size: 3 }, [...chain, created!]);
    expect(updated).to.include({ id: created!.id, etag: sha('g2'), size: 3, version: 2 });
    expect([await refs(sha('g1')), await refs(sha('g2'))]).to.deep.equal([0, 1]);
    // Read at version 1, now at 2: held back.
    expect(await store.updateIfUnchanged(created!.path, created!.version, { blobId: sha('g1'), etag: sha('g1') }, [...chain, created!])).to.equal(null);
    expect((await store.get(`${base}/d/f`))?.etag).to.equal(sha('g2'));

    // The parent chmod-ed since it was read (its version moved): held back.
    const d2 = await store.update(d.path, d.version, { mode: 0o700 });
    expect(await store.createIfUnchanged(casFile(`${base}/d/g`, instance, sha('g3')), chain)).to.equal(null);
    expect(await store.updateIfUnchanged(updated!.path, updated!.version, { size: 9 }, [...chain, updated!])).to.equal(null);
    expect(await store.get(`${base}/d/g`)).to.equal(null);
    const chain2 = [...chain.slice(0, -1), d2];
    expect(await store.createIfUnchanged(casFile(`${base}/d/g`, instance, sha('g3')), chain2)).to.include({ path: `${base}/d/g` });

    // An ancestor moved away (same id and version below it, other paths), or replaced by a new directory of the same name.
    await store.move(base, `${base}-moved`);
    expect(await store.createIfUnchanged(casFile(`${base}/d/h`, instance, sha('g4')), chain2)).to.equal(null);
    await store.create(dir(`${base}/d`), { parents: DIR_ATTRS });
    expect(await store.createIfUnchanged(casFile(`${base}/d/h`, instance, sha('g4')), chain2)).to.equal(null);
    expect(await store.get(`${base}/d/h`)).to.equal(null);
    expect(await refs(sha('g4'))).to.be.oneOf([undefined, 0]);
    await expectConsistentTree(store, `${base}-moved`);

    // Values travel as literals on Postgres: quotes, braces, commas and $1 stay exactly as given (paths hold no backslash).
    const odd = await store.create(dir(`${base}/q'"$1{a,b} é`), { parents: DIR_ATTRS });
    const oddChain = await store.getChain(odd.path);
    const oddFile = await store.createIfUnchanged(casFile(`${odd.path}/'$2"`, instance, sha('g5')), oddChain);
    expect(oddFile?.path).to.equal(`${base}/q'"$1{a,b} é/'$2"`);
    expect((await store.get(oddFile!.path))?.parentId).to.equal(odd.id);
  });

  it('writes the blob-index row a guarded write carries in the same commit, whether or not the guard lets the entry through', async () => {
    const { store, base, instance, chain } = await guardedSetup();
    const rows: BlobRecord[] = [];
    const carried = (blob: string, segment: number): BlobRowToWrite => ({
      blob: { sha256: blob, instanceId: instance, imageId: 'img-1', size: 7, packed: { segment, offset: 64 } },
      written: (row) => void rows.push(row),
    });

    const created = await store.createIfUnchanged(casFile(`${base}/d/f`, instance, sha('b1'), 7), chain, carried(sha('b1'), 3));
    expect(created).to.include({ path: `${base}/d/f`, etag: sha('b1') });
    expect(rows.map((r) => r.sha256)).to.deep.equal([sha('b1')]);
    expect(await store.getBlob(instance, sha('b1'))).to.deep.include({ imageId: 'img-1', size: 7, refCount: 1, packed: { segment: 3, offset: 64 } });

    // Held back by its guard: the entry is not written, the row is (its bytes are stored).
    expect(await store.createIfUnchanged(casFile(`${base}/d/f`, instance, sha('b2'), 7), chain, carried(sha('b2'), 4))).to.equal(null);
    expect(rows.map((r) => r.sha256)).to.deep.equal([sha('b1'), sha('b2')]);
    expect(await store.getBlob(instance, sha('b2'))).to.deep.include({ imageId: 'img-1', refCount: 0, packed: { segment: 4, offset: 64 } });

    const updated = await store.updateIfUnchanged(created!.path, created!.version, { blobId: sha('b2'), etag: sha('b2') }, [...chain, created!], carried(sha('b2'), 5));
    expect(updated).to.include({ etag: sha('b2'), version: 2 });
    expect(await store.getBlob(instance, sha('b2'))).to.deep.include({ refCount: 1, packed: { segment: 5, offset: 64 } });
    expect((await store.getBlob(instance, sha('b1')))?.refCount).to.equal(0);

    // A row that cannot be written fails the write, and nothing of it is committed.
    const bad: BlobRowToWrite = { blob: { sha256: 'not-a-hash', instanceId: instance, imageId: 'img-1', size: 1 }, written: () => expect.fail('not written') };
    await expectCode(store.createIfUnchanged(casFile(`${base}/d/g`, instance, sha('b3'), 1), chain, bad), 'BAD_REQUEST');
    expect(await store.get(`${base}/d/g`)).to.equal(null);
  });

  it('concurrent guarded writes each get their own outcome; a failing one fails only its caller', async () => {
    const { store, base, instance, chain } = await guardedSetup();
    const existing = await Promise.all([1, 2, 3].map((i) => store.create(casFile(`${base}/d/old${i}`, instance, sha(`o${i}`)))));
    // A CAS file without its instance id breaks a CHECK constraint in the database.
    const broken = { ...casFile(`${base}/d/broken`, instance, sha('b')), instanceId: null };
    const outcomes = await Promise.allSettled([
      ...Array.from({ length: 12 }, (_, i) => store.createIfUnchanged(casFile(`${base}/d/new${i}`, instance, sha(`n${i}`)), chain)),
      store.createIfUnchanged(broken, chain),
      ...existing.map((e, i) => store.updateIfUnchanged(e.path, e.version, { blobId: sha(`u${i}`), etag: sha(`u${i}`) }, [...chain, e])),
      store.createIfUnchanged(casFile(`${base}/d/old1`, instance, sha('x')), chain),
    ]);
    const values = outcomes.map((o) => (o.status === 'fulfilled' ? o.value : o.reason));
    for (let i = 0; i < 12; i++) expect(values[i], `new${i}`).to.include({ path: `${base}/d/new${i}`, etag: sha(`n${i}`) });
    expect(outcomes[12]?.status).to.equal('rejected');
    expect(values[12]).to.be.instanceOf(Error);
    for (let i = 0; i < 3; i++) expect(values[13 + i], `old${i + 1}`).to.include({ path: `${base}/d/old${i + 1}`, etag: sha(`u${i}`), version: 2 });
    expect(values[16], 'a create onto an existing file').to.equal(null);
    expect(await store.get(`${base}/d/broken`)).to.equal(null);
    expect((await store.get(`${base}/d/old1`))?.etag).to.equal(sha('u0'));
    expect(await store.count(`${base}/d`, null)).to.equal(15);
  });

  it('creates that share a batch each get their own row, guard and blob row: odd names, one path twice, one stale guard', async () => {
    const { store, base, instance, chain } = await guardedSetup();
    await store.create(dir(`${base}/e`), { parents: DIR_ATTRS });
    const stale = await store.getChain(`${base}/e`);
    await store.update(`${base}/e`, stale[stale.length - 1]!.version, { mode: 0o700 });
    const rows = new Map<string, BlobRecord[]>();
    const carried = (key: string, blob: string): BlobRowToWrite => ({
      blob: { sha256: blob, instanceId: instance, imageId: 'img-1', size: 7, packed: { segment: 9, offset: 64 } },
      written: (row) => void rows.set(key, [...(rows.get(key) ?? []), row]),
    });
    // Names that an array literal must quote: braces, commas, quotes, spaces, NULL, and the same name in other cases.
    const names = ['a', '{b,c}', '"q"', "it's", 'sp ace', 'NULL', 'x,y', 'A'];
    const outcomes = await Promise.all([
      store.createIfUnchanged(casFile(`${base}/d/first`, instance, sha('c0')), chain),
      ...names.map((n, i) => store.createIfUnchanged(casFile(`${base}/d/${n}`, instance, sha(`c${i + 1}`), i), chain, carried(n, sha(`c${i + 1}`)))),
      store.createIfUnchanged(casFile(`${base}/d/twice`, instance, sha('same'), 1), chain, carried('t1', sha('same'))),
      store.createIfUnchanged(casFile(`${base}/d/twice`, instance, sha('same'), 2), chain, carried('t2', sha('same'))),
      store.createIfUnchanged(casFile(`${base}/e/held`, instance, sha('h')), stale),
    ]);
    names.forEach((n, i) => {
      expect(outcomes[i + 1], n).to.include({ path: `${base}/d/${n}`, name: n, etag: sha(`c${i + 1}`), size: i });
      expect(rows.get(n)?.map((r) => r.sha256), n).to.deep.equal([sha(`c${i + 1}`)]);
    });
    const [t1, t2, held] = outcomes.slice(names.length + 1);
    // The first of two creates at one path makes it; the second finds it taken.
    expect(t1).to.include({ path: `${base}/d/twice`, size: 1 });
    expect(t2).to.equal(null);
    expect((await store.getBlob(instance, sha('same')))?.refCount).to.equal(1);
    expect(rows.get('t1')?.[0]).to.deep.include({ sha256: sha('same'), packed: { segment: 9, offset: 64 } });
    expect(rows.get('t2')?.[0]?.sha256).to.equal(sha('same'));
    expect(held).to.equal(null);
    expect(await store.get(`${base}/e/held`)).to.equal(null);
    for (const [i, n] of names.entries()) expect((await store.get(`${base}/d/${n}`))?.etag, n).to.equal(sha(`c${i + 1}`));
    expect(await store.count(`${base}/d`, null)).to.equal(names.length + 2);
    expect((await store.getBlob(instance, sha('c1')))?.refCount).to.equal(1);
  });

  it('moves a file and refuses impossible moves', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const f = await store.create(file(`${base}/a/f`, { size: 5 }), { parents: DIR_ATTRS });
    await store.create(dir(`${base}/b`));
    const { entry, replaced } = await store.move(f.path, `${base}/b/g`);
    expect(entry).to.include({ id: f.id, path: `${base}/b/g`, name: 'g', size: 5, version: f.version + 1 });
    expect(entry.parentId).to.equal((await store.get(`${base}/b`))?.id);
    expect(replaced).to.equal(null);
    expect(await store.get(f.path)).to.equal(null);

    await expectCode(store.move(`${base}/a`, `${base}/a/inside`), 'BAD_REQUEST');
    await expectCode(store.move(`${base}/a`, `${base}/a`), 'BAD_REQUEST');
    await expectCode(store.move(`${base}/a`, '/'), 'BAD_REQUEST');
    await expectCode(store.move('/', `${base}/root`), 'BAD_REQUEST');
    await expectCode(store.move(`${base}/missing`, `${base}/x`), 'FILE_NOT_FOUND');
    await expectCode(store.move(`${base}/b/g`, `${base}/nope/g`), 'FILE_NOT_FOUND');
    await expectCode(store.move(`${base}/a`, `${base}/b/g/under-a-file`), 'NOT_A_DIRECTORY');
    const moved = await store.move(`${base}/b/g`, `${base}/new/deep/g`, { parents: DIR_ATTRS });
    expect(moved.entry.path).to.equal(`${base}/new/deep/g`);
    await expectConsistentTree(store, base);
  });

  it('replaces a file or an empty directory only with overwrite', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    await store.create(file(`${base}/src`, { size: 1 }), { parents: DIR_ATTRS });
    await store.create(file(`${base}/dst`, { size: 2 }));
    await store.create(dir(`${base}/emptydir`));
    await store.create(file(`${base}/full/x`), { parents: DIR_ATTRS });

    await expectCode(store.move(`${base}/src`, `${base}/dst`), 'FILE_ALREADY_EXISTS');
    const r1 = await store.move(`${base}/src`, `${base}/dst`, { overwrite: true });
    expect(r1.replaced).to.include({ path: `${base}/dst`, size: 2 });
    expect((await store.get(`${base}/dst`))?.size).to.equal(1);

    await expectCode(store.move(`${base}/dst`, `${base}/emptydir`), 'FILE_ALREADY_EXISTS');
    const r2 = await store.move(`${base}/dst`, `${base}/emptydir`, { overwrite: true });
    expect(r2.replaced).to.include({ type: 'directory' });
    expect((await store.get(`${base}/emptydir`))?.type).to.equal('file');

    await expectCode(store.move(`${base}/emptydir`, `${base}/full`, { overwrite: true }), 'FILE_ALREADY_EXISTS');
    expect(await store.get(`${base}/full/x`)).to.not.equal(null);
  });

  it('renames a subtree of 10,000 entries in one transaction', async function () {
    this.timeout(180_000);
    const store = ctx.store();
    const base = ctx.uniquePath();
    const instance = `i-${base.slice(1)}`;
    const blobOf = (d: number): string => sha(`big${base}-${d}`);
    // 100 directories of 99 files: 10,000 entries below big/. The files of a directory share a CAS blob.
    await store.transaction(async (tx) => {
      await tx.create(dir(`${base}/big`), { parents: DIR_ATTRS });
      for (let d = 0; d < 100; d++) {
        await tx.create(dir(`${base}/big/d${d}`));
        for (let f = 0; f < 99; f++) await tx.create(casFile(`${base}/big/d${d}/f${f}`, instance, blobOf(d)));
      }
    });
    // A sibling whose name shares the prefix must not move with it.
    await store.create(file(`${base}/big-sibling`));
    await store.create(file(`${base}/big0`));
    const refCounts = async (): Promise<number[]> => Promise.all([0, 42, 99].map(async (d) => (await store.getBlob(instance, blobOf(d)))?.refCount ?? -1));
    expect(await refCounts()).to.deep.equal([99, 99, 99]);

    const started = Date.now();
    const { entry } = await store.move(`${base}/big`, `${base}/x/y/renamed`, { parents: DIR_ATTRS });
    const elapsed = Date.now() - started;
    expect(entry.path).to.equal(`${base}/x/y/renamed`);

    expect(await store.get(`${base}/big`)).to.equal(null);
    expect(await store.get(`${base}/big/d5/f5`)).to.equal(null);
    expect(await store.get(`${base}/big-sibling`)).to.not.equal(null);
    expect(await store.get(`${base}/big0`)).to.not.equal(null);
    const moved = await collect(store.listRecursive(`${base}/x/y/renamed`, { maxDepth: 10 }));
    expect(moved).to.have.length(10_000);
    for (const e of moved) expect(e.path.startsWith(`${base}/x/y/renamed/`), e.path).to.equal(true);
    const all = await expectConsistentTree(store, base);
    expect(all.filter((e) => e.path.startsWith(`${base}/big/`))).to.have.length(0);
    const deep = await store.getChain(`${base}/x/y/renamed/d42/f7`);
    expect(deep.map((e) => e.name)).to.deep.equal(['', base.slice(1), 'x', 'y', 'renamed', 'd42', 'f7']);
    expect(await refCounts()).to.deep.equal([99, 99, 99]);

    const { removed } = await store.delete(`${base}/x`, { recursive: true });
    expect(removed).to.have.length(10_003);
    expect(await refCounts()).to.deep.equal([0, 0, 0]);
    // Generous bound: a rename that fired per-row trigger work or ran row by row would be far slower.
    expect(elapsed, `rename took ${elapsed} ms`).to.be.below(20_000);
  });

  it('keeps the tree consistent when directories move while entries are created inside them', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    await store.create(file(`${base}/m0/seed`), { parents: DIR_ATTRS });
    const moves = (async () => {
      for (let i = 0; i < 8; i++) await store.move(`${base}/m${i}`, `${base}/m${i + 1}`);
    })();
    const creates = Array.from({ length: 40 }, (_, i) =>
      store.create(file(`${base}/m${i % 9}/c${i}`)).then(
        () => 'ok',
        (err: CallfsError) => err.code,
      ),
    );
    await moves;
    const outcomes = await Promise.all(creates);
    for (const o of outcomes) expect(['ok', 'FILE_NOT_FOUND']).to.include(o);
    const entries = await expectConsistentTree(store, base);
    const top = entries.filter((e) => e.depth === 0).map((e) => e.path);
    expect(top).to.deep.equal([`${base}/m8`]);
    const children = entries.filter((e) => e.depth === 1);
    expect(children.length).to.equal(1 + outcomes.filter((o) => o === 'ok').length);
  });

  it('commits a transaction as a whole, and a failed one leaves nothing', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const instance = `i-${base.slice(1)}`;
    const blob = sha(`tx${base}`);
    await store.recordBlob({ sha256: blob, instanceId: instance, imageId: 'img-1', size: 10 });
    const boom = new Error('boom');
    let seenInside: unknown = null;
    const failed = store.transaction(async (tx) => {
      await tx.create(dir(base));
      await tx.create(casFile(`${base}/f`, instance, blob));
      seenInside = await tx.get(`${base}/f`);
      expect((await collect(tx.listChildren(base))).map((e) => e.name)).to.deep.equal(['f']);
      throw boom;
    });
    let caught: unknown;
    await failed.catch((err: unknown) => (caught = err));
    expect(caught).to.equal(boom);
    expect(seenInside).to.not.equal(null);
    expect(await store.get(base)).to.equal(null);
    expect(await store.get(`${base}/f`)).to.equal(null);
    expect((await store.getBlob(instance, blob))?.refCount).to.equal(0);

    const result = await store.transaction(async (tx) => {
      await tx.create(dir(base));
      const f = await tx.create(casFile(`${base}/f`, instance, blob));
      await tx.move(`${base}/f`, `${base}/g`);
      return f.id;
    });
    expect((await store.get(`${base}/g`))?.id).to.equal(result);
    expect((await store.getBlob(instance, blob))?.refCount).to.equal(1);
  });

  it('keeps a transaction usable after an expected error such as FILE_ALREADY_EXISTS', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    await store.create(dir(base));
    await store.transaction(async (tx) => {
      await expectCode(tx.create(dir(base)), 'FILE_ALREADY_EXISTS');
      await tx.create(file(`${base}/after`));
    });
    expect(await store.get(`${base}/after`)).to.not.equal(null);
  });
}
