import { readdirSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { expect } from 'chai';
import { canSendDirect, type DirectSend } from '../../../lib/backends/types.js';
import { loopMountsAvailable, requireComponent } from '../../support/services.js';
import {
  INSTANCE_ID,
  MiB,
  blobFiles,
  eventually,
  closeAndClean,
  flipByte,
  makeTempRoot,
  openCas,
  quarantineFiles,
  sha256Hex,
  tmpFiles,
  type CasUnderTest,
} from '../../support/cas.js';
import { readAll, rejectionOf, streamOf } from '../../contract/backend-contract.js';

/** The file of a stored blob (flipByte then damages it, as bit rot or a stray writer would). */
const blobFileOf = (root: string, sha: string): string => {
  const file = blobFiles(root).find((f) => basename(f) === sha);
  if (file === undefined) throw new Error(`no file for ${sha}`);
  return file;
};

/**
 * A slow writer, as a socket under backpressure is: each write completes a
 * few ms later, and the chunk is checked then to be what it was when it was
 * written (the writer may keep referring to it until its callback).
 */
class SlowCheckingSink extends Writable {
  readonly received: Buffer[] = [];
  changedBeforeDone = 0;
  constructor(private readonly delayMs: number) {
    super({ highWaterMark: 16 * 1024 });
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    const atWrite = sha256Hex(chunk);
    setTimeout(() => {
      if (sha256Hex(chunk) !== atWrite) this.changedBeforeDone++;
      this.received.push(Buffer.from(chunk));
      callback();
    }, this.delayMs);
  }
}

const direct = (stream: Readable): Readable & DirectSend => {
  if (!canSendDirect(stream)) expect.fail('a CAS read stream can send itself');
  return stream;
};

/** Resolves when the sink finished (true) or closed without finishing (false). */
const outcomeOf = (sink: Writable): Promise<boolean> =>
  new Promise((resolve) => {
    sink.once('finish', () => resolve(true));
    sink.once('close', () => resolve(sink.writableFinished));
  });

/** What this process's file descriptors point at (a deleted file reads "<path> (deleted)"). */
const openFiles = (): string[] =>
  readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return []; // closed meanwhile (the directory listing's own descriptor)
    }
  });

/** How many of this process's file descriptors are open on `path`. */
const fdsOn = (path: string): number => openFiles().filter((target) => target === path).length;

/** This process's descriptors on files under `root` (also deleted ones), other than the root lock. */
const fdsUnder = (root: string): string[] => openFiles().filter((target) => target.startsWith(`${root}/`) && !target.endsWith('/.lock'));

const codeOf = (err: unknown): unknown => (err as { code?: unknown } | undefined)?.code;

async function counter(cas: CasUnderTest, name: 'casIntegrityErrors' | 'casBlobsCollected' | 'casBytesScrubbed'): Promise<number> {
  const metric = await cas.metrics[name].get();
  return metric.values[0]?.value ?? 0;
}

for (const mode of ['loop', 'dir'] as const) {
  describe(`CAS store behaviour (${mode} mode)`, function () {
    let root = '';
    let cas: CasUnderTest | undefined;
    const backend = (): CasUnderTest => {
      if (cas === undefined) throw new Error('no CAS');
      return cas;
    };

    before(function () {
      if (mode === 'loop') requireComponent(this, loopMountsAvailable());
    });

    beforeEach(async function () {
      root = makeTempRoot(`store-${mode}`);
      // Blobs as files of their own here; packed ones are packed.test.ts's.
      cas = await openCas(root, { mode, imageSizeBytes: 256 * MiB, minFreeBytes: 16 * MiB, packBelowBytes: 0 });
    });

    afterEach(async function () {
      const closing = cas;
      cas = undefined;
      await closeAndClean(closing, root);
    });

    describe('dedup', function () {
      it('stores 50 concurrent identical uploads once, with one index row', async function () {
        const { backend: cas, index, metrics } = backend();
        const data = randomBytes(1 * MiB + 13);
        const results = await Promise.all(Array.from({ length: 50 }, () => cas.put(streamOf(data, 50_000))));
        const sha = sha256Hex(data);
        expect(new Set(results.map((r) => r.id))).to.deep.equal(new Set([sha]));
        expect(blobFiles(root).map((f) => basename(f))).to.deep.equal([sha]);
        expect(tmpFiles(root)).to.deep.equal([]);
        expect(index.all().map((r) => r.sha256)).to.deep.equal([sha]);
        const ops = await metrics.backendOperations.get();
        const dedups = ops.values.find((v) => v.labels.operation === 'put' && v.labels.outcome === 'dedup')?.value;
        expect(dedups).to.equal(49);
        expect((await readAll((await cas.open(sha)).stream)).equals(data)).to.equal(true);
      });
    });

    describe('an upload of a stored blob\'s length (compared with it as it arrives)', function () {
      const written = async (): Promise<number> => (await backend().metrics.casWrittenBytes.get()).values.reduce((sum, v) => sum + v.value, 0);
      const dedups = async (): Promise<number> =>
        (await backend().metrics.backendOperations.get()).values.find((v) => v.labels.operation === 'put' && v.labels.outcome === 'dedup')?.value ?? 0;

      it('writes nothing for the same bytes, and writes them all without a declared length', async function () {
        const { backend: cas, index } = backend();
        const data = randomBytes(5 * MiB + 333);
        const sha = sha256Hex(data);
        await cas.put(streamOf(data));
        const before = await written();
        const again = await cas.put(streamOf(data, 70_000), { expectedSize: data.length });
        expect(again.id).to.equal(sha);
        expect(await written()).to.equal(before);
        expect(await dedups()).to.equal(1);
        // The same upload with no length declared is written (and then dropped): what the comparison saves.
        await cas.put(streamOf(data));
        expect(await written()).to.equal(before + data.length);
        expect(blobFiles(root).map((f) => basename(f))).to.deep.equal([sha]);
        expect(tmpFiles(root)).to.deep.equal([]);
        expect(index.all().map((r) => r.sha256)).to.deep.equal([sha]);
        expect((await readAll((await cas.open(sha)).stream)).equals(data)).to.equal(true);
        await eventually(async () => fdsUnder(root).length === 0, 2000, 'no descriptor left open in the CAS');
      });

      it('stores other bytes of the same length whole, wherever they first differ', async function () {
        const { backend: cas } = backend();
        const original = randomBytes(3 * MiB + 100);
        await cas.put(streamOf(original));
        // The first byte, inside the first batch, on a batch's edge, in a later batch, the last byte.
        for (const [at, chunk] of [[0, 64 * 1024], [17, 1000], [MiB, 64 * 1024], [2 * MiB + 5, 300_000], [original.length - 1, 64 * 1024]] as const) {
          const other = Buffer.from(original);
          other[at] = (other[at] as number) ^ 0x5a;
          const put = await cas.put(streamOf(other, chunk), { expectedSize: other.length });
          expect(put.id, `differing at ${at}`).to.equal(sha256Hex(other));
          expect((await readAll((await cas.open(put.id)).stream)).equals(other), `differing at ${at}`).to.equal(true);
        }
        expect((await readAll((await cas.open(sha256Hex(original))).stream)).equals(original)).to.equal(true);
        expect(blobFiles(root)).to.have.length(6);
        expect(tmpFiles(root)).to.deep.equal([]);
        await eventually(async () => fdsUnder(root).length === 0, 2000, 'no descriptor left open in the CAS');
      });

      it('hashes the body in order when more of it arrives while the matched bytes are copied', async function () {
        const { backend: cas } = backend();
        const original = randomBytes(6 * MiB);
        await cas.put(streamOf(original));
        const other = Buffer.from(original);
        other[4 * MiB + 3] = (other[4 * MiB + 3] as number) ^ 1;
        // 32 KiB every millisecond: chunks keep arriving while the 4 MiB that matched are copied.
        let offset = 0;
        const trickle = new Readable({
          read() {
            setTimeout(() => {
              this.push(offset >= other.length ? null : other.subarray(offset, (offset += 32 * 1024)));
            }, 1);
          },
        });
        const put = await cas.put(trickle, { expectedSize: other.length });
        expect(put.id).to.equal(sha256Hex(other));
        expect((await readAll((await cas.open(put.id)).stream)).equals(other)).to.equal(true);
      });

      it('stores a shorter or longer body than the one it was compared with whole', async function () {
        const { backend: cas } = backend();
        const original = randomBytes(2 * MiB + 10);
        await cas.put(streamOf(original));
        // A declared length the body does not keep to (the HTTP layer refuses these; other callers may not).
        const shorter = original.subarray(0, original.length - 10);
        const longer = Buffer.concat([original, randomBytes(10)]);
        for (const body of [shorter, longer]) {
          const put = await cas.put(streamOf(body), { expectedSize: original.length });
          expect(put.id).to.equal(sha256Hex(body));
          expect((await readAll((await cas.open(put.id)).stream)).equals(body)).to.equal(true);
        }
        expect(tmpFiles(root)).to.deep.equal([]);
      });

      it('writes the bytes when the stored blob they matched throughout is not what its name says', async function () {
        const { backend: cas } = backend();
        const original = randomBytes(2 * MiB + 4096);
        const sha = sha256Hex(original);
        await cas.put(streamOf(original));
        // The stored copy rots; an upload of exactly the rotten bytes matches it byte for byte.
        flipByte(blobFileOf(root, sha), 12345);
        const rotten = Buffer.from(original);
        rotten[12345] = (rotten[12345] as number) ^ 0xff;
        const before = await written();
        const put = await cas.put(streamOf(rotten), { expectedSize: rotten.length });
        expect(put.id).to.equal(sha256Hex(rotten));
        expect(await dedups()).to.equal(0);
        expect(await written()).to.equal(before + rotten.length);
        expect((await readAll((await cas.open(put.id)).stream)).equals(rotten)).to.equal(true);
        expect(tmpFiles(root)).to.deep.equal([]);
      });

      it('leaves nothing behind when the body fails while it is compared, and the stored blob intact', async function () {
        const { backend: cas } = backend();
        const original = randomBytes(4 * MiB);
        await cas.put(streamOf(original));
        const body = new PassThrough();
        body.write(original.subarray(0, 2 * MiB));
        const failed = cas.put(body, { expectedSize: original.length });
        await new Promise((r) => setTimeout(r, 100));
        body.destroy(new Error('body broke'));
        expect(String(await rejectionOf(failed))).to.contain('body broke');
        expect(tmpFiles(root)).to.deep.equal([]);
        await eventually(async () => fdsUnder(root).length === 0, 2000, 'no descriptor left open in the CAS');
        expect((await readAll((await cas.open(sha256Hex(original))).stream)).equals(original)).to.equal(true);
      });
    });

    describe('a body that failed before the CAS reads it', function () {
      it('is refused at once with its own error, and leaves no temp file', async function () {
        const { backend: cas } = backend();
        const failed = new PassThrough();
        failed.on('error', () => {});
        failed.destroy(new Error('the client went away before the CAS was ready'));
        await new Promise((r) => setImmediate(r));
        const err = await rejectionOf(cas.put(failed));
        expect((err as Error).message).to.equal('the client went away before the CAS was ready');
        const closed = new PassThrough();
        closed.destroy();
        await new Promise((r) => setImmediate(r));
        expect(await rejectionOf(cas.put(closed))).to.be.instanceOf(Error);
        expect(tmpFiles(root)).to.deep.equal([]);
      });
    });

    describe('descriptors', function () {
      it('closes every file it opens: new blob, dedup, refused, aborted and failed puts, refused and finished reads', async function () {
        const { backend: cas } = backend();
        const data = randomBytes(3 * MiB + 5);
        const { id } = await cas.put(streamOf(data));
        await cas.put(streamOf(data));
        expect(codeOf(await rejectionOf(cas.put(streamOf(randomBytes(4096)), { maxBytes: 100 })))).to.equal('PAYLOAD_TOO_LARGE');
        // Bodies that send 2 MiB (one batch is written, the temp file is open) and then stall.
        const stalling = (): Readable => {
          const body = new PassThrough();
          body.write(randomBytes(2 * MiB));
          return body;
        };
        const controller = new AbortController();
        const aborted = cas.put(stalling(), { signal: controller.signal });
        await eventually(async () => tmpFiles(root).length === 1, 2000, 'the upload has its temp file');
        controller.abort(new Error('client went away'));
        expect(String(await rejectionOf(aborted))).to.contain('client went away');
        const failing = stalling();
        const failed = cas.put(failing);
        await eventually(async () => tmpFiles(root).length === 1, 2000, 'the upload has its temp file');
        failing.destroy(new Error('body broke'));
        expect(String(await rejectionOf(failed))).to.contain('body broke');
        expect(codeOf(await rejectionOf(cas.open(id, { range: { start: data.length, end: data.length + 1 } })))).to.equal('RANGE_NOT_SATISFIABLE');
        expect((await readAll((await cas.open(id)).stream)).equals(data)).to.equal(true);
        expect((await readAll((await cas.open(id, { range: { start: 1, end: 9 } })).stream)).equals(data.subarray(1, 10))).to.equal(true);
        expect(tmpFiles(root)).to.deep.equal([]);
        await eventually(async () => fdsUnder(root).length === 0, 2000, 'no descriptor left open in the CAS');
      });
    });

    describe('sendTo (how HTTP responses are served)', function () {
      it('writes several blobs at once through slow writers, byte-exact, never touching a buffer before its write is done', async function () {
        const { backend: cas } = backend();
        const blobs = [randomBytes(3 * MiB + 517), randomBytes(2 * MiB), randomBytes(70_000)];
        const ids = await Promise.all(blobs.map(async (data) => (await cas.put(streamOf(data))).id));
        // Two rounds: the second runs on buffers the first gave back.
        for (let round = 0; round < 2; round++) {
          const sinks = blobs.map(() => new SlowCheckingSink(3));
          const errors: Error[] = [];
          const opened = await Promise.all(ids.map((id) => cas.open(id, { sha256: id })));
          const outcomes = sinks.map(outcomeOf);
          opened.forEach((o, i) => direct(o.stream).sendTo(sinks[i]!, (err) => errors.push(err)));
          expect(await Promise.all(outcomes)).to.deep.equal([true, true, true]);
          expect(errors).to.deep.equal([]);
          sinks.forEach((sink, i) => {
            expect(sink.changedBeforeDone, `round ${round}, blob ${i}: chunks changed before their write was done`).to.equal(0);
            expect(Buffer.concat(sink.received).equals(blobs[i]!), `round ${round}, blob ${i}`).to.equal(true);
          });
        }
      });

      it('sends a range, and a 0-byte blob, and closes the file each time', async function () {
        const { backend: cas } = backend();
        const data = randomBytes(2 * MiB + 3);
        const { id } = await cas.put(streamOf(data));
        const { id: empty } = await cas.put(streamOf(Buffer.alloc(0)));
        const ranged = new SlowCheckingSink(1);
        const opened = await cas.open(id, { range: { start: MiB - 1, end: 2 * MiB + 1 } });
        const rangedDone = outcomeOf(ranged);
        direct(opened.stream).sendTo(ranged, (err) => expect.fail(String(err)));
        expect(await rangedDone).to.equal(true);
        expect(Buffer.concat(ranged.received).equals(data.subarray(MiB - 1, 2 * MiB + 2))).to.equal(true);

        const none = new SlowCheckingSink(1);
        const noneDone = outcomeOf(none);
        direct((await cas.open(empty, { sha256: empty })).stream).sendTo(none, (err) => expect.fail(String(err)));
        expect(await noneDone).to.equal(true);
        expect(none.received).to.deep.equal([]);
        await eventually(async () => fdsOn(blobFileOf(root, id)) + fdsOn(blobFileOf(root, empty)) === 0, 2000, 'blob files closed');
      });

      it('breaks the transfer on flipped bytes: the writer is destroyed, never finished, and never gets the last chunk', async function () {
        const { backend: cas } = backend();
        const data = randomBytes(3 * MiB);
        const { id } = await cas.put(streamOf(data));
        flipByte(blobFileOf(root, id), data.length - 10);
        const sink = new SlowCheckingSink(1);
        const errors: unknown[] = [];
        const done = outcomeOf(sink);
        direct((await cas.open(id, { sha256: id })).stream).sendTo(sink, (err) => errors.push(err));
        expect(await done, 'the writer must not be ended cleanly').to.equal(false);
        expect(sink.destroyed).to.equal(true);
        expect(errors.map(codeOf)).to.deep.equal(['INTEGRITY_ERROR']);
        expect(Buffer.concat(sink.received).length).to.be.at.most(2 * MiB);
      });

      it('stops reading and closes the file when the writer goes away first', async function () {
        const { backend: cas } = backend();
        const data = randomBytes(4 * MiB);
        const { id } = await cas.put(streamOf(data));
        const sink = new SlowCheckingSink(2);
        const opened = await cas.open(id, { sha256: id });
        expect(fdsOn(blobFileOf(root, id))).to.equal(1);
        const closed = new Promise((resolve) => opened.stream.once('close', resolve));
        sink.once('drain', () => sink.destroy());
        const errors: unknown[] = [];
        direct(opened.stream).sendTo(sink, (err) => errors.push(err));
        await closed;
        expect(errors).to.deep.equal([]);
        expect(sink.received.length).to.be.lessThan(4);
        await eventually(async () => fdsOn(blobFileOf(root, id)) === 0, 2000, 'blob file closed');
      });
    });

    describe('integrity', function () {
      it('breaks a full read of flipped bytes with INTEGRITY_ERROR and never releases the last chunk', async function () {
        const { backend: cas, index } = backend();
        const data = randomBytes(3 * MiB);
        const { id } = await cas.put(streamOf(data));
        flipByte(blobFileOf(root, id), 100);

        const opened = await cas.open(id);
        let received = 0;
        const err = await rejectionOf(
          (async () => {
            for await (const chunk of opened.stream) received += (chunk as Buffer).length;
          })(),
        );
        expect(codeOf(err)).to.equal('INTEGRITY_ERROR');
        expect(received).to.be.lessThan(data.length);
        expect(await counter(backend(), 'casIntegrityErrors')).to.equal(1);

        // Quarantined: out of blobs/, flagged in the index, later opens fail before the first byte.
        // Quarantine runs in the background once the stream has failed.
        await eventually(async () => (await index.getBlob(INSTANCE_ID, id))?.quarantined === true, 5000, 'quarantine flag');
        expect(quarantineFiles(root).map((f) => basename(f))).to.deep.equal([id]);
        expect(blobFiles(root)).to.deep.equal([]);
        expect(codeOf(await rejectionOf(cas.open(id)))).to.equal('INTEGRITY_ERROR');
        expect(await cas.stat(id)).to.equal(null);

        // Uploading the good bytes again heals it.
        await cas.put(streamOf(data));
        expect((await readAll((await cas.open(id)).stream)).equals(data)).to.equal(true);
        expect((await index.getBlob(INSTANCE_ID, id))?.quarantined).to.equal(false);
      });

      it('refuses to open a corrupted blob that one read takes: INTEGRITY_ERROR, quarantined by then, file closed', async function () {
        const { backend: cas, index } = backend();
        // 5000 bytes get a buffer of their own, 1 MiB (the read size) a pooled one: both are verified in open().
        for (const size of [5000, MiB]) {
          const { id } = await cas.put(streamOf(randomBytes(size)));
          flipByte(blobFileOf(root, id), size - 1);
          expect(codeOf(await rejectionOf(cas.open(id, { sha256: id }))), `${size} bytes`).to.equal('INTEGRITY_ERROR');
          expect((await index.getBlob(INSTANCE_ID, id))?.quarantined, `${size} bytes`).to.equal(true);
          expect(quarantineFiles(root).map((f) => basename(f))).to.include(id);
          expect(codeOf(await rejectionOf(cas.open(id)))).to.equal('INTEGRITY_ERROR');
        }
        expect(await counter(backend(), 'casIntegrityErrors')).to.equal(2);
        await eventually(async () => fdsUnder(root).length === 0, 2000, 'no descriptor left open in the CAS');
      });

      it('does not verify partial ranges (they cannot be hashed) but serves them', async function () {
        const { backend: cas } = backend();
        const data = randomBytes(10_000);
        const { id } = await cas.put(streamOf(data));
        flipByte(blobFileOf(root, id), 0);
        const opened = await cas.open(id, { range: { start: 1, end: 9999 } });
        expect((await readAll(opened.stream)).equals(data.subarray(1))).to.equal(true);
      });

      it('refuses an expected sha256 that is not the id', async function () {
        const { backend: cas } = backend();
        const { id } = await cas.put(streamOf(randomBytes(100)));
        expect(codeOf(await rejectionOf(cas.open(id, { sha256: sha256Hex(Buffer.from('other')) })))).to.equal('INTEGRITY_ERROR');
        await readAll((await cas.open(id, { sha256: id })).stream);
      });

      it('finds corrupted blobs by scrubbing, and marks the good ones verified', async function () {
        const { backend: cas, index } = backend();
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) ids.push((await cas.put(streamOf(randomBytes(200_000 + i)))).id);
        flipByte(blobFileOf(root, ids[2]!), 123_456);
        const result = await cas.scrub();
        expect(result).to.deep.include({ checked: 5, ok: 4, corrupted: 1, missing: 0 });
        expect(await counter(backend(), 'casIntegrityErrors')).to.equal(1);
        expect(await counter(backend(), 'casBytesScrubbed')).to.equal(result.bytes);
        expect(quarantineFiles(root).map((f) => basename(f))).to.deep.equal([ids[2]]);
        for (const [i, id] of ids.entries()) {
          const row = await index.getBlob(INSTANCE_ID, id);
          if (i === 2) expect(row?.quarantined).to.equal(true);
          else expect(row?.lastVerifiedAt).to.be.instanceOf(Date);
        }
        // A second pass looks at each remaining blob once more and finds nothing new.
        expect(await cas.scrub()).to.deep.include({ checked: 4, ok: 4, corrupted: 0 });
      });

      it('reports a referenced blob whose file vanished', async function () {
        const { backend: cas, index } = backend();
        const { id } = await cas.put(streamOf(randomBytes(1000)));
        index.setRefCount(INSTANCE_ID, id, 1);
        const { rmSync } = await import('node:fs');
        rmSync(blobFileOf(root, id));
        expect(await cas.scrub()).to.deep.include({ checked: 1, missing: 1 });
        expect(await counter(backend(), 'casIntegrityErrors')).to.equal(1);
      });

      it('flags a copy without a reference of its own (a replica) whose file vanished, so that it stops counting as a copy', async function () {
        const { backend: cas, index } = backend();
        const { id } = await cas.put(streamOf(randomBytes(1000)));
        const { rmSync } = await import('node:fs');
        rmSync(blobFileOf(root, id));
        expect(await cas.scrub()).to.deep.include({ checked: 1, missing: 1 });
        expect((await index.getBlob(INSTANCE_ID, id))?.quarantined).to.equal(true);
      });

      it('scrubs no faster than the rate asked for', async function () {
        const { backend: cas } = backend();
        for (let i = 0; i < 3; i++) await cas.put(streamOf(randomBytes(MiB)));
        const started = Date.now();
        const result = await cas.scrub({ bytesPerSecond: 2 * MiB });
        expect(result.bytes).to.equal(3 * MiB);
        expect(Date.now() - started).to.be.greaterThanOrEqual(1400);
      });
    });

    describe('collector', function () {
      it('collects unreferenced blobs past the grace period and keeps the rest', async function () {
        const { backend: cas, index } = backend();
        const keep = await cas.put(streamOf(randomBytes(100_000)));
        const drop = await cas.put(streamOf(randomBytes(200_000)));
        const young = await cas.put(streamOf(randomBytes(300_000)));
        index.setRefCount(INSTANCE_ID, keep.id, 1);
        // As the engine does once the entries are committed (or not).
        for (const put of [keep, drop, young]) put.release?.();
        const old = new Date(Date.now() - 60_000);
        index.setTouchedAt(INSTANCE_ID, keep.id, old);
        index.setTouchedAt(INSTANCE_ID, drop.id, old);
        index.setTouchedAt(INSTANCE_ID, young.id, new Date(Date.now() + 60_000));

        const result = await cas.gc();
        expect(result.collected).to.equal(1);
        expect(result.bytesFreed).to.equal(200_000);
        expect(await counter(backend(), 'casBlobsCollected')).to.equal(1);
        expect(codeOf(await rejectionOf(cas.open(drop.id)))).to.equal('FILE_NOT_FOUND');
        expect(await index.getBlob(INSTANCE_ID, drop.id)).to.equal(null);
        await readAll((await cas.open(keep.id)).stream);
        await readAll((await cas.open(young.id)).stream);
        expect(blobFiles(root)).to.have.length(2);
      });

      it('never deletes a blob that a concurrent upload deduplicated against', async function () {
        const { backend: cas, index } = backend();
        const bodies = Array.from({ length: 40 }, () => randomBytes(20_000));
        for (let round = 0; round < 3; round++) {
          const ids = [];
          for (const body of bodies) {
            const put = await cas.put(streamOf(body));
            put.release?.();
            ids.push(put.id);
          }
          for (const id of ids) index.setTouchedAt(INSTANCE_ID, id, new Date(Date.now() - 60_000));
          // Re-upload every other blob while the collector runs over all of them.
          const reput = bodies.filter((_, i) => i % 2 === 0);
          const [, puts] = await Promise.all([cas.gc(), Promise.all(reput.map((b) => cas.put(streamOf(b, 4096))))]);
          for (const [i, put] of puts.entries()) {
            const back = await readAll((await cas.open(put.id)).stream);
            expect(back.equals(reput[i]!), `round ${round} blob ${i}`).to.equal(true);
            expect(await index.getBlob(INSTANCE_ID, put.id)).to.not.equal(null);
          }
          await cas.gc();
        }
      });
    });
  });
}
