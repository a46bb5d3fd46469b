import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { INSTANCE_ID, blobFiles, closeAndClean, eventually, makeTempRoot, openCas, type CasUnderTest } from '../../support/cas.js';
import { MemoryBlobIndex } from '../../fakes/memory-blob-index.js';
import { readAll, rejectionOf, streamOf } from '../../contract/backend-contract.js';

describe('CAS under space pressure (dir mode)', function () {
  let root = '';
  let cas: CasUnderTest | undefined;

  beforeEach(function () {
    root = makeTempRoot('pressure');
  });

  afterEach(async function () {
    const closing = cas;
    cas = undefined;
    await closeAndClean(closing, root);
  });

  it('never collects a blob a put handed out before its caller releases it, even without a grace period (dedup race)', async function () {
    // gcGraceMs 0 is what an urgent collection under pressure does.
    cas = await openCas(root, { mode: 'dir', gcGraceMs: 0 });
    const { backend, index } = cas;
    const data = randomBytes(300_000);
    const first = await backend.put(streamOf(data));
    // Its file was deleted since: unreferenced, and collectable at once.
    first.release?.();

    // A second upload of the same bytes deduplicates onto the stored blob; its
    // metadata commit (which would make the blob referenced) is held back.
    const dedup = await backend.put(streamOf(data));
    expect(dedup.id).to.equal(first.id);
    index.setTouchedAt(INSTANCE_ID, dedup.id, new Date(Date.now() - 60_000));
    const during = await backend.gc();
    expect(during.collected).to.equal(0);
    expect((await readAll((await backend.open(dedup.id)).stream)).equals(data)).to.equal(true);

    // Committed now: the blob is referenced and stays; had it failed, the next collection takes it.
    dedup.release?.();
    index.setRefCount(INSTANCE_ID, dedup.id, 1);
    expect((await backend.gc()).collected).to.equal(0);
    index.setRefCount(INSTANCE_ID, dedup.id, 0);
    expect((await backend.gc()).collected).to.equal(1);
    expect(blobFiles(root)).to.deep.equal([]);
  });

  it('collects unreferenced blobs at once, without waiting for the grace period, when an upload is refused for want of room', async function () {
    const index = new MemoryBlobIndex();
    cas = await openCas(root, { mode: 'dir', index, gcGraceMs: 60 * 60 * 1000 });
    const put = await cas.backend.put(streamOf(randomBytes(100_000)));
    put.release?.();
    const file = blobFiles(root)[0]!;
    await cas.backend.close();

    // The same store, now asked to keep more free than the host has: every upload is refused.
    cas = await openCas(root, { mode: 'dir', index, gcGraceMs: 60 * 60 * 1000, minFreeBytes: Number.MAX_SAFE_INTEGER });
    const err = (await rejectionOf(cas.backend.put(streamOf(randomBytes(1000))))) as { code?: string; retryAfterSeconds?: number };
    expect(err.code).to.equal('INSUFFICIENT_STORAGE');
    expect(err.retryAfterSeconds).to.equal(undefined);
    await eventually(() => !existsSync(file), 5_000, 'the unreferenced blob to be collected');
    expect(await index.getBlob(INSTANCE_ID, put.id)).to.equal(null);
    expect(await cas.backend.check()).to.equal('full');
  });
});
