import { expect } from 'chai';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';
import { DAV, child, children, davClient, descendants, lockBody, lockToken, parseMultistatus, parseXml, propfindBody, type User, type XmlElement } from '../support/webdav.js';

const TOKEN = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The DAV:activelock elements of a LOCK answer or of a PROPFIND's lockdiscovery. */
function activeLocks(xml: string): XmlElement[] {
  return descendants(parseXml(xml), DAV, 'activelock');
}

const lockTokenOf = (lock: XmlElement): string | undefined => child(child(lock, DAV, 'locktoken'), DAV, 'href')?.text.trim();
const timeoutOf = (lock: XmlElement): string | undefined => child(lock, DAV, 'timeout')?.text.trim();
const scopeOf = (lock: XmlElement): string | undefined => child(lock, DAV, 'lockscope')?.children[0]?.local;

/** WebDAV locks against one server (`dav` from davClient) and its /v1 API. */
function lockClient(getServer: () => { url: string; ca: Buffer }) {
  const dav = (method: string, path: string, options: { as?: User; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<TestResponse> => {
    const s = getServer();
    return davClient(s.url, s.ca).dav(method, path, options);
  };
  const lock = (path: string, scope: 'exclusive' | 'shared' = 'exclusive', headers: Record<string, string> = {}, as: User = 'alice'): Promise<TestResponse> =>
    dav('LOCK', path, { as, body: lockBody(scope), headers: { 'content-type': 'application/xml', timeout: 'Second-600', ...headers } });
  const locked = async (path: string, scope: 'exclusive' | 'shared' = 'exclusive', headers: Record<string, string> = {}): Promise<string> => {
    const res = await lock(path, scope, headers);
    expect(res.status, `LOCK ${path}: ${res.text.slice(0, 300)}`).to.be.oneOf([200, 201]);
    return lockToken(res);
  };
  const unlock = (path: string, token: string, as: User = 'alice'): Promise<TestResponse> => dav('UNLOCK', path, { as, headers: { 'lock-token': `<${token}>` } });
  const discovery = async (path: string): Promise<XmlElement[]> => {
    const res = await dav('PROPFIND', path, { headers: { depth: '0' }, body: propfindBody(['lockdiscovery']) });
    expect(res.status).to.equal(207);
    const [r] = parseMultistatus(res.text);
    const prop = r?.props.get(`{${DAV}}lockdiscovery`);
    expect(prop?.status).to.equal(200);
    return prop === undefined ? [] : children(prop.el, DAV, 'activelock');
  };
  const v1 = (method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<TestResponse> => {
    const s = getServer();
    return request(`${s.url}${path}`, { method, token: KEYS.alice, ca: s.ca, headers, ...(body === undefined ? {} : { body }) });
  };
  return { dav, lock, locked, unlock, discovery, v1 };
}

/** 423 with the RFC 4918 precondition element naming the lock. */
function expectLocked(res: TestResponse, what: string): void {
  expect(res.status, `${what}: ${res.text.slice(0, 300)}`).to.equal(423);
  const err = parseXml(res.text);
  expect(err.ns === DAV && err.local === 'error', `${what}: a DAV:error body`).to.equal(true);
  expect(child(err, DAV, 'lock-token-submitted'), `${what}: lock-token-submitted`).to.not.equal(undefined);
}

describe('WebDAV locks (embedded server over HTTPS)', function () {
  this.timeout(120_000);
  let server: TestServer;
  const { dav, lock, locked, unlock, discovery, v1 } = lockClient(() => server);
  const url = (path: string): string => davClient(server.url, server.ca).url(path);
  const putOk = async (path: string, body: string, headers: Record<string, string> = {}): Promise<void> => {
    const res = await dav('PUT', path, { body, headers });
    expect(res.status, `PUT ${path} ${JSON.stringify(headers)}: ${res.text.slice(0, 300)}`).to.be.oneOf([200, 201, 204]);
  };

  before(async () => {
    server = await startTestServer();
    expect((await dav('MKCOL', '/locks')).status).to.equal(201);
  });
  after(async () => {
    await server?.stop();
  });

  it('an exclusive lock: a urn:uuid token, the lock in the answer and in lockdiscovery', async () => {
    await putOk('/locks/ex.txt', 'v1');
    const res = await lock('/locks/ex.txt', 'exclusive', { timeout: 'Second-600' });
    expect(res.status).to.equal(200);
    const token = lockToken(res);
    expect(token).to.match(TOKEN);
    const [active, ...more] = activeLocks(res.text);
    expect(more).to.have.length(0);
    expect(lockTokenOf(active as XmlElement)).to.equal(token);
    expect(scopeOf(active as XmlElement)).to.equal('exclusive');
    expect(child(child(active, DAV, 'locktype'), DAV, 'write')).to.not.equal(undefined);
    expect(timeoutOf(active as XmlElement)).to.equal('Second-600');
    expect(child(active, DAV, 'owner')?.children.map((c) => c.text)).to.deep.equal(['callfs-tests']);
    const seen = await discovery('/locks/ex.txt');
    expect(seen.map(lockTokenOf)).to.deep.equal([token]);
    expect((await unlock('/locks/ex.txt', token)).status).to.equal(204);
    expect(await discovery('/locks/ex.txt')).to.have.length(0);
  });

  it('writes without the token are 423 (even by the lock’s owner); with If: (<token>) they succeed; reads are free', async () => {
    await putOk('/locks/guarded.txt', 'original');
    await putOk('/locks/other.txt', 'other');
    const token = await locked('/locks/guarded.txt');
    expectLocked(await dav('PUT', '/locks/guarded.txt', { body: 'no token' }), 'PUT');
    expectLocked(await dav('PUT', '/locks/guarded.txt', { as: 'bob', body: 'no token' }), 'PUT by bob');
    expectLocked(await dav('DELETE', '/locks/guarded.txt'), 'DELETE');
    expectLocked(await dav('PROPPATCH', '/locks/guarded.txt', { body: '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:a xmlns:x="urn:x">1</x:a></D:prop></D:set></D:propertyupdate>' }), 'PROPPATCH');
    expectLocked(await dav('MOVE', '/locks/guarded.txt', { headers: { destination: url('/locks/elsewhere.txt') } }), 'MOVE away');
    expectLocked(await dav('COPY', '/locks/other.txt', { headers: { destination: url('/locks/guarded.txt') } }), 'COPY onto');
    expect((await v1('GET', '/v1/files/locks/guarded.txt')).text, 'nothing changed').to.equal('original');

    expect((await dav('GET', '/locks/guarded.txt')).text).to.equal('original');
    expect((await dav('PROPFIND', '/locks/guarded.txt', { headers: { depth: '0' } })).status).to.equal(207);
    expect((await dav('COPY', '/locks/guarded.txt', { headers: { destination: url('/locks/copy-of-guarded.txt') } })).status, 'COPY from a locked file').to.equal(201);

    await putOk('/locks/guarded.txt', 'untagged', { if: `(<${token}>)` });
    await putOk('/locks/guarded.txt', 'tagged', { if: `<${url('/locks/guarded.txt')}> (<${token}>)` });
    expect((await v1('GET', '/v1/files/locks/guarded.txt')).text).to.equal('tagged');
    const etag = String((await dav('HEAD', '/locks/guarded.txt')).headers.etag);
    await putOk('/locks/guarded.txt', 'with etag', { if: `(<${token}> [${etag}])` });
    const stale = await dav('PUT', '/locks/guarded.txt', { body: 'stale etag', headers: { if: `(<${token}> ["0000"])` } });
    expect(stale.status, 'a false If condition').to.equal(412);
    const wrong = await dav('PUT', '/locks/guarded.txt', { body: 'wrong token', headers: { if: '(<urn:uuid:00000000-0000-0000-0000-000000000000>)' } });
    expect(wrong.status, 'an unknown token').to.be.oneOf([412, 423]);
    expect((await v1('GET', '/v1/files/locks/guarded.txt')).text).to.equal('with etag');

    await putOk('/locks/guarded.txt', 'with Not', { if: `(<${token}>) (Not <DAV:no-lock>)` });
    // litmus's complex_cond_put and fail_complex_cond_put, sent whole (litmus cuts this header off at 199 bytes).
    const etagNow = String((await dav('HEAD', '/locks/guarded.txt')).headers.etag);
    const corrupt = etagNow.slice(0, -4) + (etagNow.at(-4) === '0' ? '1' : '0') + etagNow.slice(-3);
    await putOk('/locks/guarded.txt', 'complex', { if: `(<${token}> [${etagNow}]) (Not <DAV:no-lock> [${etagNow}])` });
    const complexFail = await dav('PUT', '/locks/guarded.txt', { body: 'complex bogus', headers: { if: `(<${token}> [${corrupt}]) (Not <DAV:no-lock> [${corrupt}])` } });
    expect(complexFail.status, 'complex If with a corrupt ETag').to.equal(412);
    expect((await v1('GET', '/v1/files/locks/guarded.txt')).text).to.equal('complex');
    expect((await unlock('/locks/guarded.txt', token)).status).to.equal(204);
    await putOk('/locks/guarded.txt', 'free again');
  });

  it('If headers on an unlocked resource: (Not <DAV:no-lock>) holds, (<DAV:no-lock>) does not (412)', async () => {
    await putOk('/locks/cond.txt', 'x');
    await putOk('/locks/cond.txt', 'y', { if: '(Not <DAV:no-lock>)' });
    expect((await dav('PUT', '/locks/cond.txt', { body: 'z', headers: { if: '(<DAV:no-lock>)' } })).status).to.equal(412);
    const etag = String((await dav('HEAD', '/locks/cond.txt')).headers.etag);
    await putOk('/locks/cond.txt', 'etag matches', { if: `([${etag}])` });
    expect((await dav('PUT', '/locks/cond.txt', { body: 'stale', headers: { if: `([${etag}])` } })).status, 'the etag changed').to.equal(412);
    expect((await v1('GET', '/v1/files/locks/cond.txt')).text).to.equal('etag matches');
  });

  it('a second lock on an exclusively locked resource is 423, shared or exclusive, by anyone', async () => {
    // 0666: bob may write it, so that his LOCK is refused for the lock, not for the permission (403).
    expect((await v1('PUT', '/v1/files/locks/taken.txt', 'x', { 'x-callfs-mode': '0666' })).status).to.equal(201);
    const token = await locked('/locks/taken.txt');
    expect((await lock('/locks/taken.txt', 'exclusive')).status).to.equal(423);
    expect((await lock('/locks/taken.txt', 'shared')).status).to.equal(423);
    expect((await lock('/locks/taken.txt', 'exclusive', {}, 'bob')).status).to.equal(423);
    expect((await unlock('/locks/taken.txt', token)).status).to.equal(204);
  });

  it('UNLOCK: 204 with the token, 409 with a wrong one or once it is gone', async () => {
    await putOk('/locks/un.txt', 'x');
    const token = await locked('/locks/un.txt');
    expect((await unlock('/locks/un.txt', 'urn:uuid:00000000-0000-0000-0000-000000000000')).status).to.equal(409);
    expectLocked(await dav('PUT', '/locks/un.txt', { body: 'still locked' }), 'PUT after a failed UNLOCK');
    expect((await unlock('/locks/un.txt', token)).status).to.equal(204);
    expect((await unlock('/locks/un.txt', token)).status).to.equal(409);
  });

  it('shared locks: several at once, any one token lets a write through, an exclusive one is refused', async () => {
    await putOk('/locks/shared.txt', 'x');
    const first = await locked('/locks/shared.txt', 'shared');
    const second = await locked('/locks/shared.txt', 'shared');
    expect(first).to.not.equal(second);
    expect((await lock('/locks/shared.txt', 'exclusive')).status).to.equal(423);
    const found = await discovery('/locks/shared.txt');
    expect(found.map(lockTokenOf).sort()).to.deep.equal([first, second].sort());
    expect(found.map(scopeOf)).to.deep.equal(['shared', 'shared']);
    expectLocked(await dav('PUT', '/locks/shared.txt', { body: 'no token' }), 'PUT without a token');
    await putOk('/locks/shared.txt', 'by second', { if: `(<${second}>)` });
    expect((await unlock('/locks/shared.txt', first)).status).to.equal(204);
    expectLocked(await dav('PUT', '/locks/shared.txt', { body: 'no token' }), 'PUT with one shared lock left');
    expect((await unlock('/locks/shared.txt', second)).status).to.equal(204);
    await putOk('/locks/shared.txt', 'free');
  });

  it('timeouts: Second-N as asked, 600 s by default, 3600 s at most and for Infinite', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ timeout: 'Second-100' }, 'Second-100'],
      [{}, 'Second-600'],
      [{ timeout: 'Infinite' }, 'Second-3600'],
      [{ timeout: 'Second-999999' }, 'Second-3600'],
      [{ timeout: 'Infinite, Second-4100000000' }, 'Second-3600'],
    ];
    for (const [i, [headers, expected]] of cases.entries()) {
      await putOk(`/locks/timeout-${i}.txt`, 'x');
      const res = await dav('LOCK', `/locks/timeout-${i}.txt`, { body: lockBody('exclusive'), headers: { 'content-type': 'application/xml', ...headers } });
      expect(res.status).to.equal(200);
      expect(timeoutOf(activeLocks(res.text)[0] as XmlElement), JSON.stringify(headers)).to.equal(expected);
      expect((await unlock(`/locks/timeout-${i}.txt`, lockToken(res))).status).to.equal(204);
    }
  });

  it('refresh: LOCK with If and no body extends the same lock; a wrong token is 412', async () => {
    await putOk('/locks/refresh.txt', 'x');
    const token = await locked('/locks/refresh.txt', 'exclusive', { timeout: 'Second-100' });
    const refreshed = await dav('LOCK', '/locks/refresh.txt', { headers: { if: `(<${token}>)`, timeout: 'Second-1000' } });
    expect(refreshed.status).to.equal(200);
    const [active] = activeLocks(refreshed.text);
    expect(lockTokenOf(active as XmlElement)).to.equal(token);
    expect(timeoutOf(active as XmlElement)).to.equal('Second-1000');
    const seen = await discovery('/locks/refresh.txt');
    expect(seen.map(lockTokenOf)).to.deep.equal([token]);
    expect(timeoutOf(seen[0] as XmlElement)).to.match(/^Second-(\d+)$/);
    expect(Number(timeoutOf(seen[0] as XmlElement)?.slice(7))).to.be.within(900, 1000);
    const bad = await dav('LOCK', '/locks/refresh.txt', { headers: { if: '(<urn:uuid:00000000-0000-0000-0000-000000000000>)', timeout: 'Second-1000' } });
    expect(bad.status).to.equal(412);
    expect((await unlock('/locks/refresh.txt', token)).status).to.equal(204);
  });

  it('a lock that times out stops guarding the resource', async () => {
    await putOk('/locks/expiring.txt', 'x');
    const token = await locked('/locks/expiring.txt', 'exclusive', { timeout: 'Second-1' });
    expect(token).to.match(TOKEN);
    const deadline = Date.now() + 20_000;
    let status: number;
    for (;;) {
      status = (await dav('PUT', '/locks/expiring.txt', { body: 'after expiry' })).status;
      if (status !== 423 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status, 'PUT without a token once the 1 s lock expired (polled for 20 s)').to.equal(204);
    expect(await discovery('/locks/expiring.txt')).to.have.length(0);
  });

  it('LOCK on a missing path creates an empty, locked file (201): the macOS/Windows LOCK-then-PUT', async () => {
    const res = await lock('/locks/new-by-lock.txt');
    expect(res.status).to.equal(201);
    const token = lockToken(res);
    const made = await v1('HEAD', '/v1/files/locks/new-by-lock.txt');
    expect(made.status).to.equal(200);
    expect(made.headers['content-length']).to.equal('0');
    expectLocked(await dav('PUT', '/locks/new-by-lock.txt', { body: 'no token' }), 'PUT without the token');
    await putOk('/locks/new-by-lock.txt', 'the real content', { if: `(<${token}>)` });
    expect((await unlock('/locks/new-by-lock.txt', token)).status).to.equal(204);
    expect((await v1('GET', '/v1/files/locks/new-by-lock.txt')).text).to.equal('the real content');
    expect((await lock('/locks/no/parent.txt')).status, 'no parent').to.equal(409);
  });

  it('a Depth infinity lock on a collection guards its members and new names in it', async () => {
    expect((await dav('MKCOL', '/locks/tree')).status).to.equal(201);
    await putOk('/locks/tree/member.txt', 'm');
    const token = await locked('/locks/tree', 'exclusive', { depth: 'infinity' });
    expectLocked(await dav('PUT', '/locks/tree/member.txt', { body: 'x' }), 'PUT to a member');
    expectLocked(await dav('PUT', '/locks/tree/new.txt', { body: 'x' }), 'PUT of a new member');
    expectLocked(await dav('MKCOL', '/locks/tree/sub'), 'MKCOL inside');
    expectLocked(await dav('DELETE', '/locks/tree/member.txt'), 'DELETE of a member');
    expect((await lock('/locks/tree/member.txt')).status, 'a lock on a member').to.equal(423);
    const inherited = await discovery('/locks/tree/member.txt');
    expect(inherited.map(lockTokenOf)).to.deep.equal([token]);
    await putOk('/locks/tree/new.txt', 'with the token', { if: `(<${token}>)` });
    expect((await dav('MKCOL', '/locks/tree/sub', { headers: { if: `(<${token}>)` } })).status).to.equal(201);
    expect((await unlock('/locks/tree', token)).status).to.equal(204);
    await putOk('/locks/tree/member.txt', 'free');
  });

  it('a Depth 0 lock on a collection guards its membership, not its members’ content', async () => {
    expect((await dav('MKCOL', '/locks/flat')).status).to.equal(201);
    await putOk('/locks/flat/member.txt', 'm');
    const token = await locked('/locks/flat', 'exclusive', { depth: '0' });
    await putOk('/locks/flat/member.txt', 'content of a member is not guarded');
    expectLocked(await dav('PUT', '/locks/flat/added.txt', { body: 'x' }), 'adding a member (RFC 4918 §7.5)');
    expect((await unlock('/locks/flat', token)).status).to.equal(204);
  });

  it('the /v1 API does not honour WebDAV locks (documented)', async () => {
    await putOk('/locks/v1.txt', 'x');
    const token = await locked('/locks/v1.txt');
    expect((await v1('PUT', '/v1/files/locks/v1.txt', 'through v1')).status).to.equal(200);
    expect((await unlock('/locks/v1.txt', token)).status).to.equal(204);
  });
});

describe('WebDAV locks and properties across a cluster (Postgres + Redis, two instances)', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  const on = (i: number) => lockClient(() => ({ url: (cluster.instances[i] as { url: string }).url, ca: cluster.ca }));

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    cluster = await startCluster(['a', 'b']);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('a lock taken on one instance is seen and honoured on the other', async () => {
    const a = on(0);
    const b = on(1);
    expect((await a.dav('MKCOL', '/shared-locks')).status).to.equal(201);
    expect((await a.dav('PUT', '/shared-locks/f.txt', { body: 'from a' })).status).to.equal(201);
    const token = await a.locked('/shared-locks/f.txt');
    expect((await b.discovery('/shared-locks/f.txt')).map(lockTokenOf)).to.deep.equal([token]);
    expectLocked(await b.dav('PUT', '/shared-locks/f.txt', { body: 'from b, no token' }), 'PUT on b without the token');
    expect((await b.lock('/shared-locks/f.txt')).status, 'LOCK on b').to.equal(423);
    expect((await b.dav('PUT', '/shared-locks/f.txt', { body: 'from b', headers: { if: `(<${token}>)` } })).status).to.equal(204);
    expect((await a.v1('GET', '/v1/files/shared-locks/f.txt')).text).to.equal('from b');
    expect((await b.unlock('/shared-locks/f.txt', token)).status, 'UNLOCK on b').to.equal(204);
    expect((await a.dav('PUT', '/shared-locks/f.txt', { body: 'free' })).status).to.equal(204);
  });

  it('dead properties set on one instance are read on the other', async () => {
    const a = on(0);
    const b = on(1);
    expect((await a.dav('PUT', '/shared-locks/props.txt', { body: 'p' })).status).to.equal(201);
    const set = await a.dav('PROPPATCH', '/shared-locks/props.txt', {
      body: '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:t="urn:t"><D:set><D:prop><t:where>instance a</t:where></D:prop></D:set></D:propertyupdate>',
    });
    expect(set.status).to.equal(207);
    const got = await b.dav('PROPFIND', '/shared-locks/props.txt', { headers: { depth: '0' }, body: propfindBody([], [{ ns: 'urn:t', local: 'where' }]) });
    const [r] = parseMultistatus(got.text);
    expect(r?.props.get('{urn:t}where')?.el.text).to.equal('instance a');
  });
});
