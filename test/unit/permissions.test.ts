import { expect } from 'chai';
import { isCallfsError } from '../../lib/errors.js';
import {
  assertAccess,
  assertChmod,
  assertChown,
  assertRemoveFromDirectory,
  assertSearchPath,
  mayAccess,
  mayChmod,
  mayChown,
  mayRemoveFromDirectory,
  maySearchPath,
  type PermissionSubject,
} from '../../lib/auth/permissions.js';
import type { User } from '../../lib/auth/users.js';

const root: User = { name: 'admin', uid: 0, gid: 0, groups: [] };
const alice: User = { name: 'alice', uid: 1001, gid: 1001, groups: [100] };
const bob: User = { name: 'bob', uid: 1002, gid: 1002, groups: [] };
const carol: User = { name: 'carol', uid: 1003, gid: 1003, groups: [] };

const file = (mode: number, uid: number, gid: number): PermissionSubject => ({ type: 'file', mode, uid, gid, path: '/f' });
const dir = (mode: number, uid: number, gid: number, path = '/d'): PermissionSubject => ({ type: 'directory', mode, uid, gid, path });

function expectDenied(fn: () => void): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(isCallfsError(thrown, 'PERMISSION_DENIED'), String(thrown)).to.equal(true);
}

const rights = (user: User, entry: PermissionSubject): string =>
  (['r', 'w', 'x'] as const).map((w) => (mayAccess(user, entry, w) ? w : '-')).join('');

describe('permissions', function () {
  describe('classes', function () {
    // Each class gets a different set of bits, so the answer tells which class applied.
    const entry = file(0o640 | 0o001, 1001, 100); // owner rw-, group r--, other --x

    it('uses the owner bits when the uid matches', function () {
      expect(rights(alice, entry)).to.equal('rw-');
    });

    it('uses the group bits when the entry group is the user primary group', function () {
      const member: User = { name: 'm', uid: 2000, gid: 100, groups: [] };
      expect(rights(member, entry)).to.equal('r--');
    });

    it('uses the group bits when the entry group is one of the user supplementary groups', function () {
      const member: User = { name: 'm', uid: 2000, gid: 2000, groups: [7, 100] };
      expect(rights(member, entry)).to.equal('r--');
    });

    it('uses the other bits for everyone else', function () {
      expect(rights(bob, entry)).to.equal('--x');
    });

    it('applies only the owner class to the owner, even when group or other would allow more', function () {
      const locked = file(0o077, 1001, 100);
      expect(rights(alice, locked)).to.equal('---');
      const groupOnly = file(0o707, 1002, 100);
      expect(rights(alice, groupOnly)).to.equal('---'); // alice is in 100, so the group class (---) applies, not other (rwx)
    });

    it('ignores setuid, setgid and sticky bits for access', function () {
      expect(rights(bob, file(0o7000, 1001, 100))).to.equal('---');
    });

    it('throws PERMISSION_DENIED from assertAccess and passes when allowed', function () {
      expectDenied(() => assertAccess(bob, entry, 'r'));
      assertAccess(alice, entry, 'w');
    });
  });

  describe('root', function () {
    it('reads and writes anything', function () {
      expect(mayAccess(root, file(0o000, 1001, 1001), 'r')).to.equal(true);
      expect(mayAccess(root, file(0o000, 1001, 1001), 'w')).to.equal(true);
      expect(mayAccess(root, dir(0o000, 1001, 1001), 'w')).to.equal(true);
    });

    it('searches any directory', function () {
      expect(mayAccess(root, dir(0o000, 1001, 1001), 'x')).to.equal(true);
      expect(maySearchPath(root, [dir(0o700, 1001, 1001), dir(0o000, 1002, 1002)])).to.equal(true);
    });

    it('executes a file only when some execute bit is set', function () {
      expect(mayAccess(root, file(0o644, 1001, 1001), 'x')).to.equal(false);
      expect(mayAccess(root, file(0o001, 1001, 1001), 'x')).to.equal(true);
      expect(mayAccess(root, file(0o100, 1001, 1001), 'x')).to.equal(true);
    });
  });

  describe('search path', function () {
    const chain = [dir(0o755, 0, 0, '/'), dir(0o750, 1001, 100, '/home'), dir(0o700, 1001, 1001, '/home/alice')];

    it('passes with x on every ancestor', function () {
      expect(maySearchPath(alice, chain)).to.equal(true);
      assertSearchPath(alice, chain);
      expect(maySearchPath(bob, chain.slice(0, 1))).to.equal(true);
      expect(maySearchPath(bob, [])).to.equal(true);
    });

    it('fails when one ancestor lacks x for the user', function () {
      expect(maySearchPath(bob, chain)).to.equal(false);
      expectDenied(() => assertSearchPath(bob, chain));
      // Readable but not searchable is not enough.
      const readOnly = [dir(0o755, 0, 0, '/'), dir(0o744, 1001, 1001, '/r')];
      expect(maySearchPath(bob, readOnly)).to.equal(false);
    });

    it('fails on the last ancestor too', function () {
      const member: User = { name: 'm', uid: 2000, gid: 2000, groups: [100] };
      expect(maySearchPath(member, chain.slice(0, 2))).to.equal(true);
      expect(maySearchPath(member, chain)).to.equal(false);
    });
  });

  describe('removal and the sticky bit', function () {
    const tmp = dir(0o1777, 0, 0, '/');
    const alicesFile = file(0o644, 1001, 1001);
    const carolsTmp = dir(0o1777, 1003, 1003, '/carol-tmp');

    it('lets the victim owner remove it from a 1777 directory', function () {
      expect(mayRemoveFromDirectory(alice, tmp, alicesFile)).to.equal(true);
      assertRemoveFromDirectory(alice, tmp, alicesFile);
    });

    it('refuses another user in a 1777 directory, although they may write it', function () {
      expect(mayAccess(bob, tmp, 'w')).to.equal(true);
      expect(mayRemoveFromDirectory(bob, tmp, alicesFile)).to.equal(false);
      expectDenied(() => assertRemoveFromDirectory(bob, tmp, alicesFile));
    });

    it("lets the sticky directory's owner remove anyone's entry", function () {
      expect(mayRemoveFromDirectory(carol, carolsTmp, alicesFile)).to.equal(true);
      expect(mayRemoveFromDirectory(bob, carolsTmp, alicesFile)).to.equal(false);
    });

    it('lets root remove anything', function () {
      expect(mayRemoveFromDirectory(root, tmp, alicesFile)).to.equal(true);
      expect(mayRemoveFromDirectory(root, dir(0o1700, 1003, 1003), alicesFile)).to.equal(true);
    });

    it('without the sticky bit, needs only write and search on the directory', function () {
      const shared = dir(0o777, 0, 0);
      expect(mayRemoveFromDirectory(bob, shared, alicesFile)).to.equal(true);
    });

    it('needs write and search on the directory even for the owner of the victim', function () {
      expect(mayRemoveFromDirectory(alice, dir(0o1755, 0, 0), alicesFile)).to.equal(false); // no w
      expect(mayRemoveFromDirectory(alice, dir(0o1776, 0, 0), alicesFile)).to.equal(false); // no x
      expect(mayRemoveFromDirectory(alice, dir(0o300, 1001, 1001), alicesFile)).to.equal(true); // wx, no r
    });
  });

  describe('chmod and chown', function () {
    const alicesFile = file(0o600, 1001, 1001);

    it('lets the owner and root chmod, nobody else', function () {
      expect(mayChmod(alice, alicesFile)).to.equal(true);
      expect(mayChmod(root, alicesFile)).to.equal(true);
      expect(mayChmod(bob, alicesFile)).to.equal(false);
      expectDenied(() => assertChmod(bob, alicesFile));
      assertChmod(alice, alicesFile);
    });

    it('does not let a group member with write permission chmod', function () {
      const member: User = { name: 'm', uid: 2000, gid: 1001, groups: [] };
      expect(mayAccess(member, file(0o660, 1001, 1001), 'w')).to.equal(true);
      expect(mayChmod(member, file(0o660, 1001, 1001))).to.equal(false);
    });

    it('lets only root chown', function () {
      expect(mayChown(root)).to.equal(true);
      expect(mayChown(alice)).to.equal(false);
      expectDenied(() => assertChown(alice));
      assertChown(root);
    });
  });
});
