import { expect } from 'chai';
import https from 'node:https';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { request } from '../support/http.js';
import { KEYS } from '../support/callfs.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';
import { PROXY_SECRET, startCluster, type TestCluster, type ClusterInstance } from '../support/cluster.js';
import { startS3rver, type S3TestServer } from '../support/s3.js';
import { flipStoredByte } from '../support/cas.js';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const MIB = 1024 * 1024;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** Sample a process's RSS while `work` runs; resolves with the peak growth over the starting value. */
async function rssGrowth(pid: number, work: () => Promise<void>): Promise<number> {
  const start = rssOf(pid);
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 50);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, rssOf(pid)) - start;
}

describe('peer cluster: three instances, one Postgres, one Redis, a CAS each', function () {
  this.timeout(600_000);
  let cluster: TestCluster;
  let s3: S3TestServer;
  let a: ClusterInstance;
  let b: ClusterInstance;
  let c: ClusterInstance;
  const on = (instance: ClusterInstance, method: string, path: string, options: Parameters<typeof request>[1] = {}) =>
    request(`${instance.url}${path}`, { method, token: KEYS.alice, ca: cluster.ca, ...options });

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    s3 = await startS3rver();
    cluster = await startCluster(['node-a', 'node-b', 'node-c'], { backend: s3.config() });
    [a, b, c] = cluster.instances as [ClusterInstance, ClusterInstance, ClusterInstance];
  });
  after(async () => {
    await cluster?.stop();
    await s3?.remove();
  });

  it('a file written on A is read byte-exact through B and C, whole and by range', async () => {
    const body = randomBytes(3 * MIB + 17);
    expect((await on(a, 'PUT', '/v1/files/shared/a.bin', { body })).status).to.equal(201);
    for (const via of [b, c]) {
      const got = await on(via, 'GET', '/v1/files/shared/a.bin');
      expect(got.status, via.id).to.equal(200);
      expect(got.body.equals(body), via.id).to.equal(true);
      expect(got.headers.etag).to.equal(`"${sha256(body)}"`);
      const part = await on(via, 'GET', '/v1/files/shared/a.bin', { headers: { range: 'bytes=1000-1999' } });
      expect(part.status).to.equal(206);
      expect(part.body.equals(body.subarray(1000, 2000))).to.equal(true);
      const head = await on(via, 'HEAD', '/v1/files/shared/a.bin');
      expect(head.headers['x-callfs-instance-id']).to.equal('node-a');
    }
  });

  it('a PUT through C replaces A’s file, and all three serve the new bytes at once', async () => {
    await on(a, 'PUT', '/v1/files/shared/replace.txt', { body: 'version 1' });
    for (const via of [a, b, c]) expect((await on(via, 'GET', '/v1/files/shared/replace.txt')).text).to.equal('version 1');
    const put = await on(c, 'PUT', '/v1/files/shared/replace.txt', { body: 'version 2' });
    expect(put.status).to.equal(200);
    expect(put.headers['x-callfs-proxied-to']).to.equal('node-a');
    for (const via of [a, b, c]) {
      const got = await on(via, 'GET', '/v1/files/shared/replace.txt');
      expect(got.text, via.id).to.equal('version 2');
      expect(got.headers['x-callfs-instance-id']).to.equal('node-a');
    }
  });

  it('POST onto a path held by another instance is 409 CROSS_SERVER_CONFLICT with the details', async () => {
    await on(a, 'PUT', '/v1/files/shared/owned-by-a.txt', { body: 'a' });
    const res = await on(b, 'POST', '/v1/files/shared/owned-by-a.txt', { body: 'b' });
    expect(res.status).to.equal(409);
    expect(res.json.code).to.equal('CROSS_SERVER_CONFLICT');
    expect(res.json).to.include({ existing_path: '/shared/owned-by-a.txt', instance_id: 'node-a', backend_type: 'cas' });
    expect(res.json.suggestion).to.be.a('string');
    expect(res.json.update_url).to.equal(`${b.url}/v1/files/shared/owned-by-a.txt`);
    expect((await on(a, 'POST', '/v1/files/shared/owned-by-a.txt', { body: 'x' })).json.code).to.equal('FILE_ALREADY_EXISTS');
    const dir = await on(b, 'POST', '/v1/files/shared/owned-by-a.txt/');
    expect(dir.json.code, 'mkdir onto it').to.equal('CROSS_SERVER_CONFLICT');
  });

  it('says which instance holds a path only to a caller who passed every permission check', async () => {
    expect((await on(a, 'POST', '/v1/files/vault/', { headers: { 'x-callfs-mode': '0700' } })).status).to.equal(201);
    expect((await on(a, 'PUT', '/v1/files/vault/held.txt', { body: 'a' })).status).to.equal(201);
    expect((await on(a, 'POST', '/v1/files/readonly-dir/', { headers: { 'x-callfs-mode': '0755' } })).status).to.equal(201);
    expect((await on(a, 'PUT', '/v1/files/readonly-dir/held.txt', { body: 'a', headers: { 'x-callfs-mode': '0666' } })).status).to.equal(201);
    for (const [path, why] of [['/vault/held.txt', 'no search on its directory'], ['/readonly-dir/held.txt', 'no write on its directory']] as const) {
      const res = await on(b, 'POST', `/v1/files${path}`, { token: KEYS.bob, body: 'b' });
      expect(res.status, why).to.equal(403);
      expect(res.json.code, why).to.equal('PERMISSION_DENIED');
      expect(res.text, why).to.not.match(/node-a|instance/);
      expect(res.headers['x-callfs-proxied-to'], why).to.equal(undefined);
    }
    // Not even a forwarded PUT says where the bytes are, when the caller cannot reach the path.
    const put = await on(c, 'PUT', '/v1/files/vault/held.txt', { token: KEYS.bob, body: 'b' });
    expect(put.status).to.equal(403);
    expect(put.headers['x-callfs-proxied-to']).to.equal(undefined);
    const behind = await on(c, 'PUT', '/v1/files/vault/held.txt/x', { token: KEYS.bob, body: 'b' });
    expect(behind.status).to.equal(403);
    expect(behind.json.code).to.equal('PERMISSION_DENIED');
  });

  it('a corrupted small file held by A answers 500 INTEGRITY_ERROR through B, not 502', async () => {
    const body = Buffer.from('bytes that will rot on A');
    expect((await on(a, 'PUT', '/v1/files/shared/rot.txt', { body })).status).to.equal(201);
    const hash = sha256(body);
    // Packed (a small blob) or a file of its own: its stored bytes on A.
    flipStoredByte(join(dirname(a.configFile), 'data', 'cas'), hash, 3);
    const res = await on(b, 'GET', '/v1/files/shared/rot.txt');
    expect(res.status, res.text).to.equal(500);
    expect(res.json.code).to.equal('INTEGRITY_ERROR');
  });

  it('refuses through the proxy what the user may not do', async () => {
    await on(a, 'PUT', '/v1/files/shared/private.txt', { body: 'alice only', headers: { 'x-callfs-mode': '0600' } });
    const read = await on(b, 'GET', '/v1/files/shared/private.txt', { token: KEYS.bob });
    expect(read.status).to.equal(403);
    expect(read.json.code).to.equal('PERMISSION_DENIED');
    await on(a, 'PUT', '/v1/files/shared/readonly.txt', { body: 'keep', headers: { 'x-callfs-mode': '0644' } });
    const write = await on(c, 'PUT', '/v1/files/shared/readonly.txt', { token: KEYS.bob, body: 'vandal' });
    expect(write.status).to.equal(403);
    expect((await on(a, 'GET', '/v1/files/shared/readonly.txt')).text).to.equal('keep');
  });

  it('ignores X-CallFS-On-Behalf-Of from anyone without the internal secret', async () => {
    const res = await on(b, 'GET', '/v1/files/shared/private.txt', { token: KEYS.bob, headers: { 'x-callfs-on-behalf-of': 'alice' } });
    expect(res.status).to.equal(403);
    const forged = await request(`${a.url}/v1/files/shared/private.txt`, { ca: cluster.ca, headers: { authorization: 'Bearer not-the-secret-0123456789', 'x-callfs-on-behalf-of': 'alice' } });
    expect(forged.status).to.equal(401);
  });

  it('the internal secret opens only the internal blob routes, and no user key opens them', async () => {
    const secret = { authorization: `Bearer ${PROXY_SECRET}` };
    // Not an admin login, and no one acts for a user through it: /v1 refuses it even with a user named.
    const asAlice = await request(`${a.url}/v1/files/shared/private.txt`, { ca: cluster.ca, headers: { ...secret, 'x-callfs-on-behalf-of': 'alice' } });
    expect(asAlice.status).to.equal(401);
    expect((await request(`${a.url}/v1/directories/`, { ca: cluster.ca, headers: secret })).status).to.equal(401);
    const body = Buffer.from('a blob by its hash');
    expect((await on(a, 'PUT', '/v1/files/shared/by-hash.txt', { body })).status).to.equal(201);
    const blob = await request(`${a.url}/internal/v1/blobs/${sha256(body)}`, { ca: cluster.ca, headers: secret });
    expect(blob.status).to.equal(200);
    expect(blob.body.equals(body)).to.equal(true);
    for (const token of [KEYS.alice, KEYS.root]) {
      const refused = await request(`${a.url}/internal/v1/blobs/${sha256(body)}`, { ca: cluster.ca, token });
      expect(refused.status, 'a user key').to.equal(401);
    }
    expect((await request(`${a.url}/internal/v1/blobs`, { method: 'PUT', ca: cluster.ca, token: KEYS.root, body: 'x' })).status).to.equal(401);
  });

  it('moves the bytes of a file held by A to S3 from B, and back into C\u2019s CAS: placement reads them wherever they are', async () => {
    const body = randomBytes(200_000);
    expect((await on(a, 'PUT', '/v1/files/shared/wander.bin', { body })).status).to.equal(201);
    const toS3 = await on(b, 'PATCH', '/v1/files/shared/wander.bin', { body: JSON.stringify({ backend: 's3' }) });
    expect(toS3.status, toS3.text).to.equal(200);
    expect((await on(c, 'HEAD', '/v1/files/shared/wander.bin')).headers['x-callfs-instance-id']).to.equal(undefined);
    const toC = await on(b, 'PATCH', '/v1/files/shared/wander.bin', { body: JSON.stringify({ instance: 'node-c' }) });
    expect(toC.status, toC.text).to.equal(200);
    expect((await on(a, 'HEAD', '/v1/files/shared/wander.bin')).headers['x-callfs-instance-id']).to.equal('node-c');
    for (const via of [a, b, c]) expect((await on(via, 'GET', '/v1/files/shared/wander.bin')).body.equals(body), via.id).to.equal(true);
  });

  it('streams a 256 MiB proxied upload and download with bounded memory on the proxying instance', async () => {
    await on(a, 'PUT', '/v1/files/big/stream.bin', { body: 'seed on A' });
    const pid = c.server?.child.pid as number;
    const size = 256 * MIB;
    const sent = createHash('sha256');
    let produced = 0;
    const body = new Readable({
      read() {
        if (produced >= size) return void this.push(null);
        const chunk = randomFillSync(Buffer.allocUnsafe(MIB));
        produced += chunk.length;
        sent.update(chunk);
        this.push(chunk);
      },
    });
    let status = 0;
    const upGrowth = await rssGrowth(pid, async () => {
      status = (await on(c, 'PUT', '/v1/files/big/stream.bin', { body, headers: { 'content-length': String(size) } })).status;
    });
    expect(status).to.equal(200);
    const expected = sent.digest('hex');
    let got = { size: 0, hash: '' };
    const downGrowth = await rssGrowth(pid, () => new Promise<void>((resolve, reject) => {
      https.get(`${c.url}/v1/files/big/stream.bin`, { ca: cluster.ca, headers: { authorization: `Bearer ${KEYS.alice}` } }, (res) => {
        const hash = createHash('sha256');
        let n = 0;
        res.on('data', (chunk: Buffer) => {
          n += chunk.length;
          hash.update(chunk);
        });
        res.on('end', () => {
          got = { size: n, hash: hash.digest('hex') };
          resolve();
        });
        res.on('error', reject);
      }).on('error', reject);
    }));
    expect(got.size).to.equal(size);
    expect(got.hash).to.equal(expected);
    expect((await on(a, 'HEAD', '/v1/files/big/stream.bin')).headers['x-callfs-instance-id']).to.equal('node-a');
    console.log(`      proxying instance RSS growth: upload ${(upGrowth / MIB).toFixed(1)} MiB, download ${(downGrowth / MIB).toFixed(1)} MiB`);
    expect(upGrowth).to.be.below(64 * MIB);
    expect(downGrowth).to.be.below(64 * MIB);
  });

  it('moves a file from A’s CAS to B’s with PATCH {"destination", "instance"}, from any instance', async () => {
    const body = randomBytes(2 * MIB + 3);
    await on(a, 'PUT', '/v1/files/moving/src.bin', { body });
    const res = await on(c, 'PATCH', '/v1/files/moving/src.bin', { body: JSON.stringify({ destination: '/moving/on-b.bin', instance: 'node-b' }) });
    expect(res.status, res.text).to.equal(200);
    expect(res.json).to.deep.equal({ path: '/moving/on-b.bin' });
    for (const via of [a, b, c]) {
      const got = await on(via, 'GET', '/v1/files/moving/on-b.bin');
      expect(got.status, via.id).to.equal(200);
      expect(got.body.equals(body), via.id).to.equal(true);
      expect(got.headers['x-callfs-instance-id']).to.equal('node-b');
    }
    expect((await on(b, 'GET', '/v1/files/moving/src.bin')).status).to.equal(404);
    const unknown = await on(a, 'PATCH', '/v1/files/moving/on-b.bin', { body: JSON.stringify({ instance: 'node-z' }) });
    expect(unknown.status).to.equal(400);
    expect((await on(b, 'PATCH', '/v1/files/moving/on-b.bin', { token: KEYS.bob, body: JSON.stringify({ instance: 'node-a' }) })).status).to.equal(403);
  });

  it('counts proxied operations by peer and outcome', async () => {
    const metrics = await on(b, 'GET', '/metrics');
    expect(metrics.text).to.match(/^callfs_proxy_operations_total\{peer="node-a",operation="read",outcome="ok"\} [1-9]/m);
  });

  it('with A stopped, B answers 502 for A’s files quickly and keeps serving its own; /ready shows the peer down', async () => {
    await on(b, 'PUT', '/v1/files/shared/on-b.txt', { body: 'from b' });
    await on(a, 'PUT', '/v1/files/shared/on-s3.txt', { body: 'from a, on s3' });
    expect((await on(a, 'PATCH', '/v1/files/shared/on-s3.txt', { body: JSON.stringify({ backend: 's3' }) })).status).to.equal(200);
    await a.stop();
    try {
      const started = Date.now();
      const res = await on(b, 'GET', '/v1/files/shared/a.bin');
      expect(res.status).to.equal(502);
      expect(res.json.code).to.equal('BAD_GATEWAY');
      expect(Date.now() - started).to.be.below(5000);
      expect((await on(b, 'GET', '/v1/files/shared/on-b.txt')).text).to.equal('from b');
      expect((await on(c, 'GET', '/v1/files/moving/on-b.bin')).status, 'a file moved to B no longer needs A').to.equal(200);
      expect((await on(b, 'GET', '/v1/files/shared/on-s3.txt')).text, 'S3 files need no instance').to.equal('from a, on s3');
      expect((await on(b, 'HEAD', '/v1/files/shared/a.bin')).status).to.equal(200);
      const ready = await on(b, 'GET', '/ready');
      expect(ready.json.checks.peers['node-a']).to.equal('unavailable');
      expect(res.text, 'a 502 names no peer address').to.not.match(/127\.0\.0\.1|ECONN/);
      expect(ready.json.checks.peers['node-c']).to.equal('ok');
    } finally {
      await a.start();
    }
    const back = await on(b, 'GET', '/v1/files/shared/a.bin');
    expect(back.status, back.text).to.equal(200);
  });
});
