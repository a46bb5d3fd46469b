import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { KEYS } from '../support/callfs.js';
import { startCluster, type ClusterInstance, type TestCluster } from '../support/cluster.js';
import { bodyOf, expectS3Error, multipartEtag, s3ClientAt, singlePartEtag } from '../support/s3-api.js';
import { ensurePostgres, ensureRedis, requireComponent } from '../support/services.js';

/**
 * The S3 listener (issue 25) on two `callfs server` processes sharing Postgres and Redis: one
 * namespace whichever instance is asked, and multipart requests only where the upload was started.
 */

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

/** The S3 port an instance logged at start ("S3-compatible API is listening", JSON logs). */
function s3PortFromLog(instance: ClusterInstance): number {
  for (const line of (instance.server?.output() ?? '').split('\n')) {
    try {
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === 'S3-compatible API is listening' && typeof entry.port === 'number') return entry.port;
    } catch {
      // not a JSON line
    }
  }
  throw new Error(`instance ${instance.id} logged no S3 port:\n${instance.server?.output() ?? ''}`);
}

describe('S3 API in a cluster of two instances', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  let a: S3Client;
  let b: S3Client;

  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    cluster = await startCluster(['s3-a', 's3-b'], { s3: { listen_addr: '127.0.0.1:0' } });
    const [ia, ib] = cluster.instances as [ClusterInstance, ClusterInstance];
    a = s3ClientAt(`https://127.0.0.1:${s3PortFromLog(ia)}`, cluster.ca, 'alice', KEYS.alice);
    b = s3ClientAt(`https://127.0.0.1:${s3PortFromLog(ib)}`, cluster.ca, 'alice', KEYS.alice);
    await a.send(new CreateBucketCommand({ Bucket: 'shared' }));
  });
  after(async () => {
    a?.destroy();
    b?.destroy();
    await cluster?.stop();
  });

  it('an object put through one instance is listed, read, copied and deleted through the other', async () => {
    const body = randomBytes(2 * MiB + 5);
    const put = await a.send(new PutObjectCommand({ Bucket: 'shared', Key: 'on-a/data.bin', Body: body, Metadata: { from: 'a' } }));
    expect(put.ETag).to.equal(singlePartEtag(body));

    const listed = await b.send(new ListObjectsV2Command({ Bucket: 'shared', Prefix: 'on-a/' }));
    expect((listed.Contents ?? []).map((o) => [o.Key, o.Size, o.ETag])).to.deep.equal([['on-a/data.bin', body.length, singlePartEtag(body)]]);
    const got = await b.send(new GetObjectCommand({ Bucket: 'shared', Key: 'on-a/data.bin' }));
    expect(got.ETag).to.equal(singlePartEtag(body));
    expect(got.Metadata).to.deep.equal({ from: 'a' });
    expect(sha256(await bodyOf(got)), 'bytes stored on a, read through b').to.equal(sha256(body));
    const ranged = await b.send(new GetObjectCommand({ Bucket: 'shared', Key: 'on-a/data.bin', Range: 'bytes=1048570-1048589' }));
    expect((await bodyOf(ranged)).equals(body.subarray(1048570, 1048590))).to.equal(true);

    await b.send(new CopyObjectCommand({ Bucket: 'shared', Key: 'on-b/copy.bin', CopySource: 'shared/on-a/data.bin' }));
    expect(sha256(await bodyOf(await a.send(new GetObjectCommand({ Bucket: 'shared', Key: 'on-b/copy.bin' }))))).to.equal(sha256(body));

    await b.send(new DeleteObjectCommand({ Bucket: 'shared', Key: 'on-a/data.bin' }));
    await expectS3Error(a.send(new HeadObjectCommand({ Bucket: 'shared', Key: 'on-a/data.bin' })), null, 404, 'deleted through b, gone on a');
  });

  it('multipart requests reaching the instance that does not hold the upload are ServiceUnavailable (503); the holder completes it', async () => {
    const part1 = randomBytes(5 * MiB);
    const part2 = randomBytes(MiB + 3);
    const { UploadId } = await a.send(new CreateMultipartUploadCommand({ Bucket: 'shared', Key: 'mp.bin' }));
    await expectS3Error(b.send(new UploadPartCommand({ Bucket: 'shared', Key: 'mp.bin', UploadId, PartNumber: 1, Body: part1 })), 'ServiceUnavailable', 503, 'UploadPart on b');
    const p1 = await a.send(new UploadPartCommand({ Bucket: 'shared', Key: 'mp.bin', UploadId, PartNumber: 1, Body: part1 }));
    const p2 = await a.send(new UploadPartCommand({ Bucket: 'shared', Key: 'mp.bin', UploadId, PartNumber: 2, Body: part2 }));
    const Parts = [
      { PartNumber: 1, ETag: p1.ETag as string },
      { PartNumber: 2, ETag: p2.ETag as string },
    ];
    await expectS3Error(b.send(new ListPartsCommand({ Bucket: 'shared', Key: 'mp.bin', UploadId })), 'ServiceUnavailable', 503, 'ListParts on b');
    await expectS3Error(b.send(new CompleteMultipartUploadCommand({ Bucket: 'shared', Key: 'mp.bin', UploadId, MultipartUpload: { Parts } })), 'ServiceUnavailable', 503, 'Complete on b');
    await expectS3Error(b.send(new HeadObjectCommand({ Bucket: 'shared', Key: 'mp.bin' })), null, 404, 'nothing completed by b');

    const done = await a.send(new CompleteMultipartUploadCommand({ Bucket: 'shared', Key: 'mp.bin', UploadId, MultipartUpload: { Parts } }));
    expect(done.ETag).to.equal(multipartEtag([part1, part2]));
    const got = await b.send(new GetObjectCommand({ Bucket: 'shared', Key: 'mp.bin' }));
    expect(got.ETag).to.equal(done.ETag);
    expect(sha256(await bodyOf(got))).to.equal(sha256(Buffer.concat([part1, part2])));
  });
});
