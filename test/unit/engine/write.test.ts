import { expect } from 'chai';
import { alice, bob, body, carol, createTestEngine, rejectsWith, root, text, type EngineUnderTest } from '../../support/engine.js';

const PUT = { mustCreate: false } as const;
const POST = { mustCreate: true } as const;

// lib/engine/write.ts: creating and replacing files, mkdir -p.
describe('engine: writes', function () {
  let t: EngineUnderTest;

  beforeEach(async function () {
    t = createTestEngine({ maxUploadBytes: 1000 });
    await t.addDirectory('/home/alice', { mode: 0o755, uid: alice.uid, gid: alice.gid });
    await t.addDirectory('/shared', { mode: 0o777, uid: root.uid, gid: root.gid });
  });

  afterEach(async function () {
    await t.close();
  });

  const read = async (path: string): Promise<string> => text(await t.engine.openContent(await t.engine.stat(root, path)));

  describe('create or replace', function () {
    it('PUT creates a file, then replaces its content in place (same entry, new version)', async function () {
      const first = await t.engine.writeFile(alice, '/home/alice/f', body('one'), PUT);
      expect(first.created).to.equal(true);
      expect(first.entry).to.include({ uid: alice.uid, gid: alice.gid, mode: 0o644, size: 3, version: 1 });
      const second = await t.engine.writeFile(alice, '/home/alice/f', body('second'), PUT);
      expect(second.created).to.equal(false);
      expect(second.entry).to.include({ id: first.entry.id, size: 6, version: 2 });
      expect(second.entry.etag).to.not.equal(first.entry.etag);
      expect(await read('/home/alice/f')).to.equal('second');
    });

    it('POST creates only: an existing file is FILE_ALREADY_EXISTS and keeps its content', async function () {
      expect((await t.engine.writeFile(alice, '/home/alice/f', body('one'), POST)).created).to.equal(true);
      await rejectsWith(t.engine.writeFile(alice, '/home/alice/f', body('two'), POST), 'FILE_ALREADY_EXISTS');
      expect(await read('/home/alice/f')).to.equal('one');
    });

    it('refuses a directory: PUT with IS_A_DIRECTORY, POST with FILE_ALREADY_EXISTS, the root always IS_A_DIRECTORY', async function () {
      await t.engine.makeDirectory(alice, '/home/alice/sub');
      await rejectsWith(t.engine.writeFile(alice, '/home/alice/sub', body('x'), PUT), 'IS_A_DIRECTORY');
      await rejectsWith(t.engine.writeFile(alice, '/home/alice/sub', body('x'), POST), 'FILE_ALREADY_EXISTS');
      await rejectsWith(t.engine.writeFile(root, '/', body('x'), PUT), 'IS_A_DIRECTORY');
    });

    it('refuses a file below a file with NOT_A_DIRECTORY', async function () {
      await t.engine.writeFile(alice, '/home/alice/f', body('x'), PUT);
      await rejectsWith(t.engine.writeFile(alice, '/home/alice/f/g', body('x'), PUT), 'NOT_A_DIRECTORY');
    });

    it('keeps the mode asked for a new file, and the file mode on a replacement', async function () {
      expect((await t.engine.writeFile(alice, '/home/alice/m', body('x'), { ...PUT, mode: 0o600 })).entry.mode).to.equal(0o600);
      expect((await t.engine.writeFile(alice, '/home/alice/m', body('y'), { ...PUT, mode: 0o666 })).entry.mode).to.equal(0o600);
    });

    it('refuses a body over the upload limit with PAYLOAD_TOO_LARGE and creates nothing', async function () {
      await rejectsWith(t.engine.writeFile(alice, '/home/alice/big', body(Buffer.alloc(1001)), PUT), 'PAYLOAD_TOO_LARGE');
      await rejectsWith(t.engine.stat(alice, '/home/alice/big'), 'FILE_NOT_FOUND');
      expect((await t.engine.writeFile(alice, '/home/alice/big', body(Buffer.alloc(1000)), PUT)).entry.size).to.equal(1000);
    });

    it('says CROSS_SERVER_CONFLICT to a POST onto a file another instance holds, after the permission checks', async function () {
      await t.addFile('/shared/remote', 'far', { mode: 0o644, uid: bob.uid, gid: bob.gid, instanceId: 'peer-2' });
      const err = await rejectsWith(t.engine.writeFile(alice, '/shared/remote', body('x'), POST), 'CROSS_SERVER_CONFLICT');
      expect(err.details).to.include({ instance_id: 'peer-2', existing_path: '/shared/remote' });
      await t.addDirectory('/closed', { mode: 0o755, uid: bob.uid, gid: bob.gid });
      await t.addFile('/closed/remote', 'far', { mode: 0o644, uid: bob.uid, gid: bob.gid, instanceId: 'peer-2' });
      await rejectsWith(t.engine.writeFile(alice, '/closed/remote', body('x'), POST), 'PERMISSION_DENIED');
    });
  });

  describe('placement of the new bytes', function () {
    it('keeps a new file here, and the new content of a file whose holder is no configured peer here too', async function () {
      const created = await t.engine.writeFile(alice, '/home/alice/here', body('x'), PUT);
      expect(created.entry.instanceId).to.equal(t.engine.instanceId);
      expect(created.storedOn).to.equal(null);
      await t.addFile('/home/alice/stale', 'old', { mode: 0o644, uid: alice.uid, gid: alice.gid, instanceId: 'gone-instance' });
      const replaced = await t.engine.writeFile(alice, '/home/alice/stale', body('new'), PUT);
      expect(replaced.entry.instanceId).to.equal(t.engine.instanceId);
      expect(replaced.storedOn).to.equal(null);
      expect(await text(await t.engine.openContent(replaced.entry))).to.equal('new');
    });
  });

  describe('permissions', function () {
    it('a create needs write on the parent; POST says so before saying whether the file exists', async function () {
      await rejectsWith(t.engine.writeFile(bob, '/home/alice/new', body('x'), PUT), 'PERMISSION_DENIED');
      await t.engine.writeFile(alice, '/home/alice/exists', body('x'), PUT);
      await rejectsWith(t.engine.writeFile(bob, '/home/alice/exists', body('x'), POST), 'PERMISSION_DENIED');
    });

    it('a replacement needs write on the file, not on the directory', async function () {
      await t.addFile('/home/alice/open', 'x', { mode: 0o666, uid: alice.uid, gid: alice.gid });
      expect((await t.engine.writeFile(bob, '/home/alice/open', body('by bob'), PUT)).created).to.equal(false);
      await t.addFile('/shared/kept', 'x', { mode: 0o644, uid: alice.uid, gid: alice.gid });
      await rejectsWith(t.engine.writeFile(bob, '/shared/kept', body('by bob'), PUT), 'PERMISSION_DENIED');
      expect(await read('/shared/kept')).to.equal('x');
    });

    it('makes missing ancestors (mkdir -p) as the user, when the deepest existing one is writable', async function () {
      const { entry } = await t.engine.writeFile(bob, '/shared/a/b/f', body('x'), PUT);
      expect(entry.uid).to.equal(bob.uid);
      for (const dir of ['/shared/a', '/shared/a/b']) expect(await t.engine.stat(root, dir)).to.include({ type: 'directory', uid: bob.uid, gid: bob.gid, mode: 0o755 });
      await rejectsWith(t.engine.writeFile(bob, '/home/alice/a/b/f', body('x'), PUT), 'PERMISSION_DENIED');
      await rejectsWith(t.engine.stat(root, '/home/alice/a'), 'FILE_NOT_FOUND');
    });
  });

  describe('setgid directories', function () {
    beforeEach(async function () {
      await t.addDirectory('/team', { mode: 0o2775, uid: root.uid, gid: 500 });
    });

    it('give new files and directories their group, and new directories the setgid bit', async function () {
      const team = { ...carol, groups: [500] };
      expect((await t.engine.writeFile(team, '/team/f', body('x'), PUT)).entry.gid).to.equal(500);
      const made = await t.engine.makeDirectory(team, '/team/sub', { mode: 0o750 });
      expect(made.entry).to.include({ gid: 500, mode: 0o2750 });
      // …and so on down, through directories made by mkdir -p too.
      await t.engine.writeFile(team, '/team/sub/p/q/f', body('x'), PUT);
      for (const path of ['/team/sub/p', '/team/sub/p/q']) expect(await t.engine.stat(root, path)).to.include({ gid: 500, mode: 0o2755 });
      expect((await t.engine.stat(root, '/team/sub/p/q/f')).gid).to.equal(500);
    });

    it('leave entries elsewhere in the user\'s primary group', async function () {
      expect((await t.engine.writeFile(carol, '/shared/f', body('x'), PUT)).entry.gid).to.equal(carol.gid);
      expect((await t.engine.makeDirectory(carol, '/shared/d')).entry).to.include({ gid: carol.gid, mode: 0o755 });
    });
  });

  describe('mkdir', function () {
    it('creates with parents, finds an existing directory, refuses over a file', async function () {
      expect((await t.engine.makeDirectory(alice, '/home/alice/x/y')).created).to.equal(true);
      expect((await t.engine.makeDirectory(alice, '/home/alice/x/y')).created).to.equal(false);
      expect((await t.engine.makeDirectory(bob, '/home/alice/x')).created, 'an existing directory needs no write').to.equal(false);
      await t.engine.writeFile(alice, '/home/alice/f', body('x'), PUT);
      await rejectsWith(t.engine.makeDirectory(alice, '/home/alice/f'), 'FILE_ALREADY_EXISTS');
      await rejectsWith(t.engine.makeDirectory(bob, '/home/alice/z'), 'PERMISSION_DENIED');
    });
  });
});

// presumeNew: a small PUT decided from the cached ancestors alone, the path met at the commit.
describe('engine: small PUTs presumed new', function () {
  let t: EngineUnderTest;
  let lookups: string[];

  beforeEach(async function () {
    t = createTestEngine({ cachedAncestors: true });
    await t.addDirectory('/home/alice', { mode: 0o755, uid: alice.uid, gid: alice.gid });
    await t.addDirectory('/shared', { mode: 0o777, uid: root.uid, gid: root.gid });
    lookups = [];
    const getChain = t.store.getChain.bind(t.store);
    t.store.getChain = (path) => {
      lookups.push(path);
      return getChain(path);
    };
  });

  afterEach(async function () {
    await t.close();
  });

  const put = (user: typeof alice, path: string, content: string, more: object = {}) =>
    t.engine.writeFile(user, path, body(content), { ...PUT, length: Buffer.byteLength(content), ...more });
  const read = async (path: string): Promise<string> => text(await t.engine.openContent(await t.engine.stat(root, path)));

  it('creates a new file without reading the path first', async function () {
    const { created, entry } = await put(alice, '/home/alice/new', 'fresh');
    expect(created).to.equal(true);
    expect(entry).to.include({ uid: alice.uid, size: 5, version: 1 });
    expect(lookups).to.deep.equal([]);
    expect(await read('/home/alice/new')).to.equal('fresh');
  });

  it('replaces in place a file that turns out to exist, as a PUT that looked first would', async function () {
    const before = await t.addFile('/shared/f', 'old', { mode: 0o666, uid: alice.uid, gid: alice.gid });
    const { created, entry } = await put(bob, '/shared/f', 'by bob');
    expect(created).to.equal(false);
    expect(entry).to.include({ id: before.id, version: before.version + 1, uid: alice.uid, mode: 0o666, size: 6 });
    expect(lookups, 'looked up once the create found the file').to.deep.equal(['/shared/f']);
    expect(await read('/shared/f')).to.equal('by bob');
  });

  it('refuses a path that turns out to be a directory or a file the user may not write, and changes nothing', async function () {
    await t.addDirectory('/shared/dir', { mode: 0o777, uid: root.uid, gid: root.gid });
    await rejectsWith(put(bob, '/shared/dir', 'x'), 'IS_A_DIRECTORY');
    expect(await t.engine.stat(root, '/shared/dir')).to.include({ type: 'directory', version: 1 });
    const kept = await t.addFile('/shared/kept', 'x', { mode: 0o644, uid: alice.uid, gid: alice.gid });
    await rejectsWith(put(bob, '/shared/kept', 'by bob'), 'PERMISSION_DENIED');
    expect(await t.engine.stat(root, '/shared/kept')).to.include({ version: kept.version, etag: kept.etag });
  });

  it('refuses a parent the user may not write, or a file as a parent, on rows read fresh, not on the cached ones', async function () {
    await rejectsWith(put(bob, '/home/alice/new', 'x'), 'PERMISSION_DENIED');
    await t.addFile('/shared/file', 'x', { mode: 0o666, uid: alice.uid, gid: alice.gid });
    await rejectsWith(put(alice, '/shared/file/below', 'x'), 'NOT_A_DIRECTORY');
    expect(lookups, 'cached rows may be stale: each refusal looked').to.deep.equal(['/home/alice/new', '/shared/file/below']);
  });

  it('looks first while replacements are frequent, and presumes new again once creates are', async function () {
    const creates: string[] = [];
    const createIfUnchanged = t.store.createIfUnchanged.bind(t.store);
    t.store.createIfUnchanged = (entry, expected, blobRow) => {
      creates.push(entry.path);
      return createIfUnchanged(entry, expected, blobRow);
    };
    const names = Array.from({ length: 8 }, (_, i) => `/shared/r${i}`);
    for (const name of names) await put(alice, name, 'one');
    for (const name of names) expect((await put(alice, name, 'two')).created).to.equal(false);
    // About one replacement in ten is enough to stop presuming: the first few tried, the rest looked first.
    const tried = creates.filter((p) => p.startsWith('/shared/r')).length - names.length;
    expect(tried).to.be.within(1, names.length - 1);
    lookups = [];
    await put(alice, '/shared/c0', 'x');
    expect(lookups, 'a create right after the replacements looks first').to.deep.equal(['/shared/c0']);
    for (let i = 1; i <= 40; i++) await put(alice, `/shared/c${i}`, 'x');
    lookups = [];
    await put(alice, '/shared/c41', 'x');
    expect(lookups, 'presumed again').to.deep.equal([]);
    for (const name of names) expect(await read(name)).to.equal('two');
  });

  it('reads the path first for a POST, a precondition, a body of unknown or large length, and missing parents', async function () {
    await t.addFile('/shared/f', 'old', { mode: 0o666, uid: alice.uid, gid: alice.gid });
    await rejectsWith(put(alice, '/shared/f', 'x', { mustCreate: true }), 'FILE_ALREADY_EXISTS');
    await rejectsWith(put(alice, '/shared/f', 'x', { ifNoneMatch: '*' }), 'PRECONDITION_FAILED');
    await put(alice, '/shared/f', 'y', { ifMatch: '*' });
    await t.engine.writeFile(alice, '/shared/g', body('no length'), PUT);
    await put(alice, '/shared/big', 'z'.repeat(64 * 1024 + 1));
    await put(alice, '/shared/a/b', 'x');
    expect(lookups).to.deep.equal(['/shared/f', '/shared/f', '/shared/f', '/shared/g', '/shared/big', '/shared/a/b']);
    expect(await read('/shared/f')).to.equal('y');
  });
});
