import { expect } from 'chai';
import type { User } from '../../../lib/auth/users.js';
import type { Entry } from '../../../lib/metadata/types.js';
import { alice, bob, createTestEngine, rejectsWith, root, text, type EngineUnderTest } from '../../support/engine.js';

const own = (user: { uid: number; gid: number }, mode: number): { mode: number; uid: number; gid: number } => ({ mode, uid: user.uid, gid: user.gid });

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

// lib/engine/read.ts: stat, reads and listings.
describe('engine: reads and listings', function () {
  let t: EngineUnderTest;

  beforeEach(async function () {
    t = createTestEngine();
    await t.addDirectory('/pub', own(alice, 0o755));
    await t.addFile('/pub/a.txt', 'hello world', own(alice, 0o644));
    await t.addFile('/pub/private.txt', 'mine', own(alice, 0o600));
  });

  afterEach(async function () {
    await t.close();
  });

  describe('stat and content', function () {
    it('stats with search permission alone; reading needs read on the file', async function () {
      expect((await t.engine.stat(bob, '/pub/private.txt')).size).to.equal(4);
      await rejectsWith(t.engine.statForRead(bob, '/pub/private.txt'), 'PERMISSION_DENIED');
      expect((await t.engine.statForRead(alice, '/pub/private.txt')).size).to.equal(4);
    });

    it('opens the whole content or a range of it', async function () {
      const entry = await t.engine.statForRead(bob, '/pub/a.txt');
      expect(await text(await t.engine.openContent(entry))).to.equal('hello world');
      expect(await text(await t.engine.openContent(entry, { range: { start: 6, end: 10 } }))).to.equal('world');
    });

    it('refuses to open a directory, and bytes on an instance that is not a peer', async function () {
      await rejectsWith(t.engine.openContent(await t.engine.stat(bob, '/pub')), 'IS_A_DIRECTORY');
      await t.addFile('/pub/far', 'far', { ...own(alice, 0o644), instanceId: 'peer-2' });
      await rejectsWith(t.engine.openContent(await t.engine.stat(bob, '/pub/far'), ), 'BAD_GATEWAY');
    });
  });

  describe('directory listing', function () {
    it('lists files first, then directories, by name; needs read on the directory', async function () {
      await t.addDirectory('/pub/B', own(alice, 0o755));
      await t.addFile('/pub/Z.txt', 'z', own(alice, 0o644));
      const listing = await t.engine.listDirectory(bob, '/pub');
      expect((await collect(listing.items)).map((e) => e.name)).to.deep.equal(['Z.txt', 'a.txt', 'private.txt', 'B']);
      expect(await listing.count()).to.equal(4);
      await t.addDirectory('/pub/noread', own(alice, 0o711));
      await rejectsWith(t.engine.listDirectory(bob, '/pub/noread'), 'PERMISSION_DENIED');
      await rejectsWith(t.engine.listDirectory(bob, '/pub/a.txt'), 'BAD_REQUEST');
    });
  });

  describe('recursive listing', function () {
    beforeEach(async function () {
      // Directories bob may not open (read and search, as ls -R needs) are listed, their contents are not.
      await t.addDirectory('/pub/closed', own(alice, 0o700));
      await t.addFile('/pub/closed/secret', 's', own(alice, 0o644));
      await t.addFile('/pub/closed/sub/deeper', 'd', own(alice, 0o644));
      await t.addDirectory('/pub/noread', own(alice, 0o711));
      await t.addFile('/pub/noread/x', 'x', own(alice, 0o644));
      await t.addDirectory('/pub/nosearch', own(alice, 0o744));
      await t.addFile('/pub/nosearch/y', 'y', own(alice, 0o644));
      await t.addDirectory('/pub/open', own(alice, 0o755));
      await t.addFile('/pub/open/b.txt', 'b', own(alice, 0o644));
      await t.addDirectory('/pub/open/inner', own(alice, 0o700));
      await t.addFile('/pub/open/inner/c', 'c', own(alice, 0o644));
    });

    const visibleTo = async (user: User, maxDepth: number): Promise<{ paths: string[]; count: number }> => {
      const listing = await t.engine.listTree(user, '/pub', { maxDepth });
      const items: Entry[] = await collect(listing.items);
      return { paths: items.map((e) => e.path), count: await listing.count() };
    };

    it('leaves out what lies inside directories the user may not open, and counts what it shows', async function () {
      const { paths, count } = await visibleTo(bob, 10);
      expect(paths).to.deep.equal([
        '/pub/a.txt', '/pub/closed', '/pub/noread', '/pub/nosearch', '/pub/open', '/pub/open/b.txt', '/pub/open/inner', '/pub/private.txt',
      ]);
      expect(count).to.equal(paths.length);
    });

    it('shows the owner and root everything, in path order', async function () {
      for (const user of [alice, root]) {
        const { paths, count } = await visibleTo(user, 10);
        expect(paths, user.name).to.have.length(14);
        expect(paths).to.deep.equal([...paths].sort());
        expect(count, user.name).to.equal(14);
      }
    });

    it('counts exactly what each depth shows, for every user', async function () {
      for (const user of [bob, alice, root]) {
        for (const maxDepth of [0, 1, 2, 3]) {
          const { paths, count } = await visibleTo(user, maxDepth);
          expect(count, `${user.name}, max_depth ${maxDepth}`).to.equal(paths.length);
        }
      }
      expect((await visibleTo(bob, 0)).paths).to.have.length(6);
    });

    it('needs read on the directory listed; a file is BAD_REQUEST', async function () {
      await rejectsWith(t.engine.listTree(bob, '/pub/noread', { maxDepth: 1 }), 'PERMISSION_DENIED');
      await rejectsWith(t.engine.listTree(bob, '/pub/closed', { maxDepth: 1 }), 'PERMISSION_DENIED');
      await rejectsWith(t.engine.listTree(bob, '/pub/a.txt', { maxDepth: 1 }), 'BAD_REQUEST');
    });
  });
});
