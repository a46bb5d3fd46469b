import { expect } from 'chai';
import https from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, type TestServer } from '../support/callfs.js';
import { clusterStack, embeddedStack } from '../support/stacks.js';
import { startWithS3, type S3TestServer } from '../support/s3.js';
import { eventually, flipStoredByte } from '../support/cas.js';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Flip one byte of a CAS blob's stored bytes (its file, or its record in a segment), inside whichever image holds it. */
function corruptBlob(server: TestServer, hash: string, offset: number): void {
  flipStoredByte(join(server.dataDir, 'cas'), hash, offset);
}

/** Whether the blob has been moved to the quarantine of its image. */
function quarantined(server: TestServer, hash: string): boolean {
  const volumes = join(server.dataDir, 'cas', 'volumes');
  return readdirSync(volumes).some((v) => existsSync(join(volumes, v, 'quarantine', hash)));
}

/** GET whole, reporting whether the transfer completed or broke (a broken one has no usable answer). */
function fetchOutcome(url: string): Promise<{ status: number; bytes: number; complete: boolean }> {
  return new Promise((resolve) => {
    https.get(url, { rejectUnauthorized: false, agent: false, headers: { authorization: `Bearer ${KEYS.alice}` } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, bytes, complete: false }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, bytes, complete: false }));
    }).on('error', () => resolve({ status: 0, bytes: 0, complete: false }));
  });
}

function expectIntegrityError(res: TestResponse, what: string): void {
  expect(res.status, what).to.equal(500);
  expect(res.json?.code, what).to.equal('INTEGRITY_ERROR');
}

for (const stack of [embeddedStack, clusterStack]) {
  describe(`integrity over HTTPS: corrupted CAS bytes are answered, never served — ${stack.name}`, function () {
    this.timeout(120_000);
    let server: TestServer;
    before(async function () {
      await stack.require(this);
      server = await stack.start();
    });
    after(async () => {
      await server?.stop();
    });

    const put = async (path: string, body: Buffer): Promise<void> => {
      expect((await request(`${server.url}/v1/files${path}`, { method: 'PUT', token: KEYS.alice, body })).status).to.be.oneOf([200, 201]);
    };

    it('a small corrupted file: 500 INTEGRITY_ERROR before any header, quarantined, healed by the good bytes', async () => {
      const body = randomBytes(10_000);
      await put('/integrity/small.bin', body);
      corruptBlob(server, sha256(body), 5_000);
      expectIntegrityError(await request(`${server.url}/v1/files/integrity/small.bin`, { token: KEYS.alice }), 'first GET');
      expect(quarantined(server, sha256(body)), 'quarantined before the answer').to.equal(true);
      expectIntegrityError(await request(`${server.url}/v1/files/integrity/small.bin`, { token: KEYS.alice }), 'second GET (quarantined)');
      await put('/integrity/small-again.bin', body);
      const healed = await request(`${server.url}/v1/files/integrity/small.bin`, { token: KEYS.alice });
      expect(healed.status).to.equal(200);
      expect(healed.body.equals(body)).to.equal(true);
    });

    it('a link to a small corrupted file: 500 INTEGRITY_ERROR, and the link is still unused', async () => {
      const body = randomBytes(20_000);
      await put('/integrity/linked.bin', body);
      const link = await request(`${server.url}/v1/links/generate`, {
        method: 'POST',
        token: KEYS.alice,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: '/integrity/linked.bin', expiry_seconds: 600 }),
      });
      expect(link.status).to.equal(201);
      const url = `${server.url}/download/${link.json.token as string}`;
      corruptBlob(server, sha256(body), 0);
      expectIntegrityError(await request(url), 'download of corrupted bytes');
      await put('/integrity/linked-again.bin', body);
      const download = await request(url);
      expect(download.status, 'the link was not burned by the failed download').to.equal(200);
      expect(download.body.equals(body)).to.equal(true);
      expect((await request(url)).json.code).to.equal('LINK_USED');
    });

    it('a large corrupted file still breaks the transfer after the headers', async () => {
      const body = randomBytes(3 * MiB);
      await put('/integrity/large.bin', body);
      corruptBlob(server, sha256(body), 2 * MiB + 7);
      const broken = await fetchOutcome(`${server.url}/v1/files/integrity/large.bin`);
      expect(broken.status, 'the headers went out before the mismatch').to.equal(200);
      expect(broken.complete && broken.bytes === body.length, 'a corrupted blob must not arrive whole').to.equal(false);
      // The transfer broke first; the quarantine follows in the background.
      await eventually(() => quarantined(server, sha256(body)), 10_000, 'the blob in quarantine');
      expectIntegrityError(await request(`${server.url}/v1/files/integrity/large.bin`, { token: KEYS.alice }), 'GET after quarantine');
    });
  });
}

describe('integrity over HTTPS: a corrupted S3 object (s3rver)', function () {
  this.timeout(120_000);
  let s3: S3TestServer;
  let server: TestServer;
  let stopBoth: (() => Promise<void>) | undefined;
  before(async function () {
    ({ s3, server, stop: stopBoth } = await startWithS3((s) => embeddedStack.start({ backend: { default_backend: 's3', ...s.config({ s3_prefix: 'data' }) } })));
  });
  after(async () => {
    await stopBoth?.();
  });

  /** Store `body` at `path`, then replace its object behind CallFS's back with one byte flipped at `offset`. */
  const storeTampered = async (path: string, body: Buffer, offset: number): Promise<void> => {
    expect((await request(`${server.url}/v1/files${path}`, { method: 'PUT', token: KEYS.alice, body })).status).to.equal(201);
    const tampered = Buffer.from(body);
    tampered[offset] = (tampered[offset] as number) ^ 0xff;
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `data${path}`, Body: tampered }));
  };

  it('a small one: 500 INTEGRITY_ERROR before any header', async () => {
    await storeTampered('/tampered/small.bin', randomBytes(30_000), 29_999);
    expectIntegrityError(await request(`${server.url}/v1/files/tampered/small.bin`, { token: KEYS.alice }), 'GET');
  });

  it('a large one still breaks the transfer after the headers', async () => {
    await storeTampered('/tampered/large.bin', randomBytes(3 * MiB), 100);
    const broken = await fetchOutcome(`${server.url}/v1/files/tampered/large.bin`);
    expect(broken.status).to.equal(200);
    expect(broken.complete && broken.bytes === 3 * MiB, 'a corrupted object must not arrive whole').to.equal(false);
  });
});
