import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { expect } from 'chai';
import type { CasBackend, CasImageInfo } from '../../../lib/backends/cas/index.js';
import { loopMountsAvailable, requireComponent } from '../../support/services.js';
import {
  INSTANCE_ID,
  MiB,
  blobFiles,
  eventually,
  closeAndClean,
  loopDevicesUnder,
  makeTempRoot,
  mountsUnder,
  openCas,
  tmpFiles,
  type CasUnderTest,
} from '../../support/cas.js';
import { readAll, rejectionOf, streamOf } from '../../contract/backend-contract.js';

const stateOf = (images: CasImageInfo[]): Record<string, string> => Object.fromEntries(images.map((i) => [i.id, i.state]));
const count = (images: CasImageInfo[], state: string): number => images.filter((i) => i.state === state).length;

/** Put and unpin at once, as the engine does after its commit: the blob is then the collector's to judge. */
async function putReleased(backend: CasBackend, data: Buffer): Promise<string> {
  const put = await backend.put(streamOf(data));
  put.release?.();
  return put.id;
}

describe('CAS images (loop mode)', function () {
  let root = '';
  let cas: CasUnderTest | undefined;

  before(function () {
    requireComponent(this, loopMountsAvailable());
  });

  beforeEach(function () {
    root = makeTempRoot('images');
  });

  afterEach(async function () {
    const closing = cas;
    cas = undefined;
    await closeAndClean(closing, root);
  });

  it('prepares the next image ahead of time, seals full ones, rolls over, and keeps states across a restart', async function () {
    cas = await openCas(root, { mode: 'loop', imageSizeBytes: 32 * MiB, minFreeBytes: 6 * MiB, minFreeInodes: 64 });
    const { backend } = cas;
    await eventually(async () => count(await backend.images(), 'standby') === 1, 10_000, 'a standby image');

    const first = await backend.images();
    const active = first.find((i) => i.state === 'active');
    expect(active?.path).to.match(/\/images\/img-\d{6}\.img$/);
    expect(active?.mountPoint).to.equal(join(root, 'volumes', active?.id ?? ''));
    expect(active?.inodesTotal).to.equal(2048);
    expect(active?.allocatedBytes).to.be.lessThan(8 * MiB); // sparse: only ext4 metadata so far
    // Loop devices in direct I/O mode: no second copy of every write in the host's page cache.
    const devices = loopDevicesUnder(root);
    expect(devices).to.have.length(2);
    for (const device of devices) expect(readFileSync(`/sys/block/${device.slice('/dev/'.length)}/loop/dio`, 'utf8').trim(), device).to.equal('1');

    const bodies = Array.from({ length: 45 }, () => randomBytes(MiB));
    const ids: string[] = [];
    for (const body of bodies) ids.push((await backend.put(streamOf(body))).id);

    await eventually(async () => count(await backend.images(), 'standby') === 1, 10_000, 'the next standby image');
    const images = await backend.images();
    expect(count(images, 'sealed')).to.be.greaterThanOrEqual(1);
    expect(count(images, 'active')).to.equal(1);
    for (const image of images.filter((i) => i.state === 'sealed')) expect(image.freeBytes).to.be.lessThan(6 * MiB);
    expect(images.reduce((n, i) => n + i.blobCount, 0)).to.equal(45);
    for (const [i, id] of ids.entries()) expect((await readAll((await backend.open(id)).stream)).equals(bodies[i]!)).to.equal(true);

    const manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8')) as { images: { id: string; state: string }[] };
    expect(Object.fromEntries(manifest.images.map((e) => [e.id, e.state]))).to.deep.equal(stateOf(images));
    const gauge = await cas.metrics.casImages.get();
    expect(gauge.values.find((v) => v.labels.state === 'sealed')?.value).to.equal(count(images, 'sealed'));

    await backend.close();
    expect(mountsUnder(root)).to.deep.equal([]);
    expect(loopDevicesUnder(root)).to.deep.equal([]);

    cas = await openCas(root, { mode: 'loop', imageSizeBytes: 32 * MiB, minFreeBytes: 6 * MiB, minFreeInodes: 64 });
    expect(stateOf(await cas.backend.images())).to.deep.equal(stateOf(images));
    for (const [i, id] of ids.entries()) expect((await readAll((await cas.backend.open(id)).stream)).equals(bodies[i]!)).to.equal(true);
  });

  it('refuses an upload no image can hold with INSUFFICIENT_STORAGE, keeps nothing of it, and the image keeps taking uploads', async function () {
    cas = await openCas(root, { mode: 'loop', imageSizeBytes: 32 * MiB, minFreeBytes: 2 * MiB, minFreeInodes: 64 });
    const { backend, index } = cas;
    await eventually(async () => count(await backend.images(), 'standby') === 1, 10_000, 'a standby image');
    const before = (await backend.images()).find((i) => i.state === 'active')!;
    const written = async (): Promise<number> => (await cas!.metrics.casWrittenBytes.get()).values.reduce((n, v) => n + v.value, 0);
    const err = (await rejectionOf(backend.put(streamOf(randomBytes(40 * MiB))))) as { code?: string; retryAfterSeconds?: number };
    expect(err.code).to.equal('INSUFFICIENT_STORAGE');
    expect(err.retryAfterSeconds).to.equal(undefined);
    // It was written until the image filled up, then removed, and the host got the blocks back.
    expect(await written()).to.be.greaterThan(16 * MiB);
    expect(tmpFiles(root)).to.deep.equal([]);
    expect(blobFiles(root)).to.deep.equal([]);
    expect(index.all()).to.deep.equal([]);
    const after = async (): Promise<CasImageInfo> => (await backend.images()).find((i) => i.id === before.id)!;
    expect((await after()).state).to.equal('active');
    // ext4 discards freed blocks from a worker, just after the commit that the removal forced.
    await eventually(async () => ((await after()).allocatedBytes ?? Infinity) < (before.allocatedBytes ?? 0) + MiB, 5_000, 'the image file to shrink back on the host');

    const data = randomBytes(MiB);
    const { id } = await backend.put(streamOf(data));
    expect((await index.getBlob(INSTANCE_ID, id))?.imageId).to.equal(before.id);
    expect((await readAll((await backend.open(id)).stream)).equals(data)).to.equal(true);
  });

  it('gives the blocks of an upload cut off by its size limit or by its caller back to the host', async function () {
    cas = await openCas(root, { mode: 'loop', imageSizeBytes: 64 * MiB, minFreeBytes: 4 * MiB, minFreeInodes: 64 });
    const { backend } = cas;
    const active = (await backend.images()).find((i) => i.state === 'active')!;
    const allocated = async (): Promise<number> => (await backend.images()).find((i) => i.id === active.id)?.allocatedBytes ?? Infinity;
    const written = async (): Promise<number> => (await cas!.metrics.casWrittenBytes.get()).values.reduce((n, v) => n + v.value, 0);

    const tooLarge = (await rejectionOf(backend.put(streamOf(randomBytes(24 * MiB)), { maxBytes: 20 * MiB }))) as { code?: string };
    expect(tooLarge.code).to.equal('PAYLOAD_TOO_LARGE');
    const controller = new AbortController();
    const body = new PassThrough();
    const aborted = backend.put(body, { signal: controller.signal });
    for (let i = 0; i < 12; i++) body.write(randomBytes(MiB));
    await eventually(async () => (await written()) >= 28 * MiB, 5_000, 'the second upload to be on disk');
    controller.abort(new Error('the client went away'));
    await rejectionOf(aborted);

    expect(tmpFiles(root)).to.deep.equal([]);
    await eventually(async () => (await allocated()) < (active.allocatedBytes ?? 0) + MiB, 5_000, 'the image file to shrink back on the host');
  });

  it('seals an image that fills up during an upload (503, Retry-After 1 s); the retry goes into the next image', async function () {
    cas = await openCas(root, { mode: 'loop', imageSizeBytes: 32 * MiB, minFreeBytes: 2 * MiB, minFreeInodes: 64 });
    const { backend, index } = cas;
    await eventually(async () => count(await backend.images(), 'standby') === 1, 10_000, 'a standby image');
    const first = (await backend.images()).find((i) => i.state === 'active')!;
    const kept = await backend.put(streamOf(randomBytes(20 * MiB)));
    expect((await backend.images()).find((i) => i.id === first.id)?.state, 'room left above the watermark').to.equal('active');

    const body = randomBytes(20 * MiB);
    const err = (await rejectionOf(backend.put(streamOf(body)))) as { code?: string; retryAfterSeconds?: number };
    expect(err.code).to.equal('SERVICE_UNAVAILABLE');
    expect(err.retryAfterSeconds).to.equal(1);
    expect(tmpFiles(root)).to.deep.equal([]);
    expect(blobFiles(root).map((f) => f.split('/').at(-1))).to.deep.equal([kept.id]);
    expect((await backend.images()).find((i) => i.id === first.id)?.state).to.equal('sealed');

    const { id } = await backend.put(streamOf(body));
    expect((await index.getBlob(INSTANCE_ID, id))?.imageId).to.not.equal(first.id);
    expect((await readAll((await backend.open(id)).stream)).equals(body)).to.equal(true);
  });

  it('returns the space of collected blobs to the host', async function () {
    cas = await openCas(root, { mode: 'loop', imageSizeBytes: 128 * MiB, minFreeBytes: 8 * MiB });
    const { backend, index } = cas;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await putReleased(backend, randomBytes(8 * MiB)));
    const activeId = (await backend.images()).find((i) => i.state === 'active')?.id;
    const allocated = async (): Promise<number> => (await backend.images()).find((i) => i.id === activeId)?.allocatedBytes ?? 0;
    const before = await allocated();
    expect(before).to.be.greaterThan(32 * MiB);

    for (const id of ids) index.setTouchedAt(INSTANCE_ID, id, new Date(Date.now() - 60_000));
    const result = await backend.gc();
    expect(result).to.deep.equal({ collected: 4, bytesFreed: 32 * MiB, trimmedImages: 1, recordsMoved: 0, segmentsDeleted: 0 });
    const after = await allocated();
    expect(before - after).to.be.greaterThanOrEqual(30 * MiB);
  });
});

describe('CAS images (loop mode): retiring', function () {
  let root = '';
  let cas: CasUnderTest | undefined;

  before(function () {
    requireComponent(this, loopMountsAvailable());
  });

  afterEach(async function () {
    const closing = cas;
    cas = undefined;
    await closeAndClean(closing, root);
  });

  it('removes a sealed image once the collector has emptied it, and keeps the others', async function () {
    root = makeTempRoot('retire');
    cas = await openCas(root, { mode: 'loop', imageSizeBytes: 32 * MiB, minFreeBytes: 6 * MiB, minFreeInodes: 64 });
    const { backend, index } = cas;
    const ids: string[] = [];
    while (count(await backend.images(), 'sealed') === 0) ids.push(await putReleased(backend, randomBytes(MiB)));
    const sealed = (await backend.images()).find((i) => i.state === 'sealed')!;
    const kept = await putReleased(backend, randomBytes(MiB));
    index.setRefCount(INSTANCE_ID, kept, 1);
    // The seal promoted the standby and started making the next one in the background; until that is
    // done the manifest, the mounts and the loop devices hold an image that images() does not list yet.
    await eventually(async () => count(await backend.images(), 'standby') === 1, 10_000, 'the next standby image');

    for (const id of [...ids, kept]) index.setTouchedAt(INSTANCE_ID, id, new Date(Date.now() - 60_000));
    const result = await backend.gc();
    expect(result.collected).to.equal(ids.length);

    const after = await backend.images();
    expect(after.map((i) => i.id)).to.not.include(sealed.id);
    expect(existsSync(sealed.path)).to.equal(false);
    const manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8')) as { images: { id: string }[] };
    expect(manifest.images.map((e) => e.id)).to.deep.equal(after.map((i) => i.id));
    expect(mountsUnder(join(root, 'volumes'))).to.have.length(after.length);
    expect(loopDevicesUnder(root)).to.have.length(after.length);
    await readAll((await backend.open(kept)).stream);
  });
});

describe('CAS images (dir mode)', function () {
  let root = '';
  let cas: CasUnderTest | undefined;

  afterEach(async function () {
    const closing = cas;
    cas = undefined;
    await closeAndClean(closing, root);
  });

  it('keeps one active directory image with the same layout', async function () {
    root = makeTempRoot('images-dir');
    cas = await openCas(root, { mode: 'dir' });
    expect(cas.backend.mode).to.equal('dir');
    await cas.backend.put(streamOf(randomBytes(1000)));
    const images = await cas.backend.images();
    expect(images).to.have.length(1);
    expect(images[0]).to.deep.include({ state: 'active', blobCount: 1, allocatedBytes: null, path: join(root, 'volumes', images[0]!.id) });
    expect(images[0]!.freeBytes).to.be.greaterThan(0);
  });
});
