import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, type TestServer } from '../support/callfs.js';
import { clusterStack, embeddedStack, type Stack } from '../support/stacks.js';
import { scrape } from '../support/prometheus.js';
import { bodyOf, expectS3Error, s3ApiClient, singlePartEtag, getObjectBytes as get, putObject as put } from '../support/s3-api.js';

/**
 * The S3 listener (issue 25) through @aws-sdk/client-s3, on both stacks: buckets, authentication
 * and permissions, objects. Listing and multipart are in s3-api-listing.test.ts, hand-signed
 * requests and listener settings in s3-api-signatures.test.ts, the client programs in
 * s3-api-clients.test.ts.
 */

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

for (const stack of [embeddedStack, clusterStack] as Stack[]) {
  describe(`S3 API (SDK) — ${stack.name}`, function () {
    this.timeout(120_000);
    let server: TestServer;
    let alice: S3Client;
    let bob: S3Client;
    const v1 = (method: string, path: string, options: { body?: string | Buffer; headers?: Record<string, string>; token?: string } = {}): Promise<TestResponse> =>
      request(`${server.url}${path}`, { method, token: KEYS.alice, ca: server.ca, ...options });

    before(async function () {
      await stack.require(this);
      server = await stack.start({ s3: { listen_addr: '127.0.0.1:0' } });
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

      it("another user's empty bucket: alice may not delete it (the root is sticky), bob may", async () => {
        await bob.send(new CreateBucketCommand({ Bucket: 'bobs-empty' }));
        await expectS3Error(alice.send(new DeleteBucketCommand({ Bucket: 'bobs-empty' })), 'AccessDenied', 403);
        expect((await v1('HEAD', '/v1/files/bobs-empty')).status).to.equal(200);
        await bob.send(new DeleteBucketCommand({ Bucket: 'bobs-empty' }));
        expect((await v1('HEAD', '/v1/files/bobs-empty')).status).to.equal(404);
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

      it('keys the namespace cannot hold are InvalidArgument (400): empty, "." or ".." segments, under a file, onto a directory', async () => {
        await put(alice, 'obj', 'shape/file.txt', 'a file');
        await put(alice, 'obj', 'shape/dir/inside.txt', 'inside');
        for (const Key of ['shape//double', 'shape/./dot', 'shape/../dotdot', 'shape/file.txt/child', 'shape/dir']) {
          await expectS3Error(put(alice, 'obj', Key, 'x'), 'InvalidArgument', 400, Key);
        }
        expect((await get(alice, 'obj', 'shape/file.txt')).toString()).to.equal('a file');
        expect((await get(alice, 'obj', 'shape/dir/inside.txt')).toString()).to.equal('inside');
        expect((await v1('HEAD', '/v1/files/obj/dotdot')).status, 'nothing escaped the prefix').to.equal(404);
      });

      it('a body that does not match its Content-MD5 is BadDigest (400) and nothing is stored', async () => {
        const ContentMD5 = createHash('md5').update('another body').digest('base64');
        await expectS3Error(alice.send(new PutObjectCommand({ Bucket: 'obj', Key: 'bad-digest.txt', Body: 'this body', ContentMD5 })), 'BadDigest', 400);
        await expectS3Error(alice.send(new HeadObjectCommand({ Bucket: 'obj', Key: 'bad-digest.txt' })), null, 404, 'nothing stored');
        const good = createHash('md5').update('this body').digest('base64');
        expect((await alice.send(new PutObjectCommand({ Bucket: 'obj', Key: 'good-digest.txt', Body: 'this body', ContentMD5: good }))).ETag).to.equal(singlePartEtag('this body'));
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

  });
}
