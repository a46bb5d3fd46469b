import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import { createS3Backend, usesPathStyle, type S3Backend, type S3BackendOptions } from '../../../lib/backends/s3/index.js';
import { createSilentLogger } from '../../../lib/log/index.js';
import { S3RVER_CREDENTIALS, s3rverClient, startS3rver, type S3TestServer } from '../../support/s3.js';
import { readAll, rejectionOf, streamOf } from '../../contract/backend-contract.js';

const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const codeOf = (err: unknown): unknown => (err as { code?: unknown }).code;
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function backendFor(s3: S3TestServer, extra: Partial<S3BackendOptions> = {}): S3Backend {
  return createS3Backend({
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    ...S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    partSize: 5 * MiB,
    queueSize: 2,
    logger: createSilentLogger(),
    ...extra,
  });
}

/** A body that sends `first`, then stays open until destroyed. */
function stalling(first: Buffer): Readable {
  const body = new Readable({ read() {} });
  body.push(first);
  return body;
}

describe('S3 backend specifics (s3rver)', function () {
  let s3: S3TestServer;
  let backend: S3Backend;

  before(async function () {
    s3 = await startS3rver();
    backend = backendFor(s3, { prefix: '/tenant/a/' });
  });
  after(async function () {
    await backend?.close();
    await s3?.remove();
  });

  describe('key scheme', function () {
    it('names objects prefix + path, so the bucket mirrors the tree', async function () {
      const data = randomBytes(100);
      const result = await backend.put(streamOf(data), { key: '/docs/q 1/report (final).txt' });
      expect(result.id).to.equal('tenant/a/docs/q 1/report (final).txt');
      expect(await s3.keys('tenant/a/docs/')).to.deep.equal(['tenant/a/docs/q 1/report (final).txt']);
      expect((await s3.read(result.id))?.equals(data)).to.equal(true);
      expect(backend.pathOf(result.id)).to.equal('/docs/q 1/report (final).txt');
      expect(backend.keyOf('/docs/x')).to.equal('tenant/a/docs/x');
    });

    it('refuses the root, non-canonical paths and keys over 1024 bytes with INVALID_PATH, storing nothing', async function () {
      const before = await s3.keys();
      expect(codeOf(await rejectionOf(backend.put(streamOf(randomBytes(10)), { key: '/a/../b' })))).to.equal('INVALID_PATH');
      expect(codeOf(await rejectionOf(backend.put(streamOf(randomBytes(10)), { key: '/' })))).to.equal('INVALID_PATH');
      const long = '/' + Array.from({ length: 8 }, () => 'x'.repeat(200)).join('/');
      expect(codeOf(await rejectionOf(backend.put(streamOf(randomBytes(10)), { key: long })))).to.equal('INVALID_PATH');
      expect(await s3.keys()).to.deep.equal(before);
    });

    it('treats ids outside the prefix as unknown', async function () {
      const other = s3rverClient(s3.endpoint);
      try {
        await other.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'elsewhere/x', Body: 'secret' }));
      } finally {
        other.destroy();
      }
      expect(codeOf(await rejectionOf(backend.open('elsewhere/x')))).to.equal('FILE_NOT_FOUND');
      expect(await backend.stat('elsewhere/x')).to.equal(null);
      await backend.delete('elsewhere/x');
      expect(await s3.read('elsewhere/x')).to.not.equal(null);
    });
  });

  describe('replacing an object is atomic', function () {
    const key = '/atomic/file.bin';
    const old = randomBytes(300_000);

    beforeEach(async function () {
      await backend.put(streamOf(old), { key });
    });

    async function expectOld(): Promise<void> {
      const opened = await backend.open(backend.keyOf(key), { sha256: sha256(old) });
      expect(sha256(await readAll(opened.stream))).to.equal(sha256(old));
    }

    it('keeps the old object when a multipart replace is aborted after parts were uploaded', async function () {
      const controller = new AbortController();
      const partsBefore = s3.uploadedParts().length;
      const pending = backend.put(stalling(randomBytes(16 * MiB)), { key, signal: controller.signal });
      for (let waited = 0; s3.uploadedParts().length < partsBefore + 2 && waited < 10_000; waited += 50) await tick(50);
      expect(s3.uploadedParts().length).to.be.at.least(partsBefore + 2);
      const reason = new Error('client went away');
      controller.abort(reason);
      expect(await rejectionOf(pending)).to.equal(reason);
      await expectOld();
    });

    it('keeps the old object when the body fails midway', async function () {
      const body = stalling(randomBytes(12 * MiB));
      const pending = backend.put(body, { key });
      await tick(300);
      body.destroy(new Error('connection reset'));
      expect(await rejectionOf(pending)).to.be.instanceOf(Error);
      await expectOld();
    });

    it('keeps the old object when the body grows past maxBytes', async function () {
      const err = await rejectionOf(backend.put(streamOf(randomBytes(11 * MiB)), { key, maxBytes: 10 * MiB }));
      expect(codeOf(err)).to.equal('PAYLOAD_TOO_LARGE');
      await expectOld();
    });

    it('replaces it when the upload completes', async function () {
      const data = randomBytes(6 * MiB + 3);
      const result = await backend.put(streamOf(data, 100_003), { key });
      expect(result.sha256).to.equal(sha256(data));
      const opened = await backend.open(result.id, { sha256: sha256(data) });
      expect(sha256(await readAll(opened.stream))).to.equal(sha256(data));
    });
  });

  describe('integrity', function () {
    it('breaks a full read whose bytes no longer match with INTEGRITY_ERROR, and serves ranges unverified', async function () {
      const data = randomBytes(3 * MiB);
      const { id } = await backend.put(streamOf(data), { key: '/integrity/x' });
      const tampered = Buffer.from(data);
      tampered[123_456] = (tampered[123_456] ?? 0) ^ 0xff;
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: id, Body: tampered }));
      const opened = await backend.open(id, { sha256: sha256(data) });
      expect(codeOf(await rejectionOf(readAll(opened.stream)))).to.equal('INTEGRITY_ERROR');
      const ranged = await backend.open(id, { sha256: sha256(data), range: { start: 0, end: 99 } });
      expect((await readAll(ranged.stream)).equals(tampered.subarray(0, 100))).to.equal(true);
    });

    it('refuses to open a small object whose bytes or size no longer match: INTEGRITY_ERROR before the first byte', async function () {
      const data = randomBytes(200_000);
      const { id } = await backend.put(streamOf(data), { key: '/integrity/small' });
      const tampered = Buffer.from(data);
      tampered[123_456] = (tampered[123_456] ?? 0) ^ 0xff;
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: id, Body: tampered }));
      expect(codeOf(await rejectionOf(backend.open(id, { sha256: sha256(data) })))).to.equal('INTEGRITY_ERROR');
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: id, Body: data.subarray(1) }));
      expect(codeOf(await rejectionOf(backend.open(id, { sha256: sha256(data) })))).to.equal('INTEGRITY_ERROR');
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: id, Body: data }));
      expect(sha256(await readAll((await backend.open(id, { sha256: sha256(data) })).stream))).to.equal(sha256(data));
    });
  });

  describe('copy', function () {
    it('copies server-side; the source stays', async function () {
      const data = randomBytes(70_000);
      const { id } = await backend.put(streamOf(data), { key: '/copy/a' });
      const to = backend.keyOf('/copy/b');
      await backend.copy(id, to);
      expect((await s3.read(to))?.equals(data)).to.equal(true);
      expect((await s3.read(id))?.equals(data)).to.equal(true);
    });

    it('says FILE_NOT_FOUND for a missing source', async function () {
      expect(codeOf(await rejectionOf(backend.copy(backend.keyOf('/copy/missing'), backend.keyOf('/copy/c'))))).to.equal('FILE_NOT_FOUND');
      expect(await s3.read(backend.keyOf('/copy/c'))).to.equal(null);
    });
  });

  describe('encryption and ACL', function () {
    /** Record the headers of every request the backend's client sends. */
    function recordingClient(): { client: S3Client; seen: { command: string; headers: Record<string, string> }[] } {
      const client = s3rverClient(s3.endpoint);
      const seen: { command: string; headers: Record<string, string> }[] = [];
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const request = args.request as { headers?: Record<string, string> };
          seen.push({ command: String(context.commandName), headers: { ...(request.headers ?? {}) } });
          return next(args);
        },
        { step: 'finalizeRequest', name: 'recordHeaders' },
      );
      return { client, seen };
    }

    it('sends AES256 and the ACL on puts, multipart uploads and copies', async function () {
      const { client, seen } = recordingClient();
      const b = backendFor(s3, { client, serverSideEncryption: 'AES256', acl: 'bucket-owner-full-control' });
      try {
        await b.put(streamOf(randomBytes(1000)), { key: '/sse/small' });
        await b.put(streamOf(randomBytes(6 * MiB)), { key: '/sse/large' });
        await b.copy(b.keyOf('/sse/small'), b.keyOf('/sse/copy'));
      } finally {
        await b.close();
        client.destroy();
      }
      const creating = seen.filter((s) => ['PutObjectCommand', 'CreateMultipartUploadCommand', 'CopyObjectCommand'].includes(s.command));
      expect(creating.map((s) => s.command).sort()).to.deep.equal(['CopyObjectCommand', 'CreateMultipartUploadCommand', 'PutObjectCommand']);
      for (const s of creating) {
        expect(s.headers['x-amz-server-side-encryption'], s.command).to.equal('AES256');
        expect(s.headers['x-amz-acl'], s.command).to.equal('bucket-owner-full-control');
      }
    });

    it('sends aws:kms with the key id, and nothing with none', async function () {
      const kms = recordingClient();
      const none = recordingClient();
      const withKms = backendFor(s3, { client: kms.client, serverSideEncryption: 'aws:kms', kmsKeyId: 'alias/callfs', acl: 'none' });
      const without = backendFor(s3, { client: none.client, serverSideEncryption: 'none', acl: '' });
      try {
        await withKms.put(streamOf(randomBytes(10)), { key: '/sse/kms' });
        await without.put(streamOf(randomBytes(10)), { key: '/sse/none' });
      } finally {
        await withKms.close();
        await without.close();
        kms.client.destroy();
        none.client.destroy();
      }
      const kmsPut = kms.seen.find((s) => s.command === 'PutObjectCommand');
      expect(kmsPut?.headers['x-amz-server-side-encryption']).to.equal('aws:kms');
      expect(kmsPut?.headers['x-amz-server-side-encryption-aws-kms-key-id']).to.equal('alias/callfs');
      expect(kmsPut?.headers).to.not.have.property('x-amz-acl');
      const plainPut = none.seen.find((s) => s.command === 'PutObjectCommand');
      expect(plainPut?.headers).to.not.have.property('x-amz-server-side-encryption');
      expect(plainPut?.headers).to.not.have.property('x-amz-acl');
    });

    it('refuses an unknown ACL or a part size under 5 MiB', function () {
      expect(() => backendFor(s3, { acl: 'everyone' })).to.throw().with.property('code', 'BAD_REQUEST');
      expect(() => backendFor(s3, { partSize: 1024 })).to.throw().with.property('code', 'BAD_REQUEST');
    });
  });

  describe('addressing', function () {
    it('uses path style for custom endpoints that are not AWS, or when asked', function () {
      expect(usesPathStyle({ endpoint: 'http://minio.local:9000' })).to.equal(true);
      expect(usesPathStyle({ endpoint: 'https://s3.amazonaws.com' })).to.equal(false);
      expect(usesPathStyle({ endpoint: 'https://s3.eu-west-1.amazonaws.com', forcePathStyle: true })).to.equal(true);
      expect(usesPathStyle({ endpoint: '' })).to.equal(false);
    });
  });
});

describe('S3 backend when S3 cannot serve', function () {
  let s3: S3TestServer;
  before(async function () {
    s3 = await startS3rver();
  });
  after(async function () {
    await s3?.remove();
  });

  async function expectUnavailable(promise: Promise<unknown>): Promise<void> {
    const err = await rejectionOf(promise);
    expect(codeOf(err)).to.equal('SERVICE_UNAVAILABLE');
    expect((err as { retryAfterSeconds?: number }).retryAfterSeconds).to.be.a('number').above(0);
  }

  it('answers SERVICE_UNAVAILABLE with a retry hint for every operation while the server is down', async function () {
    const backend = backendFor(s3, { maxAttempts: 1 });
    const { id } = await backend.put(streamOf(randomBytes(100)), { key: '/down/a' });
    await s3.stop();
    try {
      const body = streamOf(randomBytes(1000));
      await expectUnavailable(backend.put(body, { key: '/down/b' }));
      expect(body.destroyed).to.equal(true);
      await expectUnavailable(backend.open(id));
      await expectUnavailable(backend.stat(id));
      await expectUnavailable(backend.delete(id));
      await expectUnavailable(backend.copy(id, backend.keyOf('/down/c')));
      await expectUnavailable(backend.check());
    } finally {
      await s3.start();
      await backend.close();
    }
    expect((await s3.read(id))?.length).to.equal(100);
    expect(await s3.read('down/b')).to.equal(null);
  });

  it('answers SERVICE_UNAVAILABLE for a missing bucket and for wrong credentials', async function () {
    const noBucket = backendFor(s3, { bucket: 'no-such-bucket' });
    const badKey = backendFor(s3, { accessKeyId: 'WRONG', secretAccessKey: 'WRONG' });
    try {
      await expectUnavailable(noBucket.check());
      await expectUnavailable(noBucket.put(streamOf(randomBytes(10)), { key: '/x' }));
      await expectUnavailable(badKey.check());
      await expectUnavailable(badKey.put(streamOf(randomBytes(10)), { key: '/x' }));
    } finally {
      await noBucket.close();
      await badKey.close();
    }
  });
});
