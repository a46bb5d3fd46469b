import { expect } from 'chai';
import { checkAuthUsers, createUserDirectory, usersFromConfig, type UserSpec } from '../../lib/auth/users.js';

const ALICE_KEY = 'alice-key-0123456789abcdef';
const ADMIN_KEY = 'admin-key-0123456789abcdef';

const specs: UserSpec[] = [
  { name: 'alice', uid: 1001, gid: 1001, groups: [100], apiKey: ALICE_KEY },
  { name: 'admin', uid: 0, gid: 0, groups: [], apiKey: ADMIN_KEY },
];

describe('users', function () {
  describe('authenticate', function () {
    const users = createUserDirectory(specs);

    it('returns the user of a valid Bearer key', function () {
      expect(users.authenticate(`Bearer ${ALICE_KEY}`)).to.deep.equal({ name: 'alice', uid: 1001, gid: 1001, groups: [100] });
      expect(users.authenticate(`Bearer ${ADMIN_KEY}`)?.uid).to.equal(0);
    });

    it('accepts the scheme in any case', function () {
      expect(users.authenticate(`bearer ${ALICE_KEY}`)?.name).to.equal('alice');
      expect(users.authenticate(`BEARER ${ALICE_KEY}`)?.name).to.equal('alice');
    });

    it('refuses a missing header', function () {
      expect(users.authenticate(undefined)).to.equal(null);
      expect(users.authenticate('')).to.equal(null);
    });

    it('refuses a wrong key, including a prefix or an extension of a real one', function () {
      expect(users.authenticate('Bearer wrong-key-0123456789abcdef')).to.equal(null);
      expect(users.authenticate(`Bearer ${ALICE_KEY.slice(0, -1)}`)).to.equal(null);
      expect(users.authenticate(`Bearer ${ALICE_KEY}x`)).to.equal(null);
    });

    it('refuses "Bearer " with an empty token', function () {
      expect(users.authenticate('Bearer ')).to.equal(null);
      expect(users.authenticate('Bearer')).to.equal(null);
    });

    it('refuses a key without the Bearer scheme, or with another scheme', function () {
      expect(users.authenticate(ALICE_KEY)).to.equal(null);
      expect(users.authenticate(`Basic ${ALICE_KEY}`)).to.equal(null);
      expect(users.authenticate(`Bearer:${ALICE_KEY}`)).to.equal(null);
    });

    it('refuses extra spaces and extra tokens', function () {
      expect(users.authenticate(`Bearer  ${ALICE_KEY}`)).to.equal(null);
      expect(users.authenticate(` Bearer ${ALICE_KEY}`)).to.equal(null);
      expect(users.authenticate(`Bearer ${ALICE_KEY} `)).to.equal(null);
      expect(users.authenticate(`Bearer ${ALICE_KEY} ${ADMIN_KEY}`)).to.equal(null);
      expect(users.authenticate(`Bearer\t${ALICE_KEY}`)).to.equal(null);
    });

    it('finds users by name and uid', function () {
      expect(users.byName('alice')?.uid).to.equal(1001);
      expect(users.byName('nobody')).to.equal(undefined);
      expect(users.byUid(0)?.name).to.equal('admin');
      expect(users.byUid(4242)).to.equal(undefined);
      expect(users.list().map((u) => u.name)).to.deep.equal(['alice', 'admin']);
    });

    it('hands out users that callers cannot change', function () {
      const user = users.authenticate(`Bearer ${ALICE_KEY}`);
      expect(() => (user as { uid: number }).uid = 0).to.throw(TypeError);
      expect(() => user?.groups.push(0)).to.throw(TypeError);
      expect(users.byName('alice')?.uid).to.equal(1001);
    });

    it('refuses ambiguous directories', function () {
      expect(() => createUserDirectory([...specs, { name: 'bob', uid: 1002, gid: 1002, groups: [], apiKey: ALICE_KEY }])).to.throw(/twice/);
      expect(() => createUserDirectory([...specs, { name: 'alice', uid: 1009, gid: 1001, groups: [100], apiKey: 'another-key-0123456789' }])).to.throw(/different/);
      expect(() => createUserDirectory([{ name: 'x', uid: 1, gid: 1, groups: [], apiKey: 'has a space in it!!' }])).to.throw();
      expect(() => createUserDirectory([{ name: 'x', uid: 1, gid: 1, groups: [], apiKey: '' }])).to.throw();
    });

    it('lets one user have several keys', function () {
      const two = createUserDirectory([...specs, { name: 'alice', uid: 1001, gid: 1001, groups: [100], apiKey: 'alice-second-key-0123456789' }]);
      expect(two.authenticate('Bearer alice-second-key-0123456789')?.name).to.equal('alice');
      expect(two.authenticate(`Bearer ${ALICE_KEY}`)?.name).to.equal('alice');
      expect(two.list()).to.have.length(2);
    });
  });

  describe('usersFromConfig', function () {
    const key = (n: number): string => `configured-key-${String(n).padStart(4, '0')}`;

    it('reads auth.users', function () {
      const out = usersFromConfig({ users: { alice: { api_key: key(1), uid: 1001, gid: 1001, groups: [100] }, admin: { api_key: key(2), uid: 0, gid: 0 } } });
      expect(out).to.deep.equal([
        { name: 'alice', uid: 1001, gid: 1001, groups: [100], apiKey: key(1) },
        { name: 'admin', uid: 0, gid: 0, groups: [], apiKey: key(2) },
      ]);
    });

    it("maps the original's auth.api_keys to api-user-N with uids from 1001 and gid 1000", function () {
      const out = usersFromConfig({ api_keys: [key(1), key(2)] });
      expect(out).to.deep.equal([
        { name: 'api-user-1', uid: 1001, gid: 1000, groups: [], apiKey: key(1) },
        { name: 'api-user-2', uid: 1002, gid: 1000, groups: [], apiKey: key(2) },
      ]);
    });

    it("maps the original's auth.api_key_users to uids from 2001 in sorted name order", function () {
      const out = usersFromConfig({ api_key_users: { zed: key(1), bob: key(2), carol: key(3) } });
      expect(out.map((u) => [u.name, u.uid, u.gid])).to.deep.equal([
        ['bob', 2001, 1000],
        ['carol', 2002, 1000],
        ['zed', 2003, 1000],
      ]);
    });

    it('gives an api_key_users name that is also in auth.users that identity, and no generated uid', function () {
      const out = usersFromConfig({
        users: { carol: { api_key: key(1), uid: 5000, gid: 5000, groups: [7] } },
        api_key_users: { carol: key(2), dave: key(3), bob: key(4) },
      });
      expect(out.map((u) => [u.name, u.uid, u.gid, u.groups])).to.deep.equal([
        ['carol', 5000, 5000, [7]],
        ['bob', 2001, 1000, []],
        ['carol', 5000, 5000, [7]],
        ['dave', 2002, 1000, []],
      ]);
      const users = createUserDirectory(out);
      expect(users.authenticate(`Bearer ${key(2)}`)?.uid).to.equal(5000);
      expect(users.authenticate(`Bearer ${key(1)}`)?.uid).to.equal(5000);
    });

    it('combines the three forms into one directory', function () {
      const users = createUserDirectory(
        usersFromConfig({ users: { admin: { api_key: key(1), uid: 0, gid: 0 } }, api_keys: [key(2)], api_key_users: { bob: key(3) } }),
      );
      expect(users.authenticate(`Bearer ${key(1)}`)?.name).to.equal('admin');
      expect(users.authenticate(`Bearer ${key(2)}`)?.name).to.equal('api-user-1');
      expect(users.authenticate(`Bearer ${key(3)}`)?.name).to.equal('bob');
    });

    it('throws on a configuration with problems', function () {
      expect(() => usersFromConfig({ api_keys: ['short'] })).to.throw(/shorter than 16/);
    });
  });

  describe('checkAuthUsers', function () {
    const key = (n: number): string => `configured-key-${String(n).padStart(4, '0')}`;

    it('accepts a clean configuration', function () {
      expect(checkAuthUsers({ users: { alice: { api_key: key(1), uid: 1001, gid: 1001 } }, api_key_users: { bob: key(2) } })).to.deep.equal({
        problems: [],
        warnings: [],
      });
    });

    it('reports keys shorter than 16 characters, naming their config key', function () {
      const { problems } = checkAuthUsers({ api_keys: ['0123456789abcde'], api_key_users: { bob: 'short' }, users: { a: { api_key: '', uid: 1, gid: 1 } } });
      expect(problems.some((p) => p.startsWith('auth.api_keys[0]:'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('auth.api_key_users.bob:'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('auth.users.a.api_key:'))).to.equal(true);
      expect(problems).to.have.length(3);
    });

    it('reports a key used twice across forms', function () {
      const { problems } = checkAuthUsers({ users: { alice: { api_key: key(1), uid: 1001, gid: 1001 } }, api_keys: [key(1)] });
      expect(problems).to.have.length(1);
      expect(problems[0]).to.match(/^auth\.api_keys\[0\]: duplicate API key \(also used by auth\.users\.alice\.api_key\)/);
    });

    it('reports keys with spaces, bad ids and bad names', function () {
      const { problems } = checkAuthUsers({
        users: {
          'bad name': { api_key: key(1), uid: -1, gid: 1.5, groups: ['x' as unknown as number] },
          ok: { api_key: 'has spaces in this key', uid: 1, gid: 1 },
        },
      });
      expect(problems.some((p) => p.startsWith('auth.users.bad name:'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('auth.users.bad name.uid:'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('auth.users.bad name.gid:'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('auth.users.bad name.groups:'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('auth.users.ok.api_key:'))).to.equal(true);
    });

    it('reports an api_key_users name that auth.api_keys already generates', function () {
      const { problems } = checkAuthUsers({ api_keys: [key(1)], api_key_users: { 'api-user-1': key(2) } });
      expect(problems).to.have.length(1);
      expect(problems[0]).to.match(/^auth\.api_key_users\.api-user-1:/);
    });

    it('warns, without failing, when different names share a uid', function () {
      const input = { users: { alice: { api_key: key(1), uid: 1001, gid: 1001 } }, api_keys: [key(2)] };
      const { problems, warnings } = checkAuthUsers(input);
      expect(problems).to.deep.equal([]);
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.include('1001');
      expect(usersFromConfig(input)).to.have.length(2);
    });

    it('reports malformed entries instead of crashing', function () {
      const { problems } = checkAuthUsers({ users: { x: null as unknown as { api_key: string; uid: number; gid: number } } });
      expect(problems).to.have.length(1);
      expect(problems[0]).to.match(/^auth\.users\.x:/);
    });
  });
});
