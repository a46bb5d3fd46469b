import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';
import { freePort } from '../support/ports.js';
import { tempDir } from '../support/tmp.js';
import { ensureSelfSignedCertificate } from '../../lib/config/embedded.js';

/**
 * Two instances on one Postgres database and one Redis: a link made on one
 * works on the other, and of many concurrent downloads spread over both,
 * exactly one gets the bytes. Each instance keeps its bytes in its own CAS;
 * reading the other's goes through the peer proxy.
 */
describe('single-use links across two instances', function () {
  this.timeout(120_000);
  let db: TestDatabase | undefined;
  let certs: ReturnType<typeof tempDir> | undefined;
  let a: TestServer | undefined;
  let b: TestServer | undefined;

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    db = await createTestDatabase('callfs_links');
    certs = tempDir('callfs-links-tls-');
    const certFile = join(certs.dir, 'server.crt');
    const keyFile = join(certs.dir, 'server.key');
    await ensureSelfSignedCertificate(certFile, keyFile);
    const ports = { a: await freePort(), b: await freePort() };
    const endpoints = { 'links-a': `https://127.0.0.1:${ports.a}`, 'links-b': `https://127.0.0.1:${ports.b}` };
    const config = (id: 'a' | 'b') => ({
      server: { listen_addr: `127.0.0.1:${ports[id]}`, cert_file: certFile, key_file: keyFile },
      metadata_store: { dsn: db?.dsn, pool_size: 8 },
      dlm: { redis_addr: '127.0.0.1:6379' },
      auth: { internal_proxy_secret: 'proxy-secret-links-0123456789abcdef', single_use_link_secret: 'link-secret-links-0123456789abcdef' },
      backend: { internal_proxy_ca_file: certFile },
      instance_discovery: { instance_id: `links-${id}`, peer_endpoints: endpoints },
      links: { generate_rate_limit: 0, download_rate_limit: 0 },
    });
    a = await startTestServer(config('a'));
    b = await startTestServer(config('b'));
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    certs?.remove();
    await db?.drop();
  });

  const put = async (server: TestServer, path: string, body: Buffer): Promise<void> => {
    const res = await request(`${server.url}/v1/files${path}`, { method: 'PUT', token: KEYS.alice, body });
    expect(res.status, res.text).to.be.oneOf([200, 201]);
  };
  const linkTo = async (server: TestServer, path: string): Promise<string> => {
    const res = await request(`${server.url}/v1/links/generate`, { method: 'POST', token: KEYS.alice, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path, expiry_seconds: 600 }) });
    expect(res.status, res.text).to.equal(201);
    return res.json.token;
  };
  const download = (server: TestServer, token: string): Promise<TestResponse> => request(`${server.url}/download/${token}`);
  const servers = (): [TestServer, TestServer] => [a as TestServer, b as TestServer];

  it('downloads on B a link generated on A for bytes B holds, once; A then answers 410 LINK_USED', async () => {
    const [first, second] = servers();
    const bytes = randomBytes(64 * 1024);
    await put(second, '/cluster/on-b.bin', bytes);
    const token = await linkTo(first, '/cluster/on-b.bin');
    const res = await download(second, token);
    expect(res.status, res.text).to.equal(200);
    expect(res.body.equals(bytes)).to.equal(true);
    const again = await download(first, token);
    expect(`${again.status} ${again.json?.code}`).to.equal('410 LINK_USED');
  });

  it('downloads on B a link generated on A for bytes only A holds (through the peer proxy)', async () => {
    const [first, second] = servers();
    const bytes = randomBytes(64 * 1024);
    await put(first, '/cluster/on-a.bin', bytes);
    const token = await linkTo(first, '/cluster/on-a.bin');
    const res = await download(second, token);
    expect(res.status, res.text).to.equal(200);
    expect(res.body.equals(bytes)).to.equal(true);
    expect(`${(await download(second, token)).status}`).to.equal('410');
  });

  it('gives the bytes to exactly one of 100 concurrent downloads split across both instances', async () => {
    const [first, second] = servers();
    const bytes = randomBytes(256 * 1024);
    await put(first, '/cluster/race.bin', bytes);
    const token = await linkTo(first, '/cluster/race.bin');
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => download(i % 2 === 0 ? first : second, token)));
    const winners = results.filter((r) => r.status === 200);
    expect(winners, results.map((r) => `${r.status} ${r.json?.code ?? ''}`).join(', ')).to.have.length(1);
    expect(winners[0]?.body.equals(bytes)).to.equal(true);
    expect(results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.json?.code}`)).to.deep.equal(Array(99).fill('410 LINK_USED'));
  });
});
