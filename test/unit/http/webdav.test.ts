import { expect } from 'chai';
import { CallfsError } from '../../../lib/errors.js';
import { parseIf, submittedTokens } from '../../../lib/http/webdav/if-header.js';
import { DEFAULT_LOCK_SECONDS, MAX_LOCK_SECONDS, lockTimeout } from '../../../lib/http/webdav/locking.js';
import { davCaller } from '../../../lib/http/webdav/index.js';
import type { Caller } from '../../../lib/http/state.js';

const alice: Caller = { name: 'alice', uid: 1001, gid: 1001, groups: [] };
const authenticate = (header: string | undefined): Caller | null => (header === 'Bearer alice-key-0123456789' ? alice : null);
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('WebDAV: the If header', () => {
  it('parses untagged lists with tokens, entity tags and Not', () => {
    const lists = parseIf('(<urn:uuid:1> ["abc"]) (Not <DAV:no-lock> [W/"x"])');
    expect(lists).to.deep.equal([
      { resource: null, conditions: [{ not: false, token: 'urn:uuid:1' }, { not: false, etag: '"abc"' }] },
      { resource: null, conditions: [{ not: true, token: 'DAV:no-lock' }, { not: false, etag: 'W/"x"' }] },
    ]);
    expect([...submittedTokens(lists)]).to.deep.equal(['urn:uuid:1', 'DAV:no-lock']);
  });

  it('parses tagged lists, each about its resource', () => {
    const lists = parseIf('<https://h/webdav/a> (<urn:uuid:1>) <https://h/webdav/b> (["e"]) (not <urn:uuid:2>)');
    expect(lists.map((l) => l.resource)).to.deep.equal(['https://h/webdav/a', 'https://h/webdav/b', 'https://h/webdav/b']);
    expect(lists[2]?.conditions).to.deep.equal([{ not: true, token: 'urn:uuid:2' }]);
  });

  for (const header of ['', '(', '(<urn:uuid:1>', '(["abc")', '()', 'urn:uuid:1', '(<a>) <https://h/x> (<b>)', '(Maybe <a>)']) {
    it(`refuses ${JSON.stringify(header)} as BAD_REQUEST`, () => {
      expect(() => parseIf(header)).to.throw(CallfsError).with.property('code', 'BAD_REQUEST');
    });
  }
});

describe('WebDAV: lock timeouts', () => {
  it('takes the first value it understands, capped', () => {
    expect(lockTimeout('')).to.equal(DEFAULT_LOCK_SECONDS);
    expect(lockTimeout('Second-30')).to.equal(30);
    expect(lockTimeout('Infinite, Second-30')).to.equal(MAX_LOCK_SECONDS);
    expect(lockTimeout('Second-4100000000')).to.equal(MAX_LOCK_SECONDS);
    expect(lockTimeout('Fortnight-1, Second-60')).to.equal(60);
    expect(lockTimeout('Second-0')).to.equal(1);
  });
});

describe('WebDAV: who is calling', () => {
  it('accepts Basic with the user name and its API key, and Bearer', () => {
    expect(davCaller(authenticate, basic('alice', 'alice-key-0123456789'))).to.equal(alice);
    expect(davCaller(authenticate, 'Bearer alice-key-0123456789')).to.equal(alice);
  });

  it('refuses a key given under another name, a wrong key, and malformed credentials', () => {
    expect(davCaller(authenticate, basic('bob', 'alice-key-0123456789'))).to.equal(null);
    expect(davCaller(authenticate, basic('alice', 'nope'))).to.equal(null);
    expect(davCaller(authenticate, basic('alice', 'alice-key-0123456789 '))).to.equal(null);
    expect(davCaller(authenticate, `Basic ${Buffer.from('alice').toString('base64')}`)).to.equal(null);
    expect(davCaller(authenticate, '')).to.equal(null);
    expect(davCaller(authenticate, 'Digest username="alice"')).to.equal(null);
  });
});
