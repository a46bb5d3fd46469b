import { expect } from 'chai';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { DefaultHttpStack, Upload, type HttpRequest, type HttpResponse } from 'tus-js-client';
import { request } from '../support/http.js';
import { KEYS, TEST_USERS, startTestServer, type TestServer } from '../support/callfs.js';
import { startCliServer, type CliServer } from '../support/cli.js';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { tempDir } from '../support/tmp.js';
import { MiB, fetchSha256, openPatch, patternBytes, sha256, tusClient, waitFor, UPLOAD_PATH, digest, expectError, expectHead404 } from '../support/tus.js';

/**
 * Issue 24: resumable uploads (tus 1.0) whose progress survives cut
 * connections (tus-js-client through a cutting proxy), kill -9 and a change
 * of instance. The protocol itself: uploads.test.ts.
 */



describe('resumable uploads (tus 1.0): tus-js-client through a connection cut three times', function () {
  this.timeout(600_000);
  const SIZE = 256 * MiB;
  const CUTS = [60 * MiB, 120 * MiB, 180 * MiB];
  let server: TestServer;
  let proxy: TcpProxy;

  before(async () => {
    server = await startTestServer();
    proxy = await startTcpProxy({ host: '127.0.0.1', port: server.port }, { cutUpAt: CUTS });
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  it('uploads 256 MiB, resuming each time from the offset the server kept, byte-exact', async () => {
    const body = patternBytes(SIZE, 'tus-js-client');
    const expected = sha256(body);
    // Every PATCH the client sends: its offset, and its answer (none when the cut came first).
    const patches: { offset: number; status: number | null }[] = [];
    const sent = new Map<HttpRequest, { offset: number; status: number | null }>();
    const headOffsets: number[] = [];
    const uploadUrl = await new Promise<string>((resolve, reject) => {
      const upload = new Upload(body, {
        endpoint: `https://127.0.0.1:${proxy.port}/v1/uploads`,
        headers: { Authorization: `Bearer ${KEYS.alice}` },
        metadata: { path: '/big/tus-256m.bin' },
        retryDelays: [0, 200, 500, 1000, 2000, 3000, 5000, 5000],
        // The server's self-signed certificate: the Node HTTP stack passes these options to https.request.
        httpStack: new DefaultHttpStack({ ca: server.ca }),
        onBeforeRequest: (req: HttpRequest) => {
          if (req.getMethod() !== 'PATCH') return;
          const entry = { offset: Number(req.getHeader('Upload-Offset')), status: null };
          patches.push(entry);
          sent.set(req, entry);
        },
        onAfterResponse: (req: HttpRequest, res: HttpResponse) => {
          const entry = sent.get(req);
          if (entry !== undefined) entry.status = res.getStatus();
          if (req.getMethod() === 'HEAD' && res.getStatus() === 200) headOffsets.push(Number(res.getHeader('Upload-Offset')));
        },
        onError: reject,
        onSuccess: () => resolve(upload.url as string),
      });
      upload.start();
    });
    const shown = patches.map((p) => `${(p.offset / MiB).toFixed(2)} MiB → ${p.status ?? 'cut'}`).join(', ');
    process.stdout.write(`      (PATCHes: ${shown}; ${(proxy.bytesUp / MiB).toFixed(1)} MiB relayed)\n`);

    expect(proxy.cuts, 'the proxy cut the connection three times').to.equal(3);
    expect(new URL(uploadUrl).pathname).to.match(UPLOAD_PATH);
    // 409: the client resumed from an offset the server had moved past (see tus-findings.md).
    expect(patches.every((p) => p.status === null || p.status === 204 || p.status === 409), shown).to.equal(true);
    const accepted = patches.filter((p) => p.status !== 409);
    expect(accepted.map((p) => p.status), shown).to.deep.equal([null, null, null, 204]);
    const offsets = accepted.map((p) => p.offset);
    expect(offsets[0], shown).to.equal(0);
    for (let i = 1; i < offsets.length; i++) expect(offsets[i], `each resumption starts past the one before: ${shown}`).to.be.above(offsets[i - 1] as number);
    expect(offsets[3], `the last resumption is past the second cut: ${shown}`).to.be.at.least(128 * MiB);
    // The first PATCH recorded checkpoints just past 16, 32 and 48 MiB before the cut at 60 MiB relayed:
    // resuming past 49 MiB means the bytes after the last checkpoint, up to the cut, were kept too.
    expect(offsets[1], `the bytes before the first cut count, not only the checkpoints: ${shown}`).to.be.above(49 * MiB);
    expect(headOffsets.length, `HEAD offsets ${headOffsets}`).to.be.at.least(3);
    for (const offset of headOffsets) expect(offset).to.be.above(0);
    expect(proxy.bytesUp, 'the client never started over').to.be.below(SIZE + 64 * MiB);

    const got = await fetchSha256(`${server.url}/v1/files/big/tus-256m.bin`, KEYS.alice);
    expect(got.status).to.equal(200);
    expect(got.size).to.equal(SIZE);
    expect(got.sha256).to.equal(expected);
    expect(got.etag).to.equal(`"${expected}"`);
    expectHead404(await tusClient(server.url, KEYS.alice).head(new URL(uploadUrl).pathname));
  });
});

/** The config of one `callfs server` process for the kill -9 test; `postgres` adds its database and Redis. */
function killConfig(dir: string, postgres: TestDatabase | null): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify({
    server: { listen_addr: '127.0.0.1:0', data_dir: join(dir, 'data') },
    metrics: { listen_addr: '' },
    auth: { users: TEST_USERS, ...(postgres === null ? {} : { internal_proxy_secret: 'proxy-secret-0123456789abcdef', single_use_link_secret: 'link-secret-0123456789abcdef' }) },
    backend: { cas: { mode: 'dir', gc_interval: '0', scrub_interval: '0' } },
    ...(postgres === null ? {} : { metadata_store: { dsn: postgres.dsn }, dlm: { redis_addr: '127.0.0.1:6379' } }),
    log: { level: 'info' },
  }));
  return file;
}

for (const store of ['embedded', 'postgres'] as const) {
  describe(`resumable uploads (tus 1.0): kill -9 in the middle of a PATCH (${store} metadata)`, function () {
    this.timeout(300_000);
    const SIZE = 64 * MiB;
    const SENT = 40 * MiB;
    let tmp: ReturnType<typeof tempDir>;
    let db: TestDatabase | null = null;
    let server: CliServer | null = null;
    let configFile: string;

    before(async function () {
      if (store === 'postgres') {
        requireComponent(this, await ensurePostgres());
        requireComponent(this, await ensureRedis());
        db = await createTestDatabase('callfs_tus_kill');
      }
      tmp = tempDir('callfs-tus-kill-');
      configFile = killConfig(tmp.dir, db);
    });
    after(async () => {
      await server?.stop('SIGKILL');
      await db?.drop();
      tmp?.remove();
    });

    it('keeps the offset it recorded and the bytes up to it; the upload finishes from there byte-exact', async () => {
      const body = patternBytes(SIZE, `kill-${store}`);
      server = await startCliServer(['-c', configFile], { cwd: tmp.dir });
      let tus = tusClient(server.url, KEYS.alice);
      const { location } = await tus.create('/crash/big.bin', SIZE);

      // 40 MiB of a 64 MiB PATCH, and the request left open.
      const open = openPatch(`${server.url}${location}`, KEYS.alice, 0, SIZE);
      await open.send(body.subarray(0, SENT));
      // The server checkpoints every 16 MiB: wait until it recorded two, while the PATCH is still open.
      const seen = await waitFor('two checkpoints of the open PATCH', 60_000, async () => {
        const offset = Number((await tus.head(location)).headers['upload-offset']);
        return offset >= 32 * MiB ? offset : undefined;
      });
      server.child.kill('SIGKILL');
      await server.stop();
      expect(await open.settled, 'the open PATCH never got an answer').to.be.a('string');

      server = await startCliServer(['-c', configFile], { cwd: tmp.dir });
      tus = tusClient(server.url, KEYS.alice);
      const head = await tus.head(location);
      expect(head.status, head.text).to.equal(200);
      const offset = Number(head.headers['upload-offset']);
      process.stdout.write(`      (offset recorded before the kill ${(seen / MiB).toFixed(2)} MiB, after the restart ${(offset / MiB).toFixed(2)} MiB)\n`);
      expect(offset, 'what was recorded before the kill').to.be.at.least(seen).and.at.most(SENT);
      expect((await request(`${server.url}/v1/files/crash/big.bin`, { method: 'HEAD', token: KEYS.alice })).status).to.equal(404);

      // The rest in two PATCHes (a lock the killed process held may make the first wait, or answer 423).
      const middle = offset + Math.floor((SIZE - offset) / 2);
      for (const [from, to] of [[offset, middle], [middle, SIZE]] as const) {
        const res = await waitFor(`PATCH at ${from}`, 60_000, async () => {
          const r = await tus.patch(location, from, body.subarray(from, to));
          return r.status === 423 ? undefined : r;
        }, 500);
        expect(res.status, res.text).to.equal(204);
        expect(res.headers['upload-offset']).to.equal(String(to));
      }
      const got = await fetchSha256(`${server.url}/v1/files/crash/big.bin`, KEYS.alice);
      expect(got.status).to.equal(200);
      expect(got.size).to.equal(SIZE);
      expect(got.sha256).to.equal(sha256(body));
      expect(got.etag).to.equal(`"${sha256(body)}"`);
    });
  });
}

describe('resumable uploads (tus 1.0): a cluster of two', function () {
  this.timeout(300_000);
  let cluster: TestCluster;

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    cluster = await startCluster(['tus-a', 'tus-b']);
  });
  after(async () => {
    await cluster?.stop();
  });

  const partFile = (instance: { configFile: string }, id: string): string => join(dirname(instance.configFile), 'data', 'uploads', `${id}.part`);

  it('an upload created on A goes on through B (which sends the bytes to A), and the file reads the same through either', async () => {
    const [a, b] = cluster.instances as [TestCluster['instances'][0], TestCluster['instances'][0]];
    const viaA = tusClient(a.url, KEYS.alice);
    const viaB = tusClient(b.url, KEYS.alice);
    const body = patternBytes(8 * MiB + 3, 'cluster');
    const { location, id } = await viaA.create('/cluster/shared.bin', body.length);
    const first = await viaA.patch(location, 0, body.subarray(0, 3 * MiB));
    expect(first.status, first.text).to.equal(204);
    expect(existsSync(partFile(a, id)), 'A holds the bytes').to.equal(true);
    expect(existsSync(partFile(b, id))).to.equal(false);

    const head = await viaB.head(location);
    expect(head.status, head.text).to.equal(200);
    expect(head.headers['upload-offset']).to.equal(String(3 * MiB));
    expect(head.headers['upload-length']).to.equal(String(body.length));
    expectHead404(await viaB.head(location, KEYS.bob));
    expectError(await viaB.patch(location, 0, body.subarray(0, 10)), 409, 'UPLOAD_OFFSET_MISMATCH');

    const rest = await viaB.patch(location, 3 * MiB, body.subarray(3 * MiB), { headers: { 'upload-checksum': `sha256 ${digest('sha256', body.subarray(3 * MiB))}` } });
    expect(rest.status, rest.text).to.equal(204);
    expect(rest.headers['upload-offset']).to.equal(String(body.length));
    expect(existsSync(partFile(b, id)), 'B kept nothing').to.equal(false);
    for (const instance of [a, b]) {
      const got = await fetchSha256(`${instance.url}/v1/files/cluster/shared.bin`, KEYS.alice);
      expect(got.status, instance.id).to.equal(200);
      expect(got.sha256, instance.id).to.equal(sha256(body));
      expect(got.etag, instance.id).to.equal(`"${sha256(body)}"`);
    }
    expectHead404(await viaB.head(location));
    expectHead404(await viaA.head(location));
  });

  it('with the holder stopped, a PATCH through the other instance is 502 or 503; once it is back the upload finishes', async () => {
    const [a, b] = cluster.instances as [TestCluster['instances'][0], TestCluster['instances'][0]];
    const viaB = tusClient(b.url, KEYS.alice);
    const body = patternBytes(2 * MiB, 'holder-down');
    const { location } = await tusClient(a.url, KEYS.alice).create('/cluster/holder-down.bin', body.length);
    expect((await tusClient(a.url, KEYS.alice).patch(location, 0, body.subarray(0, MiB))).status).to.equal(204);
    await a.stop();
    try {
      const res = await viaB.patch(location, MiB, body.subarray(MiB));
      expect(res.status, res.text).to.be.oneOf([502, 503]);
      expect(res.json?.code, res.text).to.be.oneOf(['BAD_GATEWAY', 'SERVICE_UNAVAILABLE']);
      expect((await request(`${b.url}/v1/files/cluster/holder-down.bin`, { method: 'HEAD', token: KEYS.alice })).status).to.equal(404);
    } finally {
      await a.start();
    }
    const head = await viaB.head(location);
    expect(head.status, head.text).to.equal(200);
    expect(head.headers['upload-offset']).to.equal(String(MiB));
    const rest = await viaB.patch(location, MiB, body.subarray(MiB));
    expect(rest.status, rest.text).to.equal(204);
    const got = await fetchSha256(`${b.url}/v1/files/cluster/holder-down.bin`, KEYS.alice);
    expect(got.sha256).to.equal(sha256(body));
  });
});
