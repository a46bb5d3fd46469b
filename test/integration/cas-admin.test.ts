import { expect } from 'chai';
import https from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import { openSync, readSync, writeSync, closeSync, chmodSync, statSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { request } from '../support/http.js';
import { KEYS, type TestServer } from '../support/callfs.js';
import { clusterStack } from '../support/stacks.js';
import { runCli, startCliServer } from '../support/cli.js';
import { loopMountsAvailable, requireComponent } from '../support/services.js';
import { MiB, eventually, forceCleanRoot, makeTempRoot } from '../support/cas.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** GET whole, reporting whether the transfer completed or broke. */
function fetchOutcome(url: string): Promise<{ status: number; bytes: number; complete: boolean }> {
  return new Promise((resolve) => {
    https.get(url, { rejectUnauthorized: false, headers: { authorization: `Bearer ${KEYS.alice}` } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, bytes, complete: false }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, bytes, complete: false }));
    }).on('error', () => resolve({ status: 0, bytes: 0, complete: false }));
  });
}

describe('CAS through the API: blobs by hash, images, integrity (loop images)', function () {
  this.timeout(120_000);
  let server: TestServer;
  before(async function () {
    await clusterStack.require(this);
    server = await clusterStack.start();
  });
  after(async () => {
    await server?.stop();
  });

  it('GET /v1/blobs/{sha256} serves a blob to root only; a malformed hash is 400, an unknown one 404', async () => {
    const body = randomBytes(10_000);
    await request(`${server.url}/v1/files/blob/src.bin`, { method: 'PUT', token: KEYS.alice, body });
    const hash = sha256(body);
    const got = await request(`${server.url}/v1/blobs/${hash}`, { token: KEYS.root });
    expect(got.status).to.equal(200);
    expect(got.body.equals(body)).to.equal(true);
    expect((await request(`${server.url}/v1/blobs/${hash}`, { token: KEYS.alice })).status).to.equal(403);
    for (const bad of ['abc', hash.toUpperCase(), `${hash}0`, 'g'.repeat(64)]) {
      const res = await request(`${server.url}/v1/blobs/${bad}`, { token: KEYS.root });
      expect(res.status, bad).to.equal(400);
      expect(res.json.code).to.equal('BAD_REQUEST');
    }
    expect((await request(`${server.url}/v1/blobs/${'0'.repeat(64)}`, { token: KEYS.root })).status).to.equal(404);
  });

  it('GET /v1/cas/images lists the loop images with their usage, to root only', async () => {
    const res = await request(`${server.url}/v1/cas/images`, { token: KEYS.root });
    expect(res.status).to.equal(200);
    expect(res.json.mode).to.equal('loop');
    const active = res.json.images.find((i: { state: string }) => i.state === 'active');
    expect(active).to.include.keys('id', 'size', 'used', 'free', 'inodes_total', 'inodes_free', 'blob_count');
    expect(active.blob_count).to.be.greaterThan(0);
    expect((await request(`${server.url}/v1/cas/images`, { token: KEYS.alice })).status).to.equal(403);
  });

  it('never serves corrupted bytes: the transfer breaks, the blob is quarantined and counted, good bytes heal it', async () => {
    const body = randomBytes(3 * 1024 * 1024);
    await request(`${server.url}/v1/files/blob/victim.bin`, { method: 'PUT', token: KEYS.alice, body });
    const hash = sha256(body);
    const volumes = join(server.dataDir, 'cas', 'volumes');
    const file = readdirSync(volumes).map((v) => join(volumes, v, 'blobs', hash.slice(0, 2), hash.slice(2, 4), hash)).find((f) => existsSync(f));
    expect(file, 'the blob file inside the mounted image').to.be.a('string');
    // Flip one byte in the middle, inside the mounted ext4 image.
    const path = file as string;
    const mode = statSync(path).mode;
    chmodSync(path, 0o600);
    const fd = openSync(path, 'r+');
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, 1_500_000);
    one[0] = (one[0] as number) ^ 0xff;
    writeSync(fd, one, 0, 1, 1_500_000);
    closeSync(fd);
    chmodSync(path, mode & 0o777);
    const before = await request(`${server.url}/metrics`, { token: KEYS.root });
    const count = (text: string): number => Number(/^callfs_cas_integrity_errors_total (\d+)/m.exec(text)?.[1] ?? '0');
    const broken = await fetchOutcome(`${server.url}/v1/files/blob/victim.bin`);
    expect(broken.complete && broken.bytes === body.length, 'a corrupted blob must not arrive whole').to.equal(false);
    const after = await request(`${server.url}/metrics`, { token: KEYS.root });
    expect(count(after.text)).to.equal(count(before.text) + 1);
    // The transfer broke first; the quarantine follows in the background.
    await eventually(() => readdirSync(volumes).some((v) => existsSync(join(volumes, v, 'quarantine', hash))), 10_000, 'the blob in quarantine');
    const again = await request(`${server.url}/v1/files/blob/victim.bin`, { token: KEYS.alice });
    expect(again.status).to.equal(500);
    expect(again.json.code).to.equal('INTEGRITY_ERROR');
    // Uploading the good bytes again heals it.
    await request(`${server.url}/v1/files/blob/victim-again.bin`, { method: 'PUT', token: KEYS.alice, body });
    const healed = await request(`${server.url}/v1/files/blob/victim.bin`, { token: KEYS.alice });
    expect(healed.status).to.equal(200);
    expect(sha256(healed.body)).to.equal(hash);
  });
});

describe('callfs cas without a server: the configured image size and watermarks (loop images)', function () {
  this.timeout(180_000);
  let dir = '';

  before(function () {
    requireComponent(this, loopMountsAvailable());
  });
  beforeEach(() => {
    dir = makeTempRoot('cas-offline');
  });
  afterEach(() => forceCleanRoot(dir));

  /** What an offline run must leave as it was: the manifest (ids, states, times) and each image file's size. */
  const snapshot = (): { manifest: unknown; files: Record<string, number> } => ({
    manifest: JSON.parse(readFileSync(join(dir, 'data', 'cas', 'manifest.json'), 'utf8')),
    files: Object.fromEntries(readdirSync(join(dir, 'data', 'cas', 'images')).map((f) => [f, statSync(join(dir, 'data', 'cas', 'images', f)).size])),
  });

  it('`cas images` and `cas gc` leave small images as the server made them: nothing sealed, no default-size image', async () => {
    writeFileSync(join(dir, 'config.yaml'), 'backend:\n  cas:\n    mode: loop\n    image_size: 32MiB\n    min_free_bytes: 4MiB\n    min_free_inodes: 256\n');
    const env = { CALLFS_SERVER_LISTEN_ADDR: '127.0.0.1:0', CALLFS_METRICS_LISTEN_ADDR: '' };
    const server = await startCliServer([], { cwd: dir, env });
    try {
      const key = /Bearer ([A-Za-z0-9_-]{20,})"/.exec(server.output())?.[1] ?? '';
      expect((await request(`${server.url}/v1/files/f.bin`, { method: 'PUT', token: key, body: randomBytes(MiB) })).status).to.equal(201);
      // The standby is made in the background after start: wait for it, so the images are what the server settles on.
      await eventually(() => {
        const { images } = snapshot().manifest as { images: { state: string }[] };
        return images.map((i) => i.state).join() === 'active,standby';
      }, 30_000, 'an active and a standby image');
    } finally {
      expect(await server.stop('SIGTERM')).to.equal(0);
    }
    const before = snapshot();
    expect(Object.values(before.files)).to.deep.equal([32 * MiB, 32 * MiB]);

    const images = await runCli(['cas', 'images'], { cwd: dir, env, timeoutMs: 120_000 });
    expect(images.code, images.stderr).to.equal(0);
    const listed = JSON.parse(images.stdout) as { mode: string; images: { state: string; sizeBytes: number }[] };
    expect(listed.mode).to.equal('loop');
    expect(listed.images.map((i) => i.state)).to.deep.equal(['active', 'standby']);
    for (const image of listed.images) expect(image.sizeBytes).to.be.at.most(32 * MiB);
    expect(snapshot()).to.deep.equal(before);

    const gc = await runCli(['cas', 'gc'], { cwd: dir, env, timeoutMs: 120_000 });
    expect(gc.code, gc.stderr).to.equal(0);
    expect(JSON.parse(gc.stdout)).to.have.property('collected', 0);
    expect(snapshot()).to.deep.equal(before);
  });
});
