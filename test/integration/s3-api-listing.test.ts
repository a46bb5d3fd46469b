import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Upload } from '@aws-sdk/lib-storage';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, type TestServer } from '../support/callfs.js';
import { clusterStack, embeddedStack, type Stack } from '../support/stacks.js';
import { bodyOf, expectS3Error, multipartEtag, s3ApiClient, singlePartEtag, splitParts, getObjectBytes as get, putObject as put } from '../support/s3-api.js';

/** The S3 listener (issue 25) through @aws-sdk/client-s3, on both stacks: listing and multipart uploads. */

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

for (const stack of [embeddedStack, clusterStack] as Stack[]) {
  describe(`S3 API (SDK) listing and multipart — ${stack.name}`, function () {
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

      it('@aws-sdk/lib-storage Upload of a stream (aws-chunked parts with CRC32 trailers) gives the "-3" ETag and the bytes', async () => {
      const whole = randomBytes(12 * MiB + 7);
      const upload = new Upload({ client: alice, params: { Bucket: 'mpu', Key: 'lib-storage.bin', Body: Readable.from(splitParts(whole, 64 * 1024)) }, partSize: 5 * MiB, queueSize: 2 });
      const done = await upload.done();
      expect(done.ETag).to.equal(multipartEtag(splitParts(whole, 5 * MiB)));
      expect(sha256(await get(alice, 'mpu', 'lib-storage.bin'))).to.equal(sha256(whole));
    });

    it('PutObject of a stream of known length (aws-chunked with a CRC32 trailer) stores the decoded bytes', async () => {
      const whole = randomBytes(3 * MiB + 1);
      const res = await alice.send(new PutObjectCommand({ Bucket: 'mpu', Key: 'streamed.bin', Body: Readable.from(splitParts(whole, 100_000)), ContentLength: whole.length }));
      expect(res.ETag).to.equal(singlePartEtag(whole));
      expect(sha256(await get(alice, 'mpu', 'streamed.bin'))).to.equal(sha256(whole));
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

  });
}
