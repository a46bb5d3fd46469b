import { expect } from 'chai';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { createRedlockLockManager } from '../../lib/locks/index.js';

const SECRETS = { internal_proxy_secret: 'proxy-secret-0123456789abcdef', single_use_link_secret: 'link-secret-0123456789abcdef' };

/** A 5xx answer names what failed in plain words: no address, port, database name, errno or stack frame. */
function expectNoInternals(res: TestResponse, ...secrets: string[]): void {
  for (const leak of ['127.0.0.1', 'localhost', 'ECONN', 'errno', '    at ', ...secrets]) {
    expect(res.text, `a ${res.status} answer leaks ${JSON.stringify(leak)}`).to.not.include(leak);
  }
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

describe('failures of the components behind the API', function () {
  this.timeout(120_000);

  describe('the metadata database goes away and comes back', () => {
    let db: TestDatabase;
    let proxy: TcpProxy;
    let server: TestServer;
    before(async function () {
      requireComponent(this, await ensurePostgres());
      db = await createTestDatabase('callfs_fail');
      proxy = await startTcpProxy({ host: '127.0.0.1', port: 5432 });
      const dsn = new URL(db.dsn);
      dsn.port = String(proxy.port);
      server = await startTestServer({ metadata_store: { dsn: dsn.toString(), cache_size: 0 }, dlm: { type: 'local' }, auth: SECRETS, server: { metadata_op_timeout: '2s' } });
    });
    after(async () => {
      await server?.stop();
      await proxy?.close();
      await db?.drop();
    });

    it('answers 503 SERVICE_UNAVAILABLE with Retry-After while it is down, and recovers by itself', async () => {
      const call = (method: string, path: string, body?: string) => request(`${server.url}${path}`, { method, token: KEYS.alice, ...(body === undefined ? {} : { body }) });
      expect((await call('PUT', '/v1/files/db/f.txt', 'before')).status).to.equal(201);
      await proxy.cut();
      const started = Date.now();
      const read = await call('GET', '/v1/files/db/f.txt');
      expect(read.status).to.equal(503);
      expect(read.json.code).to.equal('SERVICE_UNAVAILABLE');
      expect(read.json.message).to.equal('the metadata store is unavailable; retry shortly');
      expect(read.headers['retry-after']).to.match(/^\d+$/);
      expect(Date.now() - started).to.be.below(10_000);
      expectNoInternals(read, db.name, String(proxy.port));
      const write = await call('PUT', '/v1/files/db/g.txt', 'during');
      expect(write.status).to.equal(503);
      expectNoInternals(write, db.name, String(proxy.port));
      const listing = await call('GET', '/v1/directories/db');
      expect(listing.status).to.equal(503);
      expectNoInternals(listing, db.name, String(proxy.port));
      // Unauthenticated: states only, the reasons are in the log.
      const ready = await request(`${server.url}/ready`);
      expect(ready.status).to.equal(503);
      expect(ready.json.status).to.equal('unavailable');
      expect(ready.json.checks.metadata).to.equal('unavailable');
      expectNoInternals(ready, db.name, String(proxy.port));
      await proxy.restore();
      expect(await eventually(async () => (await call('GET', '/v1/files/db/f.txt')).status === 200, 30_000)).to.equal(true);
      expect((await call('GET', '/v1/files/db/f.txt')).text).to.equal('before');
      expect((await call('HEAD', '/v1/files/db/g.txt')).status).to.equal(404);
      expect((await call('GET', '/ready')).status).to.equal(200);
    });
  });

  describe('Redis for locks is down', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ dlm: { type: 'redis', redis_addr: '127.0.0.1:1' }, auth: SECRETS });
    });
    after(async () => {
      await server?.stop();
    });

    it('answers writes that take a lock with 503 quickly, not a hang; CAS uploads (no lock) and reads go on; /ready says why', async () => {
      // A content-addressed PUT takes no path lock: it does not need Redis.
      expect((await request(`${server.url}/v1/files/locks/f.txt`, { method: 'PUT', token: KEYS.alice, body: 'x' })).status).to.equal(201);
      const started = Date.now();
      const res = await request(`${server.url}/v1/files/locks/f.txt`, { method: 'DELETE', token: KEYS.alice });
      expect(res.status).to.equal(503);
      expect(res.json.code).to.equal('SERVICE_UNAVAILABLE');
      expect(res.headers['retry-after']).to.match(/^\d+$/);
      expect(Date.now() - started).to.be.below(5000);
      expect((await request(`${server.url}/v1/files/locks/f.txt`, { method: 'HEAD', token: KEYS.alice })).status).to.equal(200);
      expect((await request(`${server.url}/v1/directories/`, { token: KEYS.alice })).status).to.equal(200);
      expectNoInternals(res, '6379', ':1');
      const ready = await request(`${server.url}/ready`);
      expect(ready.status).to.equal(503);
      expect(ready.json.checks.locks).to.equal('unavailable');
      expectNoInternals(ready, '6379', ':1');
    });
  });

  describe('a path held by another writer', () => {
    let server: TestServer;
    let db: TestDatabase;
    before(async function () {
      requireComponent(this, await ensurePostgres());
      requireComponent(this, await ensureRedis());
      db = await createTestDatabase('callfs_locked');
      server = await startTestServer({ metadata_store: { dsn: db.dsn }, dlm: { redis_addr: '127.0.0.1:6379' }, locks: { wait_timeout: '700ms' }, auth: SECRETS });
    });
    after(async () => {
      await server?.stop();
      await db?.drop();
    });

    it('answers 423 LOCKED once locks.wait_timeout has passed, and writes again once it is free', async () => {
      expect((await request(`${server.url}/v1/files/locked/f.txt`, { method: 'PUT', token: KEYS.alice, body: 'x' })).status).to.equal(201);
      const chmod = (mode: string) => request(`${server.url}/v1/files/locked/f.txt`, { method: 'PATCH', token: KEYS.alice, body: JSON.stringify({ mode }), headers: { 'content-type': 'application/json' } });
      const other = createRedlockLockManager({ servers: [{ host: '127.0.0.1', port: 6379 }] });
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let acquired!: () => void;
      const ready = new Promise<void>((r) => (acquired = r));
      const holder = other.withLock(['path:/locked/f.txt'], async () => {
        acquired();
        await held;
      });
      await ready;
      try {
        const started = Date.now();
        // chmod takes the path's lock (a content-addressed PUT takes none).
        const res = await chmod('0600');
        expect(res.status).to.equal(423);
        expect(res.json.code).to.equal('LOCKED');
        expect(Date.now() - started).to.be.within(600, 5000);
        expect((await request(`${server.url}/v1/files/locked/f.txt`, { method: 'HEAD', token: KEYS.alice })).headers['x-callfs-mode']).to.equal('0644');
      } finally {
        release();
        await holder;
        await other.close();
      }
      expect((await chmod('0600')).status).to.equal(200);
    });
  });
});
