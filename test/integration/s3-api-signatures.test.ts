import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetBucketLocationCommand,
  PutBucketTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { expectS3Error, presignV4, s3ApiClient, s3Endpoint, s3PortOf, signV4, singlePartEtag, streamingPut, type SignedRequest, getObjectBytes as get, putObject as put } from '../support/s3-api.js';

/**
 * The S3 listener (issue 25) with requests signed by hand (aws-chunked chunk signatures,
 * UNSIGNED-PAYLOAD, presigned URLs, clock skew, malformed requests), what it does not implement,
 * and its settings.
 */

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

describe('S3 API signatures and settings', function () {
  this.timeout(120_000);
  let server: TestServer;
  let alice: S3Client;
  let bob: S3Client;

  before(async function () {
    server = await startTestServer({ s3: { listen_addr: '127.0.0.1:0' } });
    alice = s3ApiClient(server, 'alice', KEYS.alice);
    bob = s3ApiClient(server, 'bob', KEYS.bob);
  });
  after(async () => {
    alice?.destroy();
    bob?.destroy();
    await server?.stop();
  });

  describe('signatures sent by hand (aws-chunked, UNSIGNED-PAYLOAD, clock skew)', () => {
    const host = (): string => `127.0.0.1:${s3PortOf(server)}`;
    const send = (method: string, signed: SignedRequest, body?: Buffer): Promise<TestResponse> =>
      request(`${s3Endpoint(server)}${signed.path}`, { method, ca: server.ca, headers: signed.headers, ...(body === undefined ? {} : { body }) });
    const codeOf = (res: TestResponse): string | undefined => /<Code>([^<]+)<\/Code>/.exec(res.text)?.[1];
    const chunks = [randomBytes(65_536), randomBytes(65_536), randomBytes(1000)];
    const whole = Buffer.concat(chunks);

    before(async () => {
      await alice.send(new CreateBucketCommand({ Bucket: 'sig' }));
    });

    it('an aws-chunked body with chunk signatures is stored decoded, with the MD5 ETag of the decoded bytes', async () => {
      const signed = streamingPut({ path: '/sig/chunked.bin', host: host(), accessKeyId: 'alice', secretAccessKey: KEYS.alice, chunks });
      const res = await send('PUT', signed, signed.body);
      expect(res.status, res.text).to.equal(200);
      expect(res.headers.etag).to.equal(singlePartEtag(whole));
      const got = await get(alice, 'sig', 'chunked.bin');
      expect(got.length).to.equal(whole.length);
      expect(sha256(got)).to.equal(sha256(whole));
    });

    it('a chunk whose bytes do not match its signature is SignatureDoesNotMatch (403) and nothing is stored', async () => {
      const signed = streamingPut({ path: '/sig/tampered.bin', host: host(), accessKeyId: 'alice', secretAccessKey: KEYS.alice, chunks, tamperChunk: 1 });
      const res = await send('PUT', signed, signed.body);
      expect({ status: res.status, code: codeOf(res) }, res.text).to.deep.equal({ status: 403, code: 'SignatureDoesNotMatch' });
      await expectS3Error(alice.send(new HeadObjectCommand({ Bucket: 'sig', Key: 'tampered.bin' })), null, 404, 'nothing stored');
    });

    it('UNSIGNED-PAYLOAD is accepted; a signed payload hash that does not match the body is refused and nothing is stored', async () => {
      const body = randomBytes(10_000);
      const unsigned = signV4({ method: 'PUT', path: '/sig/unsigned.bin', host: host(), accessKeyId: 'alice', secretAccessKey: KEYS.alice, payloadHash: 'UNSIGNED-PAYLOAD' });
      const ok = await send('PUT', unsigned, body);
      expect(ok.status, ok.text).to.equal(200);
      expect((await get(alice, 'sig', 'unsigned.bin')).equals(body)).to.equal(true);

      const lying = signV4({ method: 'PUT', path: '/sig/lying.bin', host: host(), accessKeyId: 'alice', secretAccessKey: KEYS.alice, payloadHash: sha256('another body') });
      const refused = await send('PUT', lying, body);
      expect(refused.status, refused.text).to.be.oneOf([400, 403]);
      expect(codeOf(refused), refused.text).to.be.oneOf(['XAmzContentSHA256Mismatch', 'BadDigest', 'SignatureDoesNotMatch']);
      await expectS3Error(alice.send(new HeadObjectCommand({ Bucket: 'sig', Key: 'lying.bin' })), null, 404, 'nothing stored');
    });

    it('a request signed 20 minutes off the server clock is RequestTimeTooSkewed (403)', async () => {
      for (const offset of [-20 * 60_000, 20 * 60_000]) {
        const signed = signV4({ method: 'GET', path: '/sig/', host: host(), accessKeyId: 'alice', secretAccessKey: KEYS.alice, payloadHash: sha256(''), date: new Date(Date.now() + offset) });
        const res = await send('GET', signed);
        expect({ status: res.status, code: codeOf(res) }, res.text).to.deep.equal({ status: 403, code: 'RequestTimeTooSkewed' });
      }
      const now = signV4({ method: 'GET', path: '/sig/', host: host(), accessKeyId: 'alice', secretAccessKey: KEYS.alice, payloadHash: sha256('') });
      expect((await send('GET', now)).status, 'the same request signed now').to.equal(200);
    });

    it('a CRC32 checksum (header or aws-chunked trailer) that does not match the body is BadDigest (400), nothing stored', async () => {
      const body = randomBytes(50_000);
      const crc = (b: Buffer): string => {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(crc32(b));
        return out.toString('base64');
      };
      const wrong = crc(Buffer.from('another body'));
      // S3 answers BadDigest ("The CRC32 you specified did not match the calculated checksum").
      await expectS3Error(alice.send(new PutObjectCommand({ Bucket: 'sig', Key: 'crc-header.bin', Body: body, ChecksumCRC32: wrong })), 'BadDigest', 400, 'x-amz-checksum-crc32 header');
      await expectS3Error(alice.send(new HeadObjectCommand({ Bucket: 'sig', Key: 'crc-header.bin' })), null, 404, 'nothing stored');

      // An unsigned aws-chunked body with the checksum in a trailer, as the SDKs send streams.
      const trailed = (checksum: string): Buffer =>
        Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from(`\r\n0\r\nx-amz-checksum-crc32:${checksum}\r\n\r\n`)]);
      const putTrailed = async (key: string, checksum: string): Promise<TestResponse> => {
        const framed = trailed(checksum);
        const signed = signV4({
          method: 'PUT',
          path: `/sig/${key}`,
          host: host(),
          accessKeyId: 'alice',
          secretAccessKey: KEYS.alice,
          payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
          headers: { 'content-encoding': 'aws-chunked', 'content-length': String(framed.length), 'x-amz-decoded-content-length': String(body.length), 'x-amz-trailer': 'x-amz-checksum-crc32' },
        });
        return request(`${s3Endpoint(server)}${signed.path}`, { method: 'PUT', ca: server.ca, headers: signed.headers, body: framed });
      };
      const refused = await putTrailed('crc-trailer.bin', wrong);
      expect({ status: refused.status, code: codeOf(refused) }, refused.text).to.deep.equal({ status: 400, code: 'BadDigest' });
      await expectS3Error(alice.send(new HeadObjectCommand({ Bucket: 'sig', Key: 'crc-trailer.bin' })), null, 404, 'nothing stored');
      const accepted = await putTrailed('crc-trailer.bin', crc(body));
      expect(accepted.status, accepted.text).to.equal(200);
      expect((await get(alice, 'sig', 'crc-trailer.bin')).equals(body)).to.equal(true);
    });

    it('a presigned GET and PUT work within their expiry; an expired one is AccessDenied (403)', async () => {
      const presigned = (method: string, path: string, expiresSeconds: number, date?: Date): string =>
        `${s3Endpoint(server)}${presignV4({ method, path, host: host(), accessKeyId: 'alice', secretAccessKey: KEYS.alice, expiresSeconds, ...(date === undefined ? {} : { date }) })}`;
      const body = randomBytes(5000);
      const putRes = await request(presigned('PUT', '/sig/presigned put.bin', 300), { method: 'PUT', ca: server.ca, body });
      expect(putRes.status, putRes.text).to.equal(200);
      const getRes = await request(presigned('GET', '/sig/presigned put.bin', 300), { ca: server.ca });
      expect(getRes.status, getRes.text).to.equal(200);
      expect(getRes.body.equals(body)).to.equal(true);
      const expired = await request(presigned('GET', '/sig/presigned put.bin', 60, new Date(Date.now() - 5 * 60_000)), { ca: server.ca });
      expect({ status: expired.status, code: codeOf(expired) }, expired.text).to.deep.equal({ status: 403, code: 'AccessDenied' });
      const asBob = `${s3Endpoint(server)}${presignV4({ method: 'GET', path: '/sig/presigned put.bin', host: host(), accessKeyId: 'alice', secretAccessKey: KEYS.bob, expiresSeconds: 300 })}`;
      const wrongKey = await request(asBob, { ca: server.ca });
      expect({ status: wrongKey.status, code: codeOf(wrongKey) }, wrongKey.text).to.deep.equal({ status: 403, code: 'SignatureDoesNotMatch' });
    });

    it('a malformed Authorization header is AuthorizationHeaderMalformed (400)', async () => {
      const signed = signV4({ method: 'GET', path: '/sig/', host: host(), accessKeyId: 'alice', secretAccessKey: KEYS.alice, payloadHash: sha256('') });
      const day = signed.amzDate.slice(0, 8);
      signed.headers.authorization = `AWS4-HMAC-SHA256 Credential=alice/${day}/us-east-1, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${'0'.repeat(64)}`;
      const res = await send('GET', signed);
      expect({ status: res.status, code: codeOf(res) }, res.text).to.deep.equal({ status: 400, code: 'AuthorizationHeaderMalformed' });
    });

    it('a DeleteObjects body that is not XML is MalformedXML (400) and deletes nothing', async () => {
      await put(alice, 'sig', 'survivor.txt', 'still here');
      const body = Buffer.from('<Delete><Object><Key>survivor.txt</Key></Object>');
      const signed = signV4({
        method: 'POST',
        path: '/sig',
        query: { delete: '' },
        host: host(),
        accessKeyId: 'alice',
        secretAccessKey: KEYS.alice,
        payloadHash: sha256(body),
        headers: { 'content-md5': createHash('md5').update(body).digest('base64'), 'content-type': 'application/xml' },
      });
      const res = await send('POST', signed, body);
      expect({ status: res.status, code: codeOf(res) }, res.text).to.deep.equal({ status: 400, code: 'MalformedXML' });
      expect((await get(alice, 'sig', 'survivor.txt')).toString()).to.equal('still here');
    });

    it('signed for another region, the request is still accepted (any region the client signs for)', async () => {
      const signed = signV4({ method: 'GET', path: '/sig/chunked.bin', host: host(), accessKeyId: 'alice', secretAccessKey: KEYS.alice, payloadHash: 'UNSIGNED-PAYLOAD', region: 'eu-west-3' });
      const res = await send('GET', signed);
      expect(res.status, res.text).to.equal(200);
      expect(sha256(res.body)).to.equal(sha256(whole));
    });
  });

  describe('what the listener does not do', () => {
    it('an operation it does not implement is NotImplemented (501)', async () => {
      await alice.send(new CreateBucketCommand({ Bucket: 'unimpl' }));
      await expectS3Error(alice.send(new PutBucketTaggingCommand({ Bucket: 'unimpl', Tagging: { TagSet: [{ Key: 'k', Value: 'v' }] } })), 'NotImplemented', 501);
    });

    it('a part number outside 1..10000 is InvalidArgument (400)', async () => {
      await alice.send(new CreateBucketCommand({ Bucket: 'badpart' }));
      const { UploadId } = await alice.send(new CreateMultipartUploadCommand({ Bucket: 'badpart', Key: 'k' }));
      for (const PartNumber of [0, 10001]) {
        await expectS3Error(alice.send(new UploadPartCommand({ Bucket: 'badpart', Key: 'k', UploadId, PartNumber, Body: 'x' })), 'InvalidArgument', 400, `part ${PartNumber}`);
      }
      await alice.send(new AbortMultipartUploadCommand({ Bucket: 'badpart', Key: 'k', UploadId }));
    });
  });

  describe('the listener', () => {
    it('speaks TLS with the server certificate and answers an unsigned request with AccessDenied XML', async () => {
      const res = await request(`${s3Endpoint(server)}/`, { ca: server.ca });
      expect(res.status).to.equal(403);
      expect(res.headers['content-type']).to.match(/xml/);
      expect(res.text).to.match(/<Code>AccessDenied<\/Code>/);
      expect(res.text).to.match(/<RequestId>[^<]+<\/RequestId>/);
    });

    it('GetBucketLocation answers s3.region', async () => {
      const other = await startTestServer({ s3: { listen_addr: '127.0.0.1:0', region: 'eu-central-1' } });
      const client = s3ApiClient(other, 'alice', KEYS.alice);
      try {
        await client.send(new CreateBucketCommand({ Bucket: 'located' }));
        expect((await client.send(new GetBucketLocationCommand({ Bucket: 'located' }))).LocationConstraint).to.equal('eu-central-1');
      } finally {
        client.destroy();
        await other.stop();
      }
    });

    it('is off unless s3.listen_addr is set', async () => {
      const other = await startTestServer();
      try {
        expect(other.s3Port).to.equal(null);
      } finally {
        await other.stop();
      }
    });
  });

  describe('limits and expiry (a server with max_upload_bytes 1 MiB, uploads expiring after 2 s)', () => {
    let limited: TestServer;
    let client: S3Client;
    const MiB = 1024 * 1024;

    before(async () => {
      limited = await startTestServer({ s3: { listen_addr: '127.0.0.1:0' }, server: { max_upload_bytes: '1MiB' }, uploads: { expire_after: '2s', sweep_interval: '200ms' } });
      client = s3ApiClient(limited, 'alice', KEYS.alice);
      await client.send(new CreateBucketCommand({ Bucket: 'lim' }));
    });
    after(async () => {
      client?.destroy();
      await limited?.stop();
    });

    it('an object or a part over max_upload_bytes is EntityTooLarge (400) and nothing is stored', async () => {
      await expectS3Error(client.send(new PutObjectCommand({ Bucket: 'lim', Key: 'big.bin', Body: randomBytes(MiB + 1) })), 'EntityTooLarge', 400, 'PutObject');
      await expectS3Error(client.send(new HeadObjectCommand({ Bucket: 'lim', Key: 'big.bin' })), null, 404, 'nothing stored');
      expect((await client.send(new PutObjectCommand({ Bucket: 'lim', Key: 'fits.bin', Body: randomBytes(MiB) }))).ETag, 'exactly the limit').to.match(/^"[0-9a-f]{32}"$/);
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'lim', Key: 'parts.bin' }));
      await expectS3Error(client.send(new UploadPartCommand({ Bucket: 'lim', Key: 'parts.bin', UploadId, PartNumber: 1, Body: randomBytes(MiB + 1) })), 'EntityTooLarge', 400, 'UploadPart');
      await client.send(new AbortMultipartUploadCommand({ Bucket: 'lim', Key: 'parts.bin', UploadId }));
    });

    it('parts that add up to more than max_upload_bytes: CompleteMultipartUpload is EntityTooLarge (400)', async () => {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'lim', Key: 'sum.bin' }));
      const parts = [];
      for (const PartNumber of [1, 2]) {
        const res = await client.send(new UploadPartCommand({ Bucket: 'lim', Key: 'sum.bin', UploadId, PartNumber, Body: randomBytes(700_000) }));
        parts.push({ PartNumber, ETag: res.ETag as string });
      }
      await expectS3Error(client.send(new CompleteMultipartUploadCommand({ Bucket: 'lim', Key: 'sum.bin', UploadId, MultipartUpload: { Parts: parts } })), 'EntityTooLarge', 400);
      await expectS3Error(client.send(new HeadObjectCommand({ Bucket: 'lim', Key: 'sum.bin' })), null, 404, 'nothing stored');
      await client.send(new AbortMultipartUploadCommand({ Bucket: 'lim', Key: 'sum.bin', UploadId }));
    });

    it('an abandoned upload is removed after expire_after: NoSuchUpload, not listed, its parts gone from disk', async () => {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'lim', Key: 'abandoned.bin' }));
      await client.send(new UploadPartCommand({ Bucket: 'lim', Key: 'abandoned.bin', UploadId, PartNumber: 1, Body: randomBytes(1000) }));
      const partsDir = join(limited.dataDir, 's3-multipart', UploadId as string);
      expect(existsSync(partsDir), `the parts are in ${partsDir}`).to.equal(true);
      expect((await client.send(new ListMultipartUploadsCommand({ Bucket: 'lim' }))).Uploads?.map((u) => u.UploadId)).to.include(UploadId);
      const deadline = Date.now() + 15_000;
      for (;;) {
        const listed = (await client.send(new ListMultipartUploadsCommand({ Bucket: 'lim' }))).Uploads?.map((u) => u.UploadId) ?? [];
        if (!listed.includes(UploadId)) break;
        expect(Date.now(), 'the upload is removed within 15 s of a 2 s expiry').to.be.below(deadline);
        await new Promise((r) => setTimeout(r, 250));
      }
      await expectS3Error(client.send(new ListPartsCommand({ Bucket: 'lim', Key: 'abandoned.bin', UploadId })), 'NoSuchUpload', 404);
      await expectS3Error(client.send(new UploadPartCommand({ Bucket: 'lim', Key: 'abandoned.bin', UploadId, PartNumber: 2, Body: 'late' })), 'NoSuchUpload', 404);
      expect(existsSync(partsDir), 'the parts are removed from disk').to.equal(false);
    });
  });
});
