import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { loopMountsAvailable, requireComponent } from '../../support/services.js';
import { MiB, closeAndClean, eventually, makeTempRoot, mountsUnder, openCas, sha256Hex, tmpFiles, type CasUnderTest } from '../../support/cas.js';
import { readAll, streamOf } from '../../contract/backend-contract.js';

/**
 * Large uploads are written around the page cache (O_DIRECT) through reused
 * aligned blocks; the last partial 4 KiB goes through the page cache. What is
 * checked: the bytes read back, and `callfs_cas_written_bytes_total` by mode,
 * which counts what each write really did.
 */

const ALIGN = 4096;

async function writtenBytes(cas: CasUnderTest): Promise<{ direct: number; buffered: number }> {
  const { values } = await cas.metrics.casWrittenBytes.get();
  const of = (mode: string): number => values.find((v) => v.labels.mode === mode)?.value ?? 0;
  return { direct: of('direct'), buffered: of('buffered') };
}

/** Put `data`, read it back, and return what the put added to the written-bytes counters. */
async function putAndCheck(cas: CasUnderTest, data: Buffer, chunkSize: number): Promise<{ direct: number; buffered: number }> {
  const before = await writtenBytes(cas);
  const { id } = await cas.backend.put(streamOf(data, chunkSize));
  expect(id).to.equal(sha256Hex(data));
  expect((await readAll((await cas.backend.open(id)).stream)).equals(data), `${data.length} bytes read back`).to.equal(true);
  const after = await writtenBytes(cas);
  return { direct: after.direct - before.direct, buffered: after.buffered - before.buffered };
}

/** A body that sends `first` bytes and waits for `finish` to send the rest. */
function heldBody(data: Buffer, first: number): { body: PassThrough; finish: () => void } {
  const body = new PassThrough();
  body.write(data.subarray(0, first));
  return { body, finish: () => body.end(data.subarray(first)) };
}

const rootReason = (): string | null => (process.getuid?.() === 0 ? null : 'direct writes into the read-only temp file and mounting ramfs need root');

for (const mode of ['loop', 'dir'] as const) {
  describe(`CAS direct writes of large uploads (${mode} mode)`, function () {
    let root = '';
    let cas: CasUnderTest | undefined;

    before(function () {
      requireComponent(this, mode === 'loop' ? loopMountsAvailable() : rootReason());
    });

    afterEach(async function () {
      const closing = cas;
      cas = undefined;
      await closeAndClean(closing, root);
    });

    it('writes every whole 4 KiB of an upload of a block or more directly, the rest through the page cache, byte-exact', async function () {
      root = makeTempRoot(`direct-${mode}`);
      cas = await openCas(root, { mode, imageSizeBytes: 256 * MiB, minFreeBytes: 16 * MiB });
      const sizes = [MiB - 1, MiB, MiB + 1, MiB + ALIGN, MiB + ALIGN + 1, 5 * MiB + ALIGN - 1, 3 * MiB + 5];
      for (const size of sizes) {
        const data = randomBytes(size);
        // Odd chunk sizes: no block boundary falls on a chunk boundary.
        const written = await putAndCheck(cas, data, 65_537);
        const direct = size < MiB ? 0 : size - (size % ALIGN);
        expect(written, `${size} bytes`).to.deep.equal({ direct, buffered: size - direct });
      }
      expect(tmpFiles(root)).to.deep.equal([]);
    });

    it('writes through the page cache when every block is taken, and gives the blocks back after finished and aborted uploads', async function () {
      root = makeTempRoot(`direct-limit-${mode}`);
      // 8 MiB of blocks: 8 uploads at a time are direct.
      cas = await openCas(root, { mode, imageSizeBytes: 256 * MiB, minFreeBytes: 16 * MiB, directWriteBytes: 8 * MiB });
      const backend = cas.backend;
      const size = 3 * MiB + 5;
      const aligned = size - (size % ALIGN);

      // 8 uploads take the 8 blocks and are aborted while they hold them.
      const controllers = Array.from({ length: 8 }, () => new AbortController());
      const aborted = controllers.map((c) => backend.put(heldBody(randomBytes(size), 2 * MiB).body, { signal: c.signal }).catch(() => 'aborted'));
      await eventually(async () => (await writtenBytes(cas as CasUnderTest)).direct === 8 * 2 * MiB, 5000, 'each of the 8 uploads has written its first 2 MiB directly');
      for (const c of controllers) c.abort(new Error('client went away'));
      expect(await Promise.all(aborted)).to.deep.equal(Array(8).fill('aborted'));
      await eventually(() => tmpFiles(root).length === 0, 5000, 'the aborted uploads removed their temp files');

      // 10 held uploads at once: 8 get the blocks back, 2 find none free.
      const before = await writtenBytes(cas);
      const bodies = Array.from({ length: 10 }, () => randomBytes(size));
      const held = bodies.map((data) => heldBody(data, 2 * MiB));
      const puts = held.map(({ body }) => backend.put(body));
      await eventually(() => tmpFiles(root).length === 10, 5000, 'the 10 uploads have their temp files');
      await eventually(async () => (await writtenBytes(cas as CasUnderTest)).buffered - before.buffered >= 2 * 2 * MiB, 5000, 'two uploads write through the page cache');
      for (const { finish } of held) finish();
      const results = await Promise.all(puts);
      expect(results.map((r) => r.id)).to.deep.equal(bodies.map(sha256Hex));
      for (const [i, data] of bodies.entries()) {
        expect((await readAll((await backend.open(sha256Hex(data))).stream)).equals(data), `upload ${i}`).to.equal(true);
      }
      const after = await writtenBytes(cas);
      expect({ direct: after.direct - before.direct, buffered: after.buffered - before.buffered }).to.deep.equal({
        direct: 8 * aligned,
        buffered: 8 * (size - aligned) + 2 * size,
      });

      // And the next one is direct again.
      expect(await putAndCheck(cas, randomBytes(size), 100_000)).to.deep.equal({ direct: aligned, buffered: size - aligned });
    });

    it('writes everything through the page cache when direct writes are off (directWriteBytes 0)', async function () {
      root = makeTempRoot(`direct-off-${mode}`);
      cas = await openCas(root, { mode, imageSizeBytes: 256 * MiB, minFreeBytes: 16 * MiB, directWriteBytes: 0 });
      const size = 3 * MiB + 5;
      expect(await putAndCheck(cas, randomBytes(size), 65_537)).to.deep.equal({ direct: 0, buffered: size });
    });
  });
}

describe('CAS direct writes on a filesystem that refuses O_DIRECT (ramfs, dir mode)', function () {
  let root = '';
  let cas: CasUnderTest | undefined;

  before(function () {
    requireComponent(this, rootReason());
  });

  afterEach(async function () {
    const closing = cas;
    cas = undefined;
    await closeAndClean(closing, root);
  });

  it('falls back to the page cache and stores the bytes exactly', async function () {
    root = makeTempRoot('direct-ramfs');
    const mounted = join(root, 'ramfs');
    mkdirSync(mounted);
    execFileSync('mount', ['-t', 'ramfs', 'ramfs', mounted]);
    expect(mountsUnder(root)).to.deep.equal([mounted]);
    cas = await openCas(mounted, { mode: 'dir', minFreeBytes: 0, minFreeInodes: 0 });
    for (const size of [3 * MiB + 5, 2 * MiB]) {
      expect(await putAndCheck(cas, randomBytes(size), 65_537), `${size} bytes`).to.deep.equal({ direct: 0, buffered: size });
    }
    expect(tmpFiles(mounted)).to.deep.equal([]);
  });
});
