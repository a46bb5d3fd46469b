import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  PutBucketTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type GetObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { scrape } from '../support/prometheus.js';
import { expectS3Error, multipartEtag, presignV4, s3ApiClient, s3Endpoint, s3PortOf, signV4, singlePartEtag, streamingPut, type SignedRequest } from '../support/s3-api.js';

/**
 * The S3 listener (issue 25) through @aws-sdk/client-s3: the operations' semantics and the S3
 * error codes clients branch on. The client-program tests are in s3-api-clients.test.ts.
 */

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

async function bodyOf(res: GetObjectCommandOutput): Promise<Buffer> {
  expect(res.Body, 'a GetObject body').to.not.equal(undefined);
  return Buffer.from(await (res.Body as NonNullable<GetObjectCommandOutput['Body']>).transformToByteArray());
}

describe('S3 API (SDK)', function () {
  this.timeout(120_000);
  let server: TestServer;
  let alice: S3Client;
  let bob: S3Client;
  const v1 = (method: string, path: string, options: { body?: string | Buffer; headers?: Record<string, string>; token?: string } = {}): Promise<TestResponse> =>
    request(`${server.url}${path}`, { method, token: KEYS.alice, ca: server.ca, ...options });
  const put = (client: S3Client, Bucket: string, Key: string, Body: Buffer | string, extra: { Metadata?: Record<string, string>; ContentType?: string } = {}) =>
    client.send(new PutObjectCommand({ Bucket, Key, Body, ...extra }));
  const get = async (client: S3Client, Bucket: string, Key: string): Promise<Buffer> => bodyOf(await client.send(new GetObjectCommand({ Bucket, Key })));

  before(async () => {
    server = await startTestServer({ s3: { listen_addr: '127.0.0.1:0' } });
    alice = s3ApiClient(server, 'alice', KEYS.alice);
    bob = s3ApiClient(server, 'bob', KEYS.bob);
  });
  after(async () => {
    alice?.destroy();
    bob?.destroy();
    await server?.stop();
  });

  describe('buckets', () => {
    it('CreateBucket makes a top-level directory; ListBuckets, HeadBucket, location and versioning answer for it', async () => {
      await alice.send(new CreateBucketCommand({ Bucket: 'sdk' }));
      const dir = await v1('HEAD', '/v1/files/sdk');
      expect(dir.status).to.equal(200);
      expect(dir.headers['x-callfs-type']).to.equal('directory');
      expect(dir.headers['x-callfs-owner']).to.equal('alice');
      const listed = await alice.send(new ListBucketsCommand({}));
      expect(listed.Buckets?.map((b) => b.Name)).to.include('sdk');
      expect(listed.Buckets?.find((b) => b.Name === 'sdk')?.CreationDate).to.be.instanceOf(Date);
      expect((await alice.send(new HeadBucketCommand({ Bucket: 'sdk' }))).$metadata.httpStatusCode).to.equal(200);
      const location = await alice.send(new GetBucketLocationCommand({ Bucket: 'sdk' }));
      // S3 answers us-east-1 as an empty LocationConstraint; the region's name is fine too.
      expect(location.LocationConstraint ?? '').to.be.oneOf(['', 'us-east-1']);
      const versioning = await alice.send(new GetBucketVersioningCommand({ Bucket: 'sdk' }));
      expect(versioning.Status, 'an unversioned bucket').to.equal(undefined);
    });

    it("CreateBucket of one's own bucket again is BucketAlreadyOwnedByYou (409)", async () => {
      await alice.send(new CreateBucketCommand({ Bucket: 'twice' }));
      await expectS3Error(alice.send(new CreateBucketCommand({ Bucket: 'twice' })), 'BucketAlreadyOwnedByYou', 409);
    });

    it('a directory made through /v1 is a bucket', async () => {
      expect((await v1('POST', '/v1/files/from-v1/')).status).to.equal(201);
      expect((await v1('PUT', '/v1/files/from-v1/hello.txt', { body: 'hello from /v1' })).status).to.equal(201);
      expect((await alice.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)).to.include('from-v1');
      const got = await alice.send(new GetObjectCommand({ Bucket: 'from-v1', Key: 'hello.txt' }));
      expect((await bodyOf(got)).toString()).to.equal('hello from /v1');
      // No MD5 was recorded for a /v1 write: the ETag is the SHA-256.
      expect(got.ETag).to.equal(`"${sha256('hello from /v1')}"`);
    });

    it('DeleteBucket of a non-empty bucket is BucketNotEmpty (409); emptied, it goes; then NoSuchBucket', async () => {
      await alice.send(new CreateBucketCommand({ Bucket: 'to-delete' }));
      await put(alice, 'to-delete', 'deep/inside.txt', 'x');
      await expectS3Error(alice.send(new DeleteBucketCommand({ Bucket: 'to-delete' })), 'BucketNotEmpty', 409);
      expect((await v1('GET', '/v1/files/to-delete/deep/inside.txt')).text, 'nothing was removed').to.equal('x');
      await alice.send(new DeleteObjectCommand({ Bucket: 'to-delete', Key: 'deep/inside.txt' }));
      // A key's parent directories are not objects: with the last key gone the bucket counts as empty.
      await alice.send(new DeleteBucketCommand({ Bucket: 'to-delete' }));
      expect((await v1('HEAD', '/v1/files/to-delete')).status).to.equal(404);
      await expectS3Error(alice.send(new HeadBucketCommand({ Bucket: 'to-delete' })), null, 404);
      await expectS3Error(alice.send(new ListObjectsV2Command({ Bucket: 'to-delete' })), 'NoSuchBucket', 404);
      await expectS3Error(alice.send(new DeleteBucketCommand({ Bucket: 'to-delete' })), 'NoSuchBucket', 404);
    });
  });

  describe('authentication and permissions', () => {
    before(async () => {
      await alice.send(new CreateBucketCommand({ Bucket: 'auth' }));
      await put(alice, 'auth', 'open.txt', 'readable');
    });

    it('a wrong secret is SignatureDoesNotMatch (403)', async () => {
      const wrong = s3ApiClient(server, 'alice', `${KEYS.alice}-wrong`);
      try {
        await expectS3Error(wrong.send(new ListObjectsV2Command({ Bucket: 'auth' })), 'SignatureDoesNotMatch', 403);
        await expectS3Error(wrong.send(new GetObjectCommand({ Bucket: 'auth', Key: 'open.txt' })), 'SignatureDoesNotMatch', 403);
        await expectS3Error(wrong.send(new PutObjectCommand({ Bucket: 'auth', Key: 'written.txt', Body: 'no' })), 'SignatureDoesNotMatch', 403);
        expect((await v1('HEAD', '/v1/files/auth/written.txt')).status, 'nothing written').to.equal(404);
      } finally {
        wrong.destroy();
      }
    });

    it('an unknown access key is InvalidAccessKeyId (403)', async () => {
      const stranger = s3ApiClient(server, 'mallory', KEYS.alice);
      try {
        await expectS3Error(stranger.send(new ListBucketsCommand({})), 'InvalidAccessKeyId', 403);
        await expectS3Error(stranger.send(new GetObjectCommand({ Bucket: 'auth', Key: 'open.txt' })), 'InvalidAccessKeyId', 403);
      } finally {
        stranger.destroy();
      }
    });

    it("another user's private bucket and its objects are AccessDenied (403); its owner gets them", async () => {
      await bob.send(new CreateBucketCommand({ Bucket: 'bobs' }));
      await put(bob, 'bobs', 'secret.txt', 'for bob only');
      const chmod = await v1('PATCH', '/v1/files/bobs', { token: KEYS.bob, body: JSON.stringify({ mode: '0700' }), headers: { 'content-type': 'application/json' } });
      expect(chmod.status).to.equal(200);
      expect((await bob.send(new ListObjectsV2Command({ Bucket: 'bobs' }))).Contents?.map((o) => o.Key)).to.deep.equal(['secret.txt']);
      expect((await get(bob, 'bobs', 'secret.txt')).toString()).to.equal('for bob only');

      await expectS3Error(alice.send(new ListObjectsV2Command({ Bucket: 'bobs' })), 'AccessDenied', 403, 'alice lists');
      await expectS3Error(alice.send(new GetObjectCommand({ Bucket: 'bobs', Key: 'secret.txt' })), 'AccessDenied', 403, 'alice gets');
      await expectS3Error(alice.send(new PutObjectCommand({ Bucket: 'bobs', Key: 'planted.txt', Body: 'x' })), 'AccessDenied', 403, 'alice puts');
      await expectS3Error(alice.send(new DeleteObjectCommand({ Bucket: 'bobs', Key: 'secret.txt' })), 'AccessDenied', 403, 'alice deletes');
      await expectS3Error(alice.send(new HeadObjectCommand({ Bucket: 'bobs', Key: 'secret.txt' })), null, 403, 'alice heads');
      await expectS3Error(alice.send(new DeleteBucketCommand({ Bucket: 'bobs' })), 'AccessDenied', 403, 'alice deletes the bucket');
      expect((await get(bob, 'bobs', 'secret.txt')).toString(), 'still there').to.equal('for bob only');
      expect((await v1('HEAD', '/v1/files/bobs/planted.txt', { token: KEYS.bob })).status).to.equal(404);
    });

    it('a file bob may read but not write (0644 in a 0755 bucket): alice reads it, her PutObject is AccessDenied', async () => {
      await bob.send(new CreateBucketCommand({ Bucket: 'bobs-public' }));
      await put(bob, 'bobs-public', 'readme.txt', 'read me');
      expect((await get(alice, 'bobs-public', 'readme.txt')).toString()).to.equal('read me');
      await expectS3Error(put(alice, 'bobs-public', 'readme.txt', 'overwritten'), 'AccessDenied', 403);
      expect((await get(bob, 'bobs-public', 'readme.txt')).toString()).to.equal('read me');
    });
  });

  describe('objects', () => {
    const body = randomBytes(100_000);
    before(async () => {
      await alice.send(new CreateBucketCommand({ Bucket: 'obj' }));
      await put(alice, 'obj', 'data.bin', body);
    });

    it('PutObject answers the MD5 ETag; GetObject and HeadObject give the bytes, length and the same ETag', async () => {
      const res = await put(alice, 'obj', 'etag.bin', body);
      expect(res.ETag).to.equal(singlePartEtag(body));
      const got = await alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'etag.bin' }));
      expect((await bodyOf(got)).equals(body)).to.equal(true);
      expect(got.ETag).to.equal(singlePartEtag(body));
      expect(got.ContentLength).to.equal(body.length);
      const head = await alice.send(new HeadObjectCommand({ Bucket: 'obj', Key: 'etag.bin' }));
      expect(head.ETag).to.equal(singlePartEtag(body));
      expect(head.ContentLength).to.equal(body.length);
      expect(head.LastModified).to.be.instanceOf(Date);
      expect((await v1('GET', '/v1/files/obj/etag.bin')).body.equals(body), 'the bytes through /v1').to.equal(true);
    });

    it('stores an empty object', async () => {
      const res = await put(alice, 'obj', 'empty', Buffer.alloc(0));
      expect(res.ETag).to.equal('"d41d8cd98f00b204e9800998ecf8427e"');
      expect((await get(alice, 'obj', 'empty')).length).to.equal(0);
    });

    it('keys with characters that URL and signature encodings treat specially round-trip and are the same names in /v1', async () => {
      const keys = ['odd/plus+sign.txt', 'odd/percent%20.txt', 'odd/tilde~.txt', "odd/quote'.txt", 'odd/brackets[1](2).txt', 'odd/amp&eq=.txt', 'odd/star*bang!.txt', 'odd/sp ace.txt', 'odd/ünï €.txt'];
      for (const key of keys) await put(alice, 'obj', key, `body of ${key}`);
      for (const key of keys) {
        expect((await get(alice, 'obj', key)).toString(), key).to.equal(`body of ${key}`);
        const viaV1 = await v1('GET', `/v1/files/obj/${key.split('/').map(encodeURIComponent).join('/')}`);
        expect(viaV1.status, `${key} through /v1`).to.equal(200);
        expect(viaV1.text).to.equal(`body of ${key}`);
      }
      const listed = await alice.send(new ListObjectsV2Command({ Bucket: 'obj', Prefix: 'odd/' }));
      expect((listed.Contents ?? []).map((o) => o.Key)).to.deep.equal([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
      const deleted = await alice.send(new DeleteObjectsCommand({ Bucket: 'obj', Delete: { Objects: keys.map((Key) => ({ Key })) } }));
      expect((deleted.Deleted ?? []).map((d) => d.Key).sort()).to.deep.equal([...keys].sort());
      expect((await alice.send(new ListObjectsV2Command({ Bucket: 'obj', Prefix: 'odd/' }))).KeyCount).to.equal(0);
    });

    it('a file changed through /v1 after an S3 put has its new SHA-256 ETag, not the old MD5', async () => {
      await put(alice, 'obj', 'changed.txt', 'first, through S3', { Metadata: { stage: 'one' } });
      expect((await alice.send(new HeadObjectCommand({ Bucket: 'obj', Key: 'changed.txt' }))).ETag).to.equal(singlePartEtag('first, through S3'));
      expect((await v1('PUT', '/v1/files/obj/changed.txt', { body: 'then through /v1' })).status).to.equal(200);
      const head = await alice.send(new HeadObjectCommand({ Bucket: 'obj', Key: 'changed.txt' }));
      expect(head.ETag).to.equal(`"${sha256('then through /v1')}"`);
      expect(head.ContentLength).to.equal(Buffer.byteLength('then through /v1'));
      expect((await get(alice, 'obj', 'changed.txt')).toString()).to.equal('then through /v1');
      const listed = await alice.send(new ListObjectsV2Command({ Bucket: 'obj', Prefix: 'changed.txt' }));
      expect(listed.Contents?.[0]?.ETag, 'the listing agrees').to.equal(`"${sha256('then through /v1')}"`);
    });

    it('a missing key is NoSuchKey (404); a missing bucket is NoSuchBucket (404)', async () => {
      await expectS3Error(alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'no/such/key' })), 'NoSuchKey', 404);
      await expectS3Error(alice.send(new HeadObjectCommand({ Bucket: 'obj', Key: 'no-such-key' })), null, 404);
      await expectS3Error(alice.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'data.bin' })), 'NoSuchBucket', 404);
      await expectS3Error(alice.send(new PutObjectCommand({ Bucket: 'no-such-bucket', Key: 'k', Body: 'x' })), 'NoSuchBucket', 404);
      await expectS3Error(alice.send(new ListObjectsV2Command({ Bucket: 'no-such-bucket' })), 'NoSuchBucket', 404);
    });

    it('a key naming a directory (a key prefix) is not an object: NoSuchKey', async () => {
      await put(alice, 'obj', 'nested/child.txt', 'child');
      await expectS3Error(alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'nested' })), 'NoSuchKey', 404);
    });

    it('GetObject with a Range is 206 with those bytes and Content-Range', async () => {
      const part = await alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'data.bin', Range: 'bytes=1000-1999' }));
      expect(part.$metadata.httpStatusCode).to.equal(206);
      expect(part.ContentRange).to.equal(`bytes 1000-1999/${body.length}`);
      expect(part.ContentLength).to.equal(1000);
      expect((await bodyOf(part)).equals(body.subarray(1000, 2000))).to.equal(true);
      const suffix = await alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'data.bin', Range: 'bytes=-10' }));
      expect(suffix.$metadata.httpStatusCode).to.equal(206);
      expect((await bodyOf(suffix)).equals(body.subarray(body.length - 10))).to.equal(true);
    });

    it('a Range past the end is InvalidRange (416)', async () => {
      await expectS3Error(alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'data.bin', Range: `bytes=${body.length}-` })), 'InvalidRange', 416);
      await expectS3Error(alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'data.bin', Range: `bytes=${body.length + 100}-${body.length + 200}` })), 'InvalidRange', 416);
    });

    it('conditional GET: If-None-Match with the ETag is 304, If-Match with another is PreconditionFailed (412)', async () => {
      const etag = singlePartEtag(body);
      await expectS3Error(alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'data.bin', IfNoneMatch: etag })), null, 304);
      const other = await alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'data.bin', IfNoneMatch: '"0123456789abcdef0123456789abcdef"' }));
      expect(other.$metadata.httpStatusCode, 'If-None-Match with another ETag').to.equal(200);
      expect((await bodyOf(other)).length).to.equal(body.length);
      const matched = await alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'data.bin', IfMatch: etag }));
      expect((await bodyOf(matched)).equals(body)).to.equal(true);
      await expectS3Error(alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'data.bin', IfMatch: '"0123456789abcdef0123456789abcdef"' })), 'PreconditionFailed', 412);
      // Dates: not modified since its own Last-Modified (304), modified since a day before it (412 for If-Unmodified-Since).
      const lastModified = (await alice.send(new HeadObjectCommand({ Bucket: 'obj', Key: 'data.bin' }))).LastModified as Date;
      await expectS3Error(alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'data.bin', IfModifiedSince: lastModified })), null, 304);
      const dayBefore = new Date(lastModified.getTime() - 86_400_000);
      const modified = await alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'data.bin', IfModifiedSince: dayBefore }));
      expect(modified.$metadata.httpStatusCode).to.equal(200);
      expect((await bodyOf(modified)).length).to.equal(body.length);
      await expectS3Error(alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'data.bin', IfUnmodifiedSince: dayBefore })), 'PreconditionFailed', 412);
    });

    it('x-amz-meta-* are kept and returned by HeadObject and GetObject', async () => {
      const Metadata = { colour: 'blue', 'two-words': 'hello world' };
      await put(alice, 'obj', 'meta.json', '{}', { Metadata });
      const head = await alice.send(new HeadObjectCommand({ Bucket: 'obj', Key: 'meta.json' }));
      expect(head.Metadata).to.deep.equal(Metadata);
      const got = await alice.send(new GetObjectCommand({ Bucket: 'obj', Key: 'meta.json' }));
      expect(got.Metadata).to.deep.equal(Metadata);
      await bodyOf(got);
      // Overwritten without metadata, the object has none.
      await put(alice, 'obj', 'meta.json', '{}');
      expect((await alice.send(new HeadObjectCommand({ Bucket: 'obj', Key: 'meta.json' }))).Metadata).to.deep.equal({});
    });

    it('the Content-Type given at PutObject is the one GetObject answers', async () => {
      await put(alice, 'obj', 'typed.json', '{}', { ContentType: 'application/x-callfs-test' });
      expect((await alice.send(new HeadObjectCommand({ Bucket: 'obj', Key: 'typed.json' }))).ContentType).to.equal('application/x-callfs-test');
    });

    it('DeleteObject removes a key (and a missing key is no error); DeleteObjects removes several', async () => {
      const keys = ['del/a.txt', 'del/b.txt', 'del/sub/c.txt', 'del/sub/d.txt', 'del/keep.txt'];
      for (const key of keys) await put(alice, 'obj', key, key);
      const one = await alice.send(new DeleteObjectCommand({ Bucket: 'obj', Key: 'del/a.txt' }));
      expect(one.$metadata.httpStatusCode).to.equal(204);
      expect((await alice.send(new DeleteObjectCommand({ Bucket: 'obj', Key: 'del/never-was.txt' }))).$metadata.httpStatusCode).to.equal(204);

      const many = await alice.send(
        new DeleteObjectsCommand({ Bucket: 'obj', Delete: { Objects: ['del/b.txt', 'del/sub/c.txt', 'del/sub/d.txt', 'del/missing.txt'].map((Key) => ({ Key })) } }),
      );
      expect((many.Deleted ?? []).map((d) => d.Key).sort()).to.deep.equal(['del/b.txt', 'del/missing.txt', 'del/sub/c.txt', 'del/sub/d.txt']);
      expect(many.Errors ?? []).to.deep.equal([]);
      const left = await alice.send(new ListObjectsV2Command({ Bucket: 'obj', Prefix: 'del/' }));
      expect((left.Contents ?? []).map((o) => o.Key)).to.deep.equal(['del/keep.txt']);
      expect((await v1('HEAD', '/v1/files/obj/del/sub/c.txt')).status).to.equal(404);
    });

    it('DeleteObjects reports a key the caller may not delete as an AccessDenied error and deletes the others', async () => {
      await bob.send(new CreateBucketCommand({ Bucket: 'bobs-mixed' }));
      await put(bob, 'bobs-mixed', 'bobs.txt', 'bob');
      // bob's bucket is 0755: alice may not delete in it.
      const res = await alice.send(new DeleteObjectsCommand({ Bucket: 'bobs-mixed', Delete: { Objects: [{ Key: 'bobs.txt' }] } }));
      expect((res.Errors ?? []).map((e) => [e.Key, e.Code])).to.deep.equal([['bobs.txt', 'AccessDenied']]);
      expect((await get(bob, 'bobs-mixed', 'bobs.txt')).toString()).to.equal('bob');
    });

    it('CopyObject copies bytes, ETag and metadata, within and across buckets, writing no new bytes into the CAS', async () => {
      const written = async (): Promise<number> => (await scrape(server.url, { token: KEYS.root, ca: server.ca })).value('callfs_cas_written_bytes_total');
      const unique = randomBytes(300_000);
      const before = await written();
      await put(alice, 'obj', 'copy-src.bin', unique, { Metadata: { origin: 'source' } });
      expect((await written()) - before, 'the PutObject is counted (the counter works)').to.be.at.least(unique.length);

      await alice.send(new CreateBucketCommand({ Bucket: 'obj-copies' }));
      const writtenBefore = await written();
      const same = await alice.send(new CopyObjectCommand({ Bucket: 'obj', Key: 'copies/one.bin', CopySource: 'obj/copy-src.bin' }));
      expect(same.CopyObjectResult?.ETag).to.equal(singlePartEtag(unique));
      const across = await alice.send(new CopyObjectCommand({ Bucket: 'obj-copies', Key: 'deep/two.bin', CopySource: '/obj/copy-src.bin' }));
      expect(across.CopyObjectResult?.ETag).to.equal(singlePartEtag(unique));
      expect(await written(), 'bytes written into the CAS by the copies').to.equal(writtenBefore);

      for (const [Bucket, Key] of [['obj', 'copies/one.bin'], ['obj-copies', 'deep/two.bin']] as const) {
        const got = await alice.send(new GetObjectCommand({ Bucket, Key }));
        expect((await bodyOf(got)).equals(unique), `${Bucket}/${Key}`).to.equal(true);
        expect(got.ETag).to.equal(singlePartEtag(unique));
        expect(got.Metadata, 'metadata directive COPY (the default)').to.deep.equal({ origin: 'source' });
      }
      const replaced = await alice.send(
        new CopyObjectCommand({ Bucket: 'obj', Key: 'copies/three.bin', CopySource: 'obj/copy-src.bin', MetadataDirective: 'REPLACE', Metadata: { origin: 'replaced' } }),
      );
      expect(replaced.CopyObjectResult?.ETag).to.equal(singlePartEtag(unique));
      expect((await alice.send(new HeadObjectCommand({ Bucket: 'obj', Key: 'copies/three.bin' }))).Metadata).to.deep.equal({ origin: 'replaced' });
      // The source is untouched, and a missing source is NoSuchKey.
      expect((await get(alice, 'obj', 'copy-src.bin')).equals(unique)).to.equal(true);
      await expectS3Error(alice.send(new CopyObjectCommand({ Bucket: 'obj', Key: 'copies/none.bin', CopySource: 'obj/no-such-source' })), 'NoSuchKey', 404);
    });

    it('CopyObject from a bucket the caller may not read is AccessDenied', async () => {
      await bob.send(new CreateBucketCommand({ Bucket: 'bobs-private' }));
      await put(bob, 'bobs-private', 'secret.bin', 'secret');
      expect((await v1('PATCH', '/v1/files/bobs-private', { token: KEYS.bob, body: JSON.stringify({ mode: '0700' }), headers: { 'content-type': 'application/json' } })).status).to.equal(200);
      await expectS3Error(alice.send(new CopyObjectCommand({ Bucket: 'obj', Key: 'stolen.bin', CopySource: 'bobs-private/secret.bin' })), 'AccessDenied', 403);
      expect((await v1('HEAD', '/v1/files/obj/stolen.bin')).status).to.equal(404);
    });
  });

  describe('listing', () => {
    // Byte order of keys is not the order of a directory walk: "a-b" < "a.b" < "a/…" < "a0" < "aa".
    const keys = [
      'p/a-b',
      'p/a.b',
      'p/a/b',
      'p/a/c/d',
      'p/a0',
      'p/aa',
      'p/b/x/y/z.txt',
      'p/c.txt',
      'p/sp ace.txt',
      'p/ünï.txt',
      ...Array.from({ length: 15 }, (_, i) => `p/many/${String(i).padStart(2, '0')}.dat`),
      'q/outside.txt',
    ];
    const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const underP = sorted.filter((k) => k.startsWith('p/'));

    before(async () => {
      await alice.send(new CreateBucketCommand({ Bucket: 'lst' }));
      for (const key of keys) await put(alice, 'lst', key, `content of ${key}`);
    });

    it('ListObjectsV2 lists every key in byte order with sizes and ETags', async () => {
      const res = await alice.send(new ListObjectsV2Command({ Bucket: 'lst' }));
      expect(res.IsTruncated).to.equal(false);
      expect(res.KeyCount).to.equal(keys.length);
      expect((res.Contents ?? []).map((o) => o.Key)).to.deep.equal(sorted);
      const c = res.Contents?.find((o) => o.Key === 'p/c.txt');
      expect(c?.Size).to.equal(Buffer.byteLength('content of p/c.txt'));
      expect(c?.ETag).to.equal(singlePartEtag('content of p/c.txt'));
      expect(c?.LastModified).to.be.instanceOf(Date);
    });

    it('ListObjectsV2 with a prefix and a delimiter gives objects and CommonPrefixes', async () => {
      const res = await alice.send(new ListObjectsV2Command({ Bucket: 'lst', Prefix: 'p/', Delimiter: '/' }));
      expect((res.Contents ?? []).map((o) => o.Key)).to.deep.equal(['p/a-b', 'p/a.b', 'p/a0', 'p/aa', 'p/c.txt', 'p/sp ace.txt', 'p/ünï.txt']);
      expect((res.CommonPrefixes ?? []).map((p) => p.Prefix)).to.deep.equal(['p/a/', 'p/b/', 'p/many/']);
      const partial = await alice.send(new ListObjectsV2Command({ Bucket: 'lst', Prefix: 'p/a', Delimiter: '/' }));
      expect((partial.Contents ?? []).map((o) => o.Key), 'a prefix that is not a whole name').to.deep.equal(['p/a-b', 'p/a.b', 'p/a0', 'p/aa']);
      expect((partial.CommonPrefixes ?? []).map((p) => p.Prefix)).to.deep.equal(['p/a/']);
      const top = await alice.send(new ListObjectsV2Command({ Bucket: 'lst', Delimiter: '/' }));
      expect(top.Contents ?? []).to.deep.equal([]);
      expect((top.CommonPrefixes ?? []).map((p) => p.Prefix)).to.deep.equal(['p/', 'q/']);
    });

    it('ListObjectsV2 pages with MaxKeys and ContinuationToken cover every key once, in order', async () => {
      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const res = await alice.send(new ListObjectsV2Command({ Bucket: 'lst', Prefix: 'p/', MaxKeys: 4, ...(token === undefined ? {} : { ContinuationToken: token }) }));
        pages++;
        const page = (res.Contents ?? []).map((o) => o.Key as string);
        expect(page.length, `page ${pages}`).to.be.at.most(4);
        expect(res.KeyCount).to.equal(page.length);
        seen.push(...page);
        if (res.IsTruncated === true) {
          expect(res.NextContinuationToken, 'a truncated page has a continuation token').to.be.a('string');
          token = res.NextContinuationToken;
        } else token = undefined;
        expect(pages, 'pagination ends').to.be.at.most(20);
      } while (token !== undefined);
      expect(seen).to.deep.equal(underP);
      expect(pages).to.equal(Math.ceil(underP.length / 4));
    });

    it('ListObjectsV2 pages with a delimiter count CommonPrefixes towards MaxKeys and repeat none', async () => {
      const objects: string[] = [];
      const prefixes: string[] = [];
      let token: string | undefined;
      for (let pages = 0; ; pages++) {
        expect(pages, 'pagination ends').to.be.below(20);
        const res = await alice.send(new ListObjectsV2Command({ Bucket: 'lst', Prefix: 'p/', Delimiter: '/', MaxKeys: 2, ...(token === undefined ? {} : { ContinuationToken: token }) }));
        const got = [...(res.Contents ?? []).map((o) => o.Key as string), ...(res.CommonPrefixes ?? []).map((p) => p.Prefix as string)];
        expect(got.length).to.be.at.most(2);
        objects.push(...(res.Contents ?? []).map((o) => o.Key as string));
        prefixes.push(...(res.CommonPrefixes ?? []).map((p) => p.Prefix as string));
        if (res.IsTruncated !== true) break;
        token = res.NextContinuationToken;
      }
      expect(objects).to.deep.equal(['p/a-b', 'p/a.b', 'p/a0', 'p/aa', 'p/c.txt', 'p/sp ace.txt', 'p/ünï.txt']);
      expect(prefixes).to.deep.equal(['p/a/', 'p/b/', 'p/many/']);
    });

    it('ListObjectsV2 StartAfter starts after a key', async () => {
      const res = await alice.send(new ListObjectsV2Command({ Bucket: 'lst', Prefix: 'p/', StartAfter: 'p/a/c/d' }));
      expect((res.Contents ?? []).map((o) => o.Key)).to.deep.equal(underP.slice(underP.indexOf('p/a/c/d') + 1));
    });

    it('ListObjects (V1) pages with Marker', async () => {
      const seen: string[] = [];
      let marker: string | undefined;
      for (let pages = 0; ; pages++) {
        expect(pages, 'pagination ends').to.be.below(20);
        const res = await alice.send(new ListObjectsCommand({ Bucket: 'lst', MaxKeys: 5, ...(marker === undefined ? {} : { Marker: marker }) }));
        const page = (res.Contents ?? []).map((o) => o.Key as string);
        expect(page.length).to.be.at.most(5);
        seen.push(...page);
        if (res.IsTruncated !== true) break;
        marker = res.NextMarker ?? page[page.length - 1];
      }
      expect(seen).to.deep.equal(sorted);
      const fromMarker = await alice.send(new ListObjectsCommand({ Bucket: 'lst', Marker: 'p/c.txt', Prefix: 'p/' }));
      expect((fromMarker.Contents ?? []).map((o) => o.Key)).to.deep.equal(underP.slice(underP.indexOf('p/c.txt') + 1));
      const delimited = await alice.send(new ListObjectsCommand({ Bucket: 'lst', Prefix: 'p/b/', Delimiter: '/' }));
      expect((delimited.CommonPrefixes ?? []).map((p) => p.Prefix)).to.deep.equal(['p/b/x/']);
    });

    it('ListObjects (V1) pages with a delimiter follow NextMarker and repeat no CommonPrefix', async () => {
      const objects: string[] = [];
      const prefixes: string[] = [];
      let marker: string | undefined;
      for (let pages = 0; ; pages++) {
        expect(pages, 'pagination ends').to.be.below(20);
        const res = await alice.send(new ListObjectsCommand({ Bucket: 'lst', Prefix: 'p/', Delimiter: '/', MaxKeys: 2, ...(marker === undefined ? {} : { Marker: marker }) }));
        objects.push(...(res.Contents ?? []).map((o) => o.Key as string));
        prefixes.push(...(res.CommonPrefixes ?? []).map((p) => p.Prefix as string));
        if (res.IsTruncated !== true) break;
        expect(res.NextMarker, 'with a delimiter a truncated V1 page has NextMarker').to.be.a('string');
        marker = res.NextMarker;
      }
      expect(objects).to.deep.equal(['p/a-b', 'p/a.b', 'p/a0', 'p/aa', 'p/c.txt', 'p/sp ace.txt', 'p/ünï.txt']);
      expect(prefixes).to.deep.equal(['p/a/', 'p/b/', 'p/many/']);
    });

    it('lists an empty bucket and a prefix that matches nothing', async () => {
      await alice.send(new CreateBucketCommand({ Bucket: 'lst-empty' }));
      const empty = await alice.send(new ListObjectsV2Command({ Bucket: 'lst-empty' }));
      expect(empty.KeyCount).to.equal(0);
      expect(empty.Contents ?? []).to.deep.equal([]);
      const none = await alice.send(new ListObjectsV2Command({ Bucket: 'lst', Prefix: 'zzz' }));
      expect(none.KeyCount).to.equal(0);
      expect(none.IsTruncated).to.equal(false);
    });
  });

  describe('multipart uploads', () => {
    const part1 = randomBytes(5 * MiB);
    const part2 = randomBytes(MiB + 123);

    before(async () => {
      await alice.send(new CreateBucketCommand({ Bucket: 'mpu' }));
    });

    it('create, upload 2 parts, list parts and uploads, complete: the "-2" ETag and the bytes', async () => {
      const created = await alice.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'big/joined.bin', Metadata: { kind: 'multipart' } }));
      const UploadId = created.UploadId as string;
      expect(UploadId).to.be.a('string').and.not.equal('');
      expect(created.Key).to.equal('big/joined.bin');

      const p1 = await alice.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'big/joined.bin', UploadId, PartNumber: 1, Body: part1 }));
      const p2 = await alice.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'big/joined.bin', UploadId, PartNumber: 2, Body: part2 }));
      expect(p1.ETag).to.equal(singlePartEtag(part1));
      expect(p2.ETag).to.equal(singlePartEtag(part2));

      const parts = await alice.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'big/joined.bin', UploadId }));
      expect((parts.Parts ?? []).map((p) => [p.PartNumber, p.Size, p.ETag])).to.deep.equal([
        [1, part1.length, singlePartEtag(part1)],
        [2, part2.length, singlePartEtag(part2)],
      ]);
      const uploads = await alice.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }));
      expect((uploads.Uploads ?? []).map((u) => [u.Key, u.UploadId])).to.deep.include(['big/joined.bin', UploadId]);
      await expectS3Error(alice.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'big/joined.bin' })), null, 404, 'no object before completion');

      const done = await alice.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'mpu',
          Key: 'big/joined.bin',
          UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag as string }, { PartNumber: 2, ETag: p2.ETag as string }] },
        }),
      );
      const whole = Buffer.concat([part1, part2]);
      expect(done.ETag).to.equal(multipartEtag([part1, part2]));
      expect(done.ETag).to.match(/^"[0-9a-f]{32}-2"$/);
      const got = await alice.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'big/joined.bin' }));
      expect(got.ETag).to.equal(done.ETag);
      expect(got.ContentLength).to.equal(whole.length);
      expect(got.Metadata).to.deep.equal({ kind: 'multipart' });
      expect(sha256(await bodyOf(got))).to.equal(sha256(whole));
      expect(sha256((await v1('GET', '/v1/files/mpu/big/joined.bin')).body), 'the bytes through /v1').to.equal(sha256(whole));
      const after = await alice.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }));
      expect((after.Uploads ?? []).map((u) => u.UploadId), 'a completed upload is no longer listed').to.not.include(UploadId);
      await expectS3Error(alice.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'big/joined.bin', UploadId })), 'NoSuchUpload', 404);
    });

    it('a part uploaded again replaces the earlier one', async () => {
      const { UploadId } = await alice.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'redo.bin' }));
      await alice.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'redo.bin', UploadId, PartNumber: 1, Body: randomBytes(5 * MiB) }));
      const p1 = await alice.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'redo.bin', UploadId, PartNumber: 1, Body: part1 }));
      const p2 = await alice.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'redo.bin', UploadId, PartNumber: 2, Body: part2 }));
      const done = await alice.send(
        new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key: 'redo.bin', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag as string }, { PartNumber: 2, ETag: p2.ETag as string }] } }),
      );
      expect(done.ETag).to.equal(multipartEtag([part1, part2]));
      expect(sha256(await get(alice, 'mpu', 'redo.bin'))).to.equal(sha256(Buffer.concat([part1, part2])));
    });

    it('completing with a part ETag that was not uploaded is InvalidPart (400), and the upload stays open', async () => {
      const { UploadId } = await alice.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'bad-part.bin' }));
      const p1 = await alice.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'bad-part.bin', UploadId, PartNumber: 1, Body: part2 }));
      await expectS3Error(
        alice.send(
          new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key: 'bad-part.bin', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"0123456789abcdef0123456789abcdef"' }] } }),
        ),
        'InvalidPart',
        400,
      );
      await expectS3Error(alice.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'bad-part.bin' })), null, 404);
      const parts = await alice.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'bad-part.bin', UploadId }));
      expect((parts.Parts ?? []).map((p) => p.ETag)).to.deep.equal([p1.ETag]);
      await alice.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'bad-part.bin', UploadId }));
    });

    it('abort: the upload is gone (NoSuchUpload) and no object appears', async () => {
      const { UploadId } = await alice.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'aborted.bin' }));
      const p1 = await alice.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'aborted.bin', UploadId, PartNumber: 1, Body: part2 }));
      expect((await alice.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }))).Uploads?.map((u) => u.UploadId)).to.include(UploadId);
      const aborted = await alice.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'aborted.bin', UploadId }));
      expect(aborted.$metadata.httpStatusCode).to.equal(204);
      await expectS3Error(alice.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'aborted.bin', UploadId })), 'NoSuchUpload', 404, 'ListParts');
      await expectS3Error(alice.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'aborted.bin', UploadId, PartNumber: 2, Body: 'x' })), 'NoSuchUpload', 404, 'UploadPart');
      await expectS3Error(
        alice.send(new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key: 'aborted.bin', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag as string }] } })),
        'NoSuchUpload',
        404,
        'CompleteMultipartUpload',
      );
      expect((await alice.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }))).Uploads?.map((u) => u.UploadId) ?? []).to.not.include(UploadId);
      await expectS3Error(alice.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'aborted.bin' })), null, 404);
    });

    it("another user cannot see, add to or complete alice's upload", async () => {
      const { UploadId } = await alice.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'alices.bin' }));
      // bob may not write in alice's 0755 bucket, and the upload is not his: AccessDenied, or NoSuchUpload for an upload he cannot see.
      const refusals: string[] = [];
      for (const attempt of [
        () => bob.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'alices.bin', UploadId, PartNumber: 1, Body: 'bob' })),
        () => bob.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'alices.bin', UploadId })),
        () => bob.send(new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key: 'alices.bin', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: singlePartEtag('bob') }] } })),
        () => bob.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'alices.bin', UploadId })),
      ]) {
        refusals.push(await (attempt() as Promise<unknown>).then(
          () => 'succeeded',
          (err: { name?: string; $metadata?: { httpStatusCode?: number } }) => `${err.name} ${err.$metadata?.httpStatusCode}`,
        ));
      }
      for (const r of refusals) expect(r, `bob's attempts: ${refusals.join(', ')}`).to.be.oneOf(['AccessDenied 403', 'NoSuchUpload 404']);
      expect((await alice.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'alices.bin', UploadId }))).Parts ?? [], 'no part of bob').to.deep.equal([]);
      await expectS3Error(alice.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'alices.bin' })), null, 404, 'bob completed nothing');
      await alice.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'alices.bin', UploadId }));
    });
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
});
