import { expect } from 'chai';
import { CallfsError } from '../../lib/errors.js';
import type { Entry } from '../../lib/metadata/types.js';
import { byteCompare, collect, DIR_ATTRS, dir, expectCode, expectConsistentTree, file, type ContractContext } from './metadata-helpers.js';

/** Entries: create, get, getChain, update, delete, listings. */
export function namespaceContract(ctx: ContractContext): void {
  it('has the root directory: uid 0, gid 0, mode 1777, no parent, no instance', async () => {
    const root = await ctx.store().get('/');
    expect(root).to.include({ path: '/', name: '', type: 'directory', uid: 0, gid: 0, mode: 0o1777, parentId: null, instanceId: null, backend: null });
    expect(await ctx.store().getChain('/')).to.have.length(1);
  });

  it('creates, gets and chains entries', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const d = await store.create(dir(base));
    const mtime = new Date('2024-01-02T03:04:05.000Z');
    const f = await store.create(file(`${base}/f.txt`, { size: 42, backend: 's3', blobId: 'key/f.txt', etag: 'e'.repeat(64), mtime, mode: 0o640, uid: 7, gid: 8 }));
    expect(f).to.include({ path: `${base}/f.txt`, name: 'f.txt', type: 'file', size: 42, mode: 0o640, uid: 7, gid: 8, backend: 's3', blobId: 'key/f.txt', version: 1, parentId: d.id });
    expect(f.mtime.toISOString()).to.equal(mtime.toISOString());
    expect(f).to.not.have.property('depth');
    expect(await store.get(`${base}/f.txt`)).to.deep.equal(f);
    expect((await store.getChain(`${base}/f.txt`)).map((e) => e.path)).to.deep.equal(['/', base, `${base}/f.txt`]);
    expect((await store.getChain(`${base}/missing/deeper`)).map((e) => e.path)).to.deep.equal(['/', base]);
    expect(await store.get(`${base}/missing`)).to.equal(null);
  });

  it('refuses non-canonical paths with INVALID_PATH', async () => {
    const store = ctx.store();
    await expectCode(store.get('relative'), 'INVALID_PATH');
    await expectCode(store.get('/trailing/'), 'INVALID_PATH');
    await expectCode(store.getChain('/a//b'), 'INVALID_PATH');
    await expectCode(store.create(file('/a/../b')), 'INVALID_PATH');
    await expectCode(collect(store.listChildren('/./x')), 'INVALID_PATH');
  });

  it('refuses bad values with BAD_REQUEST', async () => {
    const base = ctx.uniquePath();
    await expectCode(ctx.store().create({ ...file(base), mode: 0o10000 }), 'BAD_REQUEST');
    await expectCode(ctx.store().create({ ...file(base), uid: -1 }), 'BAD_REQUEST');
    await expectCode(ctx.store().create({ ...dir(base), backend: 'cas', instanceId: 'i', blobId: 'b' }), 'BAD_REQUEST');
    // Refused after mkdir -p made the missing ancestors: they go with it.
    await expectCode(ctx.store().create({ ...dir(`${base}/x/y`), backend: 'cas', instanceId: 'i', blobId: 'b' }, { parents: DIR_ATTRS }), 'BAD_REQUEST');
    expect(await ctx.store().get(base)).to.equal(null);
  });

  it('creates missing ancestors (mkdir -p) only when asked', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    await expectCode(store.create(file(`${base}/x/y/z`)), 'FILE_NOT_FOUND');
    expect(await store.get(base)).to.equal(null);
    const parents = { mode: 0o700, uid: 5, gid: 6 };
    const z = await store.create(file(`${base}/x/y/z`), { parents });
    const chain = await store.getChain(z.path);
    expect(chain.map((e) => e.path)).to.deep.equal(['/', base, `${base}/x`, `${base}/x/y`, z.path]);
    for (const e of chain.slice(1, -1)) expect(e).to.include({ type: 'directory', mode: 0o700, uid: 5, gid: 6 });
    expect(chain[3]?.id).to.equal(z.parentId);
  });

  it('throws NOT_A_DIRECTORY when an ancestor is a file', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    await store.create(file(`${base}/f`), { parents: DIR_ATTRS });
    await expectCode(store.create(file(`${base}/f/g`)), 'NOT_A_DIRECTORY');
    await expectCode(store.create(file(`${base}/f/g/h`), { parents: DIR_ATTRS }), 'NOT_A_DIRECTORY');
    await expectCode(collect(store.listChildren(`${base}/f`)), 'NOT_A_DIRECTORY');
    await expectCode(collect(store.listRecursive(`${base}/f`, { maxDepth: 3 })), 'NOT_A_DIRECTORY');
    await expectCode(collect(store.listChildren(`${base}/nope`)), 'FILE_NOT_FOUND');
  });

  it('throws FILE_ALREADY_EXISTS for an existing path of either type', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    await store.create(dir(base));
    await store.create(file(`${base}/f`));
    await expectCode(store.create(file(`${base}/f`)), 'FILE_ALREADY_EXISTS');
    await expectCode(store.create(dir(`${base}/f`)), 'FILE_ALREADY_EXISTS');
    await expectCode(store.create(file(base)), 'FILE_ALREADY_EXISTS');
    await expectCode(store.create(dir('/')), 'FILE_ALREADY_EXISTS');
  });

  it('lets exactly one of many concurrent creates of a path win', async () => {
    const store = ctx.store();
    const path = `${ctx.uniquePath()}/same`;
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.create(file(path, { size: i }), { parents: DIR_ATTRS })));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).to.have.length(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as CallfsError).code).to.equal('FILE_ALREADY_EXISTS');
    }
    expect((await store.get(path))?.size).to.equal((won[0] as PromiseFulfilledResult<Entry>).value.size);
  });

  it('runs concurrent mkdir -p of overlapping trees without spurious failures', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const paths = Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? `${base}/p/q/r${i}` : `${base}/p/q/s/t/u${i}`));
    await Promise.all(paths.map((p, i) => store.create(i % 3 === 0 ? dir(p) : file(p), { parents: DIR_ATTRS })));
    const entries = await expectConsistentTree(store, base);
    expect(entries.map((e) => e.path).sort()).to.deep.equal([...paths, `${base}/p`, `${base}/p/q`, `${base}/p/q/s`, `${base}/p/q/s/t`].sort());
  });

  it('fails mkdir -p with NOT_A_DIRECTORY when an ancestor is created concurrently as a file', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const results = await Promise.allSettled([
      store.create(file(`${base}/m/n`), { parents: DIR_ATTRS }),
      ...Array.from({ length: 10 }, (_, i) => store.create(file(`${base}/m/n/o${i}`), { parents: DIR_ATTRS })),
    ]);
    const n = await store.get(`${base}/m/n`);
    expect(n).to.not.equal(null);
    const children = n?.type === 'directory' ? await collect(store.listChildren(`${base}/m/n`)) : [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      const code = (r.reason as CallfsError).code;
      // The file lost (the directory came first) or a child lost (the file came first).
      expect(code).to.equal(i === 0 ? 'FILE_ALREADY_EXISTS' : 'NOT_A_DIRECTORY');
    });
    expect(children.length).to.equal(results.slice(1).filter((r) => r.status === 'fulfilled').length);
    await expectConsistentTree(store, base);
  });

  it('lists children files first, then directories, each in byte order, across pages', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    await store.create(dir(base));
    // U+FF5A sorts before U+1F600 in UTF-8 bytes but after it in UTF-16 code units.
    const names = ['b', 'B', 'a', 'a b', 'é', 'Z', '_x', '0', 'z~', 'ä', '日本', 'a.txt', 'a-b', 'ac', '\u{ff5a}', '\u{1f600}', 'q\u{ff5a}', 'q\u{1f600}'];
    const unique = [...new Set(names)];
    await Promise.all(unique.map((n, i) => store.create(i % 3 === 0 ? dir(`${base}/${n}`) : file(`${base}/${n}`))));
    // Grandchildren must not show up in a listing of children.
    await store.create(file(`${base}/${unique[0]}/inner`));
    const files = unique.filter((_, i) => i % 3 !== 0).sort(byteCompare);
    const dirs = unique.filter((_, i) => i % 3 === 0).sort(byteCompare);
    const all = await collect(store.listChildren(base));
    expect(all.map((e) => e.name)).to.deep.equal([...files, ...dirs]);
    expect(all.map((e) => e.type)).to.deep.equal([...files.map(() => 'file'), ...dirs.map(() => 'directory')]);

    for (const pageSize of [1, 4, 5]) {
      const seen: string[] = [];
      let after: { type: 'file' | 'directory'; name: string } | undefined;
      for (;;) {
        const page = await collect(store.listChildren(base, { limit: pageSize, ...(after ? { after } : {}) }));
        expect(page.length).to.be.at.most(pageSize);
        seen.push(...page.map((e) => e.name));
        const last = page[page.length - 1];
        if (page.length < pageSize || last === undefined) break;
        after = { type: last.type, name: last.name };
      }
      expect(seen, `pages of ${pageSize}`).to.deep.equal([...files, ...dirs]);
    }
    expect(await collect(store.listChildren(base, { limit: 0 }))).to.have.length(0);
    await expectCode(collect(store.listChildren(base, { limit: -1 })), 'BAD_REQUEST');
  });

  it('lists recursively in path order down to maxDepth, with relative depths', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    for (const p of ['a/b/c/d.txt', 'a/b/e.txt', 'a-z/f.txt', 'g.txt', 'a/h/i']) await store.create(file(`${base}/${p}`), { parents: DIR_ATTRS });
    const all = await collect(store.listRecursive(base, { maxDepth: 100 }));
    const paths = all.map((e) => e.path);
    expect(paths).to.deep.equal([...paths].sort(byteCompare));
    expect(paths).to.have.length(10);
    for (const e of all) expect(e.depth, e.path).to.equal(e.path.slice(base.length + 1).split('/').length - 1);
    expect((await collect(store.listRecursive(base, { maxDepth: 0 }))).map((e) => e.name).sort()).to.deep.equal(['a', 'a-z', 'g.txt']);
    const upTo1 = await collect(store.listRecursive(base, { maxDepth: 1 }));
    expect(upTo1.map((e) => e.path.slice(base.length))).to.deep.equal(['/a', '/a/b', '/a/h', '/a-z', '/a-z/f.txt', '/g.txt'].sort(byteCompare));
    expect((await collect(store.listRecursive(`${base}/a/b`, { maxDepth: 0 }))).map((e) => e.name)).to.deep.equal(['c', 'e.txt']);
    await expectCode(collect(store.listRecursive(`${base}/missing`, { maxDepth: 1 })), 'FILE_NOT_FOUND');
    const dirs = await collect(store.listRecursive(base, { maxDepth: 100, directoriesOnly: true }));
    expect(dirs.map((e) => e.path.slice(base.length))).to.deep.equal(['/a', '/a/b', '/a/b/c', '/a/h', '/a-z'].sort(byteCompare));
    expect(dirs.map((e) => e.depth)).to.deep.equal(dirs.map((e) => e.path.slice(base.length + 1).split('/').length - 1));
    expect((await collect(store.listRecursive(base, { maxDepth: 1, directoriesOnly: true }))).map((e) => e.path.slice(base.length))).to.deep.equal(['/a', '/a/b', '/a/h', '/a-z'].sort(byteCompare));
  });

  it('updates with a version check (PRECONDITION_FAILED when stale)', async () => {
    const store = ctx.store();
    const path = ctx.uniquePath();
    const created = await store.create(file(path, { size: 1 }));
    const mtime = new Date('2030-05-06T07:08:09.000Z');
    const updated = await store.update(path, created.version, { size: 99, mode: 0o600, mtime, etag: 'f'.repeat(64) });
    expect(updated).to.include({ size: 99, mode: 0o600, version: created.version + 1, etag: 'f'.repeat(64), id: created.id });
    expect(updated.mtime.toISOString()).to.equal(mtime.toISOString());
    expect(updated.ctime.getTime()).to.be.at.least(created.ctime.getTime());
    await expectCode(store.update(path, created.version, { size: 5 }), 'PRECONDITION_FAILED');
    expect((await store.get(path))?.size).to.equal(99);
    await expectCode(store.update(`${path}-missing`, 1, { size: 5 }), 'FILE_NOT_FOUND');
    await expectCode(store.delete(path, { expectedVersion: created.version }), 'PRECONDITION_FAILED');
    expect((await store.delete(path, { expectedVersion: updated.version })).removed.map((e) => e.path)).to.deep.equal([path]);
  });

  it('deletes files, empty directories, and whole trees only when recursive', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    await store.create(file(`${base}/d/e/f`), { parents: DIR_ATTRS });
    await store.create(dir(`${base}/empty`));
    await expectCode(store.delete(`${base}/d`), 'DIRECTORY_NOT_EMPTY');
    expect((await store.delete(`${base}/empty`)).removed.map((e) => e.path)).to.deep.equal([`${base}/empty`]);
    const { removed } = await store.delete(`${base}/d`, { recursive: true });
    expect(removed.map((e) => e.path)).to.deep.equal([`${base}/d`, `${base}/d/e`, `${base}/d/e/f`]);
    expect(removed[0]).to.not.have.property('depth');
    expect(await store.get(`${base}/d/e/f`)).to.equal(null);
    expect(await collect(store.listChildren(base))).to.have.length(0);
    await expectCode(store.delete(`${base}/d`), 'FILE_NOT_FOUND');
    await expectCode(store.delete('/', { recursive: true }), 'BAD_REQUEST');
  });

  it('never serves a cached entry after a local write', async () => {
    const store = ctx.store();
    const base = ctx.uniquePath();
    const f = await store.create(file(`${base}/d/f`), { parents: DIR_ATTRS });
    for (let i = 0; i < 2; i++) await store.get(f.path); // warm
    await store.getChain(f.path);
    const v2 = await store.update(f.path, f.version, { size: 7 });
    expect(await store.get(f.path)).to.deep.equal(v2);
    await store.move(`${base}/d`, `${base}/d2`);
    expect(await store.get(f.path)).to.equal(null);
    expect((await store.getChain(f.path)).map((e) => e.path)).to.deep.equal(['/', base]);
    expect((await store.get(`${base}/d2/f`))?.size).to.equal(7);
    await store.delete(base, { recursive: true });
    expect(await store.get(`${base}/d2/f`)).to.equal(null);
    expect(await store.get(base)).to.equal(null);
  });

  it('keeps entries returned by the store independent of its cache', async () => {
    const store = ctx.store();
    const path = ctx.uniquePath();
    await store.create(file(path, { size: 3 }));
    const first = await store.get(path);
    if (first === null) throw new Error('missing');
    first.size = 1000;
    first.mtime.setTime(0);
    const again = await store.get(path);
    expect(again?.size).to.equal(3);
    expect(again?.mtime.getTime()).to.not.equal(0);
  });
}
