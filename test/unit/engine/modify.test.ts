import { expect } from 'chai';
import { alice, bob, body, carol, createTestEngine, INSTANCE_ID, rejectsWith, root, text, type EngineUnderTest } from '../../support/engine.js';

const own = (user: { uid: number; gid: number }, mode: number): { mode: number; uid: number; gid: number } => ({ mode, uid: user.uid, gid: user.gid });

// lib/engine/modify.ts: moves (rename(2) rules), chmod/chown, deletes.
describe('engine: moves, attributes and deletes', function () {
  let t: EngineUnderTest;

  beforeEach(async function () {
    t = createTestEngine();
    // /tmp: world-writable with the sticky bit, owned by root.
    await t.addDirectory('/tmp', own(root, 0o1777));
    await t.addFile('/tmp/alices', 'a', own(alice, 0o644));
    await t.addDirectory('/home/alice', own(alice, 0o755));
    await t.addDirectory('/home/bob', own(bob, 0o755));
  });

  afterEach(async function () {
    await t.close();
  });

  const exists = async (path: string): Promise<boolean> => t.engine.stat(root, path).then(() => true, () => false);

  describe('move', function () {
    it('in a sticky directory, only the owner of the entry, of the directory, or root may move it away', async function () {
      await rejectsWith(t.engine.move(bob, '/tmp/alices', '/tmp/bobs'), 'PERMISSION_DENIED');
      await t.addDirectory('/tmp/mine', own(bob, 0o1777));
      await t.addFile('/tmp/mine/alices', 'a', own(alice, 0o644));
      // bob owns the sticky directory /tmp/mine: he may move alice's file out of it.
      await t.engine.move(bob, '/tmp/mine/alices', '/tmp/mine/renamed');
      await t.engine.move(alice, '/tmp/alices', '/tmp/alices2');
      await t.engine.move(root, '/tmp/alices2', '/tmp/alices3');
      expect(await exists('/tmp/alices3')).to.equal(true);
    });

    it('does not let a sticky destination be replaced by someone who does not own the victim', async function () {
      await t.addFile('/tmp/bobs', 'b', own(bob, 0o666));
      await rejectsWith(t.engine.move(alice, '/tmp/alices', '/tmp/bobs', { overwrite: true }), 'PERMISSION_DENIED');
      expect(await exists('/tmp/alices')).to.equal(true);
    });

    it('needs write on a directory that changes parent (its ".." is rewritten), not on one renamed in place', async function () {
      await t.addDirectory('/tmp/ro', own(alice, 0o555));
      await rejectsWith(t.engine.move(alice, '/tmp/ro', '/home/alice/ro'), 'PERMISSION_DENIED');
      await t.engine.move(alice, '/tmp/ro', '/tmp/ro-renamed');
      await t.addDirectory('/tmp/rw', own(alice, 0o755));
      await t.engine.move(alice, '/tmp/rw', '/home/alice/rw');
      expect(await exists('/home/alice/rw')).to.equal(true);
    });

    it('needs write and search on the destination directory', async function () {
      await rejectsWith(t.engine.move(alice, '/tmp/alices', '/home/bob/alices'), 'PERMISSION_DENIED');
      await t.addDirectory('/drop', own(bob, 0o776));
      await rejectsWith(t.engine.move(alice, '/tmp/alices', '/drop/alices'), 'PERMISSION_DENIED');
      expect(await exists('/tmp/alices')).to.equal(true);
    });

    it('refuses an existing destination without overwrite, a missing parent without createParents', async function () {
      await t.addFile('/tmp/other', 'other', own(alice, 0o644));
      await rejectsWith(t.engine.move(alice, '/tmp/alices', '/tmp/other'), 'FILE_ALREADY_EXISTS');
      await rejectsWith(t.engine.move(alice, '/tmp/alices', '/tmp/x/y'), 'FILE_NOT_FOUND');
      const moved = await t.engine.move(alice, '/tmp/alices', '/tmp/x/y', { createParents: true });
      expect(moved.entry?.path).to.equal('/tmp/x/y');
      expect(await t.engine.stat(root, '/tmp/x')).to.include({ uid: alice.uid, type: 'directory' });
      const over = await t.engine.move(alice, '/tmp/x/y', '/tmp/other', { overwrite: true });
      expect(over.entry).to.include({ path: '/tmp/other', size: 1 });
    });

    it('refuses moving the root, onto the root, or a directory into itself with BAD_REQUEST', async function () {
      await rejectsWith(t.engine.move(root, '/', '/x'), 'BAD_REQUEST');
      await rejectsWith(t.engine.move(root, '/tmp', '/'), 'BAD_REQUEST');
      await rejectsWith(t.engine.move(root, '/home', '/home/alice/home'), 'BAD_REQUEST');
    });
  });

  describe('attributes', function () {
    it('lets the owner or root chmod, and only root chown', async function () {
      await t.addFile('/home/alice/f', 'x', own(alice, 0o644));
      expect((await t.engine.setAttributes(alice, '/home/alice/f', { mode: 0o600 })).mode).to.equal(0o600);
      await rejectsWith(t.engine.setAttributes(bob, '/home/alice/f', { mode: 0o666 }), 'PERMISSION_DENIED');
      await rejectsWith(t.engine.setAttributes(alice, '/home/alice/f', { uid: bob.uid }), 'PERMISSION_DENIED');
      await rejectsWith(t.engine.setAttributes(alice, '/home/alice/f', { gid: carol.gid }), 'PERMISSION_DENIED');
      expect(await t.engine.setAttributes(root, '/home/alice/f', { uid: bob.uid, gid: bob.gid, mode: 0o640 })).to.include({ uid: bob.uid, gid: bob.gid, mode: 0o640 });
    });
  });

  describe('delete', function () {
    it('refuses a non-empty directory unless recursive, and the root always', async function () {
      await t.addDirectory('/home/alice/d', own(alice, 0o755));
      await t.addFile('/home/alice/d/f', 'x', own(alice, 0o644));
      await rejectsWith(t.engine.remove(alice, '/home/alice/d'), 'DIRECTORY_NOT_EMPTY');
      await t.engine.remove(alice, '/home/alice/d', { recursive: true });
      expect(await exists('/home/alice/d')).to.equal(false);
      await rejectsWith(t.engine.remove(root, '/', { recursive: true }), 'BAD_REQUEST');
    });

    it('follows the sticky bit', async function () {
      await rejectsWith(t.engine.remove(bob, '/tmp/alices'), 'PERMISSION_DENIED');
      await t.engine.remove(alice, '/tmp/alices');
      expect(await exists('/tmp/alices')).to.equal(false);
    });

    it('removes a tree only when the user could remove every entry of it, as rm -r; nothing goes otherwise', async function () {
      await t.addDirectory('/home/alice/t', own(alice, 0o755));
      await t.addDirectory('/home/alice/t/bobs', own(bob, 0o755));
      await t.addFile('/home/alice/t/bobs/f', 'x', own(bob, 0o644));
      await t.addFile('/home/alice/t/g', 'x', own(alice, 0o644));
      // alice may not remove f from bob's directory.
      await rejectsWith(t.engine.remove(alice, '/home/alice/t', { recursive: true }), 'PERMISSION_DENIED');
      for (const path of ['/home/alice/t/g', '/home/alice/t/bobs/f']) expect(await exists(path), path).to.equal(true);
      await t.engine.remove(root, '/home/alice/t', { recursive: true });
      expect(await exists('/home/alice/t')).to.equal(false);
    });

    it('needs read on every directory of the tree to remove it', async function () {
      await t.addDirectory('/home/alice/t', own(alice, 0o755));
      // Writable and searchable but unreadable: its entries cannot be listed, so cannot be removed.
      await t.addDirectory('/home/alice/t/blind', own(alice, 0o300));
      await rejectsWith(t.engine.remove(alice, '/home/alice/t', { recursive: true }), 'PERMISSION_DENIED');
      await t.engine.setAttributes(alice, '/home/alice/t/blind', { mode: 0o700 });
      await t.engine.remove(alice, '/home/alice/t', { recursive: true });
      expect(await exists('/home/alice/t')).to.equal(false);
    });

    it('leaves content-addressed bytes to the collector: a file sharing them still reads', async function () {
      const { entry } = await t.engine.writeFile(alice, '/home/alice/f', body('shared'), { mustCreate: false });
      await t.engine.writeFile(alice, '/home/alice/g', body('shared'), { mustCreate: false });
      expect((await t.store.getBlob(INSTANCE_ID, entry.blobId as string))?.refCount).to.equal(2);
      await t.engine.remove(alice, '/home/alice/f');
      expect((await t.store.getBlob(INSTANCE_ID, entry.blobId as string))?.refCount).to.equal(1);
      expect(await text(await t.engine.openContent(await t.engine.stat(alice, '/home/alice/g')))).to.equal('shared');
    });
  });
});
