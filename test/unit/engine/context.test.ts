import { expect } from 'chai';
import { alice, bob, body, carol, createTestEngine, rejectsWith, root, type EngineUnderTest } from '../../support/engine.js';

// Path resolution (lib/engine/context.ts), as every operation meets it.
describe('engine: path resolution and search permission', function () {
  let t: EngineUnderTest;

  beforeEach(async function () {
    t = createTestEngine();
    // /private: alice's, closed to others. Behind it: a file, a directory, and nothing at /private/missing.
    await t.addDirectory('/private', { mode: 0o700, uid: alice.uid, gid: alice.gid });
    await t.addFile('/private/file', 'secret', { mode: 0o644, uid: alice.uid, gid: alice.gid });
    await t.addDirectory('/private/dir', { mode: 0o755, uid: alice.uid, gid: alice.gid });
    await t.addDirectory('/open', { mode: 0o755, uid: alice.uid, gid: alice.gid });
    await t.addFile('/open/file', 'hello', { mode: 0o644, uid: alice.uid, gid: alice.gid });
  });

  afterEach(async function () {
    await t.close();
  });

  it('refuses behind a directory the user may not search with the same 403, whatever lies behind it', async function () {
    const behind = ['/private/file', '/private/dir', '/private/missing', '/private/file/below', '/private/missing/deeper', '/private/dir/x'];
    const errors = await Promise.all(behind.map((p) => rejectsWith(t.engine.stat(bob, p), 'PERMISSION_DENIED')));
    // Not a word differs: a missing entry, a file and a directory look alike from outside.
    expect(new Set(errors.map((e) => e.message)).size, errors.map((e) => e.message).join(' | ')).to.equal(1);
  });

  it('names the first directory that cannot be searched, not one deeper', async function () {
    await t.addDirectory('/private/dir/inner', { mode: 0o700, uid: alice.uid, gid: alice.gid });
    const outer = await rejectsWith(t.engine.stat(bob, '/private/dir/inner/x'), 'PERMISSION_DENIED');
    const direct = await rejectsWith(t.engine.stat(bob, '/private/x'), 'PERMISSION_DENIED');
    expect(outer.message).to.equal(direct.message);
  });

  it('says NOT_A_DIRECTORY for a path below a file, and FILE_NOT_FOUND for a missing one, only through searchable directories', async function () {
    await rejectsWith(t.engine.stat(bob, '/open/file/below'), 'NOT_A_DIRECTORY');
    await rejectsWith(t.engine.stat(bob, '/open/missing'), 'FILE_NOT_FOUND');
    await rejectsWith(t.engine.stat(bob, '/open/missing/deeper'), 'FILE_NOT_FOUND');
    await rejectsWith(t.engine.stat(alice, '/private/file/below'), 'NOT_A_DIRECTORY');
  });

  it('needs search, not read, on the ancestors (mode 711 lets anyone through)', async function () {
    await t.addDirectory('/passage', { mode: 0o711, uid: alice.uid, gid: alice.gid });
    await t.addFile('/passage/known', 'x', { mode: 0o644, uid: alice.uid, gid: alice.gid });
    expect((await t.engine.stat(bob, '/passage/known')).path).to.equal('/passage/known');
    // …but not a listing of it.
    await rejectsWith(t.engine.listDirectory(bob, '/passage'), 'PERMISSION_DENIED');
  });

  it('uses exactly one permission class: the owner bits for the owner, the group bits for a member', async function () {
    // Owner may not search, the group may: alice (owner) is refused, carol (in alice's group) passes.
    await t.addDirectory('/odd', { mode: 0o070, uid: alice.uid, gid: alice.gid });
    await t.addFile('/odd/f', 'x', { mode: 0o644, uid: alice.uid, gid: alice.gid });
    await rejectsWith(t.engine.stat(alice, '/odd/f'), 'PERMISSION_DENIED');
    expect((await t.engine.stat(carol, '/odd/f')).path).to.equal('/odd/f');
    await rejectsWith(t.engine.stat(bob, '/odd/f'), 'PERMISSION_DENIED');
  });

  it('lets root search every directory', async function () {
    await t.addDirectory('/sealed', { mode: 0o000, uid: alice.uid, gid: alice.gid });
    await t.addFile('/sealed/f', 'x', { mode: 0o000, uid: alice.uid, gid: alice.gid });
    expect((await t.engine.stat(root, '/sealed/f')).size).to.equal(1);
  });

  it('tells which instance holds a file only to a caller who passed every check of the create', async function () {
    await t.addFile('/open/remote', 'far away', { mode: 0o644, uid: alice.uid, gid: alice.gid, instanceId: 'peer-2' });
    await t.addFile('/private/remote', 'far away', { mode: 0o644, uid: alice.uid, gid: alice.gid, instanceId: 'peer-2' });
    const create = { mustCreate: true };
    const conflict = await rejectsWith(t.engine.writeFile(alice, '/open/remote', body('x'), create), 'CROSS_SERVER_CONFLICT');
    expect(conflict.details).to.include({ instance_id: 'peer-2', existing_path: '/open/remote' });
    // bob may search /open but not write it; /private he may not even search.
    const noWrite = await rejectsWith(t.engine.writeFile(bob, '/open/remote', body('x'), create), 'PERMISSION_DENIED');
    const noSearch = await rejectsWith(t.engine.writeFile(bob, '/private/remote', body('x'), create), 'PERMISSION_DENIED');
    for (const err of [noWrite, noSearch]) expect(err.message).to.not.include('peer-2');
  });
});
