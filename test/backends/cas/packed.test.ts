import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Image, ImageSet } from '../../../lib/backends/cas/images.js';
import { PackedBlobs } from '../../../lib/backends/cas/segments.js';
import { isCallfsError } from '../../../lib/errors.js';
import { loopMountsAvailable, requireComponent } from '../../support/services.js';
import {
  INSTANCE_ID,
  blobFiles,
  closeAndClean,
  contentFor,
  flipByte,
  makeTempRoot,
  openCas,
  quarantineFiles,
  sha256Hex,
  slowStream,
  type CasUnderTest,
} from '../../support/cas.js';
import { readAll, rejectionOf, streamOf } from '../../contract/backend-contract.js';
import { DurableBlobIndex } from './durable-blob-index.js';
import { PACKED_SEGMENT_BYTES, PACKED_UPLOADS, isKept, packedSize } from './packed-fixtures.js';

const CHILD = fileURLToPath(new URL('./compaction-child.js', import.meta.url));
const KiB = 1024;

function codeOf(err: unknown): string | undefined {
  return isCallfsError(err) ? err.code : undefined;
}

/** Every segment file of every image. */
function segmentFiles(root: string): string[] {
  return readdirSync(join(root, 'volumes')).flatMap((id) => {
    try {
      return readdirSync(join(root, 'volumes', id, 'segments')).map((name) => join(root, 'volumes', id, 'segments', name));
    } catch {
      return [];
    }
  });
}

/** The segment file and offset of a packed blob, from its index row. */
async function placeOf(cas: CasUnderTest, id: string): Promise<{ path: string; offset: number }> {
  const row = await cas.index.getBlob(INSTANCE_ID, id);
  if (row?.packed == null) throw new Error(`${id} is not packed`);
  return { path: join(cas.root, 'volumes', row.imageId, 'segments', `${row.packed.segment}.seg`), offset: row.packed.offset };
}

for (const mode of ['loop', 'dir'] as const) {
  describe(`CAS packed small blobs (${mode} mode)`, function () {
    let root = '';
    let cas: CasUnderTest | undefined;
    const open = async (options: Parameters<typeof openCas>[1] = {}): Promise<CasUnderTest> => {
      cas = await openCas(root, { mode, packBelowBytes: 64 * KiB, ...options });
      return cas;
    };

    before(function () {
      if (mode === 'loop') requireComponent(this, loopMountsAvailable());
    });

    beforeEach(function () {
      root = makeTempRoot(`packed-${mode}`);
    });

    afterEach(async function () {
      await closeAndClean(cas, root);
      cas = undefined;
    });

    it('packs blobs below the threshold into one segment, shares flushes, and keeps larger ones as files', async function () {
      const { backend, index } = await open();
      const small = Array.from({ length: 40 }, (_, i) => contentFor(i, 1 + i * 1000));
      const results = await Promise.all(small.map((data) => backend.put(slowStream(data, 700, 1))));
      const below = randomBytes(64 * KiB - 1);
      const at = randomBytes(64 * KiB);
      const belowId = (await backend.put(streamOf(below, 1000))).id;
      const atId = (await backend.put(streamOf(at, 1000))).id;

      expect(blobFiles(root).map((f) => basename(f))).to.deep.equal([atId]);
      expect(segmentFiles(root)).to.have.length(1);
      for (const [i, data] of small.entries()) {
        expect(results[i]?.id).to.equal(sha256Hex(data));
        expect((await readAll((await backend.open(sha256Hex(data))).stream)).equals(data), `blob ${i}`).to.equal(true);
        expect(await backend.stat(sha256Hex(data))).to.deep.equal({ id: sha256Hex(data), size: data.length });
      }
      expect((await readAll((await backend.open(belowId)).stream)).equals(below)).to.equal(true);
      expect((await readAll((await backend.open(atId)).stream)).equals(at)).to.equal(true);
      expect((await index.getBlob(INSTANCE_ID, belowId))?.packed).to.not.equal(null);
      expect((await index.getBlob(INSTANCE_ID, atId))?.packed).to.equal(null);

      const images = await backend.images();
      expect(images.reduce((n, i) => n + i.packedBlobs, 0)).to.equal(41);
      expect(images.reduce((n, i) => n + i.blobCount, 0)).to.equal(42);
      expect(images.reduce((n, i) => n + i.segments, 0)).to.equal(1);
      const segmentBytes = statSync(segmentFiles(root)[0]!).size;
      expect(images.reduce((n, i) => n + i.segmentBytes, 0)).to.equal(segmentBytes);
      expect(images.reduce((n, i) => n + i.segmentLiveBytes, 0)).to.equal(segmentBytes);
    });

    it('deduplicates packed content, serves ranges, and a 0-byte blob', async function () {
      const { backend } = await open();
      const data = randomBytes(10_000);
      const first = await backend.put(streamOf(data));
      const size = statSync(segmentFiles(root)[0]!).size;
      const again = await Promise.all([backend.put(streamOf(data)), backend.put(streamOf(data, 999))]);
      expect(again.map((r) => r.id)).to.deep.equal([first.id, first.id]);
      expect(statSync(segmentFiles(root)[0]!).size, 'no second record').to.equal(size);

      const range = await backend.open(first.id, { range: { start: 100, end: 199 } });
      expect(range.size).to.equal(10_000);
      expect((await readAll(range.stream)).equals(data.subarray(100, 200))).to.equal(true);
      expect(codeOf(await rejectionOf(backend.open(first.id, { range: { start: 10_000, end: 10_001 } })))).to.equal('RANGE_NOT_SATISFIABLE');

      const empty = await backend.put(streamOf(Buffer.alloc(0)));
      expect((await readAll((await backend.open(empty.id)).stream)).length).to.equal(0);
    });

    it('finds its packed blobs again after a restart', async function () {
      const { backend, index } = await open();
      const data = Array.from({ length: 10 }, (_, i) => contentFor(100 + i, 3000 + i));
      for (const d of data) await backend.put(streamOf(d));
      await backend.close();
      cas = undefined;
      const reopened = await open({ index });
      for (const d of data) expect((await readAll((await reopened.backend.open(sha256Hex(d))).stream)).equals(d)).to.equal(true);
      // New appends go to a new segment, never into one written before.
      await reopened.backend.put(streamOf(randomBytes(500)));
      expect(segmentFiles(root)).to.have.length(2);
    });


    it('deduplicates a small put against a file stored before packing was on, after a restart', async function () {
      const { backend, index } = await open({ packBelowBytes: 0 });
      const data = randomBytes(4 * KiB);
      const id = (await backend.put(streamOf(data))).id;
      expect(blobFiles(root).map((f) => basename(f))).to.deep.equal([id]);
      await backend.close();
      cas = undefined;
      const reopened = await open({ index });
      const again = await reopened.backend.put(streamOf(data));
      expect(again.id).to.equal(id);
      expect(segmentFiles(root), 'no record written for content already stored as a file').to.have.length(0);
      expect((await index.getBlob(INSTANCE_ID, id))?.packed).to.equal(null);
      expect((await readAll((await reopened.backend.open(id)).stream)).equals(data)).to.equal(true);
    });
    it('refuses bad bytes and a damaged header with INTEGRITY_ERROR, quarantines the blob, and heals on a re-upload', async function () {
      const { backend, index } = await open();
      const data = randomBytes(5000);
      const { id } = await backend.put(streamOf(data));
      const place = await placeOf(cas!, id);
      flipByte(place.path, place.offset + 4000);

      const err = await rejectionOf(backend.open(id));
      expect(codeOf(err)).to.equal('INTEGRITY_ERROR');
      expect(String((err as Error).message)).to.match(/CRC32C/);
      expect((await index.getBlob(INSTANCE_ID, id))?.quarantined).to.equal(true);
      expect(quarantineFiles(root).map((f) => basename(f))).to.deep.equal([id]);
      expect(codeOf(await rejectionOf(backend.open(id)))).to.equal('INTEGRITY_ERROR');
      expect(await backend.stat(id)).to.equal(null);

      await backend.put(streamOf(data));
      expect((await readAll((await backend.open(id)).stream)).equals(data)).to.equal(true);
      expect((await index.getBlob(INSTANCE_ID, id))?.quarantined).to.equal(false);

      const other = randomBytes(3000);
      const second = await backend.put(streamOf(other));
      const header = await placeOf(cas!, second.id);
      flipByte(header.path, header.offset - 30);
      expect(codeOf(await rejectionOf(backend.open(second.id)))).to.equal('INTEGRITY_ERROR');
    });

    it('scrubs packed blobs by their SHA-256 and quarantines a bad one', async function () {
      const { backend, index } = await open();
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push((await backend.put(streamOf(contentFor(200 + i, 2000)))).id);
      const bad = ids[2]!;
      const place = await placeOf(cas!, bad);
      flipByte(place.path, place.offset + 10);
      const result = await backend.scrub();
      expect(result).to.include({ checked: 5, ok: 4, corrupted: 1, missing: 0 });
      expect((await index.getBlob(INSTANCE_ID, bad))?.quarantined).to.equal(true);
      expect((await index.getBlob(INSTANCE_ID, ids[0]!))?.lastVerifiedAt).to.not.equal(null);
    });

    it('collects packed blobs, compacts mostly dead segments, and deletes emptied ones only in a later pass', async function () {
      const { backend, index } = await open({ segmentBytes: PACKED_SEGMENT_BYTES, gcGraceMs: 60_000 });
      const ids: string[] = [];
      for (let i = 0; i < PACKED_UPLOADS; i += 8) {
        const batch = await Promise.all(Array.from({ length: 8 }, (_, k) => backend.put(streamOf(contentFor(i + k, packedSize(i + k))))));
        // Unpinned, as once their entries are committed: collectable from now on.
        for (const r of batch) r.release?.();
        ids.push(...batch.map((r) => r.id));
      }
      const before = segmentFiles(root);
      expect(before.length).to.be.greaterThan(3);
      const bytesBefore = before.reduce((n, f) => n + statSync(f).size, 0);
      const old = new Date(Date.now() - 3_600_000);
      for (const [i, id] of ids.entries()) {
        if (isKept(i)) index.setRefCount(INSTANCE_ID, id, 1);
        else index.setTouchedAt(INSTANCE_ID, id, old);
      }

      const first = await backend.gc();
      expect(first.collected).to.equal(ids.filter((_, i) => !isKept(i)).length);
      expect(first.recordsMoved).to.be.greaterThan(0);
      expect(first.segmentsDeleted, 'emptied, not deleted yet').to.equal(0);
      for (const [i, id] of ids.entries()) {
        if (isKept(i)) expect((await readAll((await backend.open(id)).stream)).equals(contentFor(i, packedSize(i))), `kept ${i}`).to.equal(true);
        else expect(codeOf(await rejectionOf(backend.open(id))), `collected ${i}`).to.equal('FILE_NOT_FOUND');
      }

      const second = await backend.gc();
      expect(second.segmentsDeleted).to.be.greaterThan(0);
      expect(second.bytesFreed).to.be.greaterThan(0);
      const images = await backend.images();
      const total = images.reduce((n, i) => n + i.segmentBytes, 0);
      const live = images.reduce((n, i) => n + i.segmentLiveBytes, 0);
      expect(total).to.be.lessThan(bytesBefore / 2);
      expect(live / total, 'live share after compaction').to.be.greaterThan(0.5);
      for (const [i, id] of ids.entries()) {
        if (!isKept(i)) continue;
        expect((await readAll((await backend.open(id)).stream)).equals(contentFor(i, packedSize(i))), `kept ${i}`).to.equal(true);
        // The index names the copy compaction made.
        const place = await placeOf(cas!, id);
        expect(statSync(place.path).size).to.be.greaterThan(place.offset);
      }
    });

    it('leaves a small blob\'s index row to the caller when asked (deferIndex), and keeps its place until the row is written', async function () {
      const { backend, index } = await open({ segmentBytes: PACKED_SEGMENT_BYTES, gcGraceMs: 60_000 });
      const fresh = randomBytes(3000);
      const put = await backend.put(streamOf(fresh), { deferIndex: true });
      expect(put.index?.blob).to.deep.include({ sha256: put.id, instanceId: INSTANCE_ID, size: 3000 });
      expect(put.index?.blob.packed?.segment).to.be.a('number');
      expect(await index.getBlob(INSTANCE_ID, put.id), 'no row until the caller writes it').to.equal(null);
      const twin = await backend.put(streamOf(fresh), { deferIndex: true });
      expect(twin).to.include({ id: put.id });
      expect(twin.index?.blob, 'deduplicated against the record whose row is still to come').to.deep.equal(put.index?.blob);
      await put.index!.write();
      await put.index!.write();
      expect((await index.getBlob(INSTANCE_ID, put.id))?.packed).to.deep.equal(put.index?.blob.packed);
      twin.release?.();
      put.release?.();

      // A row given up (the caller's commit failed): the bytes stay known, and a later put is deduplicated against them.
      const lost = randomBytes(2000);
      const givenUp = await backend.put(streamOf(lost), { deferIndex: true });
      givenUp.release?.();
      expect(await index.getBlob(INSTANCE_ID, givenUp.id)).to.equal(null);
      const later = await backend.put(streamOf(lost));
      later.release?.();
      expect((await index.getBlob(INSTANCE_ID, later.id))?.packed).to.deep.equal(givenUp.index?.blob.packed);
      expect((await readAll((await backend.open(later.id)).stream)).equals(lost)).to.equal(true);

      // A mostly dead, sealed segment whose one live blob has a row still to come: compaction leaves it.
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) {
        const r = await backend.put(streamOf(contentFor(300 + i, 2048)));
        r.release?.();
        ids.push(r.id);
      }
      const kept = ids[0]!;
      const old = new Date(Date.now() - 3_600_000);
      for (const id of ids.slice(1)) index.setTouchedAt(INSTANCE_ID, id, old);
      const pending = await backend.put(streamOf(contentFor(300, 2048)), { deferIndex: true });
      expect(pending.id).to.equal(kept);
      const placeBefore = await placeOf(cas!, kept);
      const first = await backend.gc();
      expect(first.collected).to.be.greaterThan(30);
      expect(await placeOf(cas!, kept), 'not moved while its row is to come').to.deep.equal(placeBefore);
      await backend.gc();
      expect(statSync(placeBefore.path).size, 'its segment is kept').to.be.greaterThan(placeBefore.offset);
      await pending.index!.write();
      pending.release?.();
      await backend.gc();
      expect(await placeOf(cas!, kept), 'moved once its row is written').to.not.deep.equal(placeBefore);
      expect((await readAll((await backend.open(kept)).stream)).equals(contentFor(300, 2048))).to.equal(true);
    });

    it('evicts a packed copy: it is gone for reads, and its bytes are dead', async function () {
      const { backend } = await open();
      const { id, release } = await backend.put(streamOf(randomBytes(4000)));
      expect(await backend.evict(id), 'pinned by its put').to.equal(false);
      release?.();
      expect(await backend.evict(id)).to.equal(true);
      expect(await backend.stat(id)).to.equal(null);
      expect(codeOf(await rejectionOf(backend.open(id)))).to.equal('FILE_NOT_FOUND');
      const images = await backend.images();
      expect(images.reduce((n, i) => n + i.packedBlobs, 0)).to.equal(0);
      expect(images.reduce((n, i) => n + i.segmentLiveBytes, 0)).to.equal(0);
    });
  });
}

/** Run the compaction child to its end, or until it kills itself; resolves to how it ended. */
function runChild(args: string[]): Promise<{ signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (_code, signal) => resolve({ signal, stdout, stderr })));
}

describe('CAS compaction survives kill -9 at every step (dir mode)', function () {
  let root = '';
  let logs = '';
  let cas: CasUnderTest | undefined;

  beforeEach(function () {
    root = makeTempRoot('compaction-crash');
    logs = makeTempRoot('compaction-crash-logs');
  });

  afterEach(async function () {
    await closeAndClean(cas, root);
    cas = undefined;
    rmSync(logs, { recursive: true, force: true });
  });

  for (const [step, nth] of [
    ['copied', 1],
    ['switched', 10],
    ['deleting', 1],
  ] as const) {
    it(`loses nothing when killed at "${step}" #${nth}, and the next collection finishes the job`, async function () {
      const indexLog = join(logs, 'index.jsonl');
      const seeded = await runChild([root, 'dir', indexLog, 'seed']);
      expect(seeded.stdout, seeded.stderr).to.include('done');
      const killed = await runChild([root, 'dir', indexLog, 'compact', step, String(nth)]);
      expect(killed.signal, `killed at ${step}: ${killed.stderr}`).to.equal('SIGKILL');
      expect(killed.stdout).to.not.include('done');

      const index = new DurableBlobIndex(indexLog);
      cas = await openCas(root, { mode: 'dir', index, segmentBytes: PACKED_SEGMENT_BYTES, gcGraceMs: 0 });
      const check = async (when: string): Promise<void> => {
        for (let i = 0; i < PACKED_UPLOADS; i++) {
          if (!isKept(i)) continue;
          const data = contentFor(i, packedSize(i));
          const back = await readAll((await cas!.backend.open(sha256Hex(data))).stream);
          expect(back.equals(data), `kept blob ${i} ${when}`).to.equal(true);
        }
      };
      await check('after the kill');
      await cas.backend.gc();
      await cas.backend.gc();
      await check('after compaction');
      const images = await cas.backend.images();
      const total = images.reduce((n, i) => n + i.segmentBytes, 0);
      const live = images.reduce((n, i) => n + i.segmentLiveBytes, 0);
      expect(live / total, 'no mostly dead segment left').to.be.greaterThan(0.5);
      // No segment is left that nothing names.
      const named = new Set(index.all().filter((r) => r.packed !== null).map((r) => `${r.packed!.segment}.seg`));
      for (const file of segmentFiles(root)) expect(named.has(basename(file)), `${basename(file)} named by the index`).to.equal(true);
    });
  }
});

describe('CAS segment writers', function () {
  let dir = '';
  beforeEach(() => {
    dir = makeTempRoot('segment-writer');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('let go of the open segment of an image that stopped taking writes, once idle, so compaction may take it', async function () {
    const image: Image = { id: 'img-000001', state: 'active', volume: dir, inflight: 0 };
    const packed = new PackedBlobs({} as ImageSet, 64 * 1024, 1024 * 1024);
    const first = await packed.append(image, sha256Hex(Buffer.from('a')), Buffer.from('a'));
    expect(packed.openSegment(image)).to.equal(first.segment);
    image.state = 'sealed';
    const pending = packed.append(image, sha256Hex(Buffer.from('b')), Buffer.from('b'));
    expect(packed.openSegment(image), 'not while an append runs').to.equal(first.segment);
    expect((await pending).segment).to.equal(first.segment);
    // The group commit ends its batch just after its callers hear of it.
    await new Promise((resolve) => setImmediate(resolve));
    expect(packed.openSegment(image), 'idle and sealed').to.equal(null);
    const later = await packed.append(image, sha256Hex(Buffer.from('c')), Buffer.from('c'));
    expect(later.segment, 'a later append starts a new segment').to.be.greaterThan(first.segment);
    packed.close();
  });
});
