import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import type { Backend, ByteRange } from '../../lib/backends/types.js';

/**
 * The compliance suite every Backend must pass (CAS in loop and dir mode, S3,
 * the peer proxy). Call it inside a describe whose before hook may skip for
 * missing components:
 *
 *   describe('CAS, loop mode', function () {
 *     before(function () { requireComponent(this, loopMountsAvailable()); });
 *     backendContractSuite('cas (loop)', async () => ({ backend, deletesImmediately: false, teardown }));
 *   });
 */
export interface BackendContractSubject {
  backend: Backend;
  /** True when delete() removes the bytes at once; false when a collector removes them later (CAS). */
  deletesImmediately: boolean;
  /**
   * Every object the backend holds, finished or not (for the CAS: files under
   * blobs/ and tmp/). Lets the suite prove that a failed put leaves nothing;
   * without it those tests only check the error.
   */
  storedObjects?(): Promise<string[]>;
  /** Release everything the subject made (unmount, drop buckets, remove dirs). */
  teardown(): Promise<void>;
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** A stream of `data` in chunks of `chunkSize` (odd sizes catch boundary bugs). */
export function streamOf(data: Buffer, chunkSize = 64 * 1024): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) {
        this.push(null);
        return;
      }
      this.push(data.subarray(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

/** Read a whole stream (test data only). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** The rejection of `promise` (fails the test when it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  expect.fail('expected a rejection');
}

function codeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

/** A body that sends `first`, then stays open until the test ends it (or it is destroyed). */
function stallingBody(first: Buffer): Readable {
  const body = new Readable({ read() {} });
  body.push(first);
  return body;
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function backendContractSuite(name: string, makeSubject: () => Promise<BackendContractSubject>): void {
  describe(`Backend contract: ${name}`, function () {
    let subject: BackendContractSubject | undefined;
    const backend = (): Backend => {
      if (subject === undefined) throw new Error('subject not created');
      return subject.backend;
    };
    const key = (): string => `/contract/${randomUUID()}`;
    const stored = async (): Promise<string[] | null> => (subject?.storedObjects ? (await subject.storedObjects()).sort() : null);

    before(async function () {
      subject = await makeSubject();
    });

    after(async function () {
      await subject?.teardown();
      subject = undefined;
    });

    async function putBuffer(data: Buffer, chunkSize?: number): Promise<string> {
      const result = await backend().put(streamOf(data, chunkSize), { key: key() });
      expect(result.size).to.equal(data.length);
      expect(result.sha256).to.equal(sha256(data));
      expect(result.id).to.be.a('string').and.not.equal('');
      return result.id;
    }

    async function readRange(id: string, range?: ByteRange): Promise<{ size: number; data: Buffer }> {
      const opened = await backend().open(id, range === undefined ? {} : { range });
      return { size: opened.size, data: await readAll(opened.stream) };
    }

    describe('put, open, stat', function () {
      it('stores bytes and reads them back with their size', async function () {
        const data = randomBytes(10_000);
        const id = await putBuffer(data);
        const { size, data: back } = await readRange(id);
        expect(size).to.equal(data.length);
        expect(back.equals(data)).to.equal(true);
        expect(await backend().stat(id)).to.deep.equal({ id, size: data.length });
      });

      it('stores a 0-byte object', async function () {
        const id = await putBuffer(Buffer.alloc(0));
        const { size, data } = await readRange(id);
        expect(size).to.equal(0);
        expect(data.length).to.equal(0);
        expect((await backend().stat(id))?.size).to.equal(0);
      });

      it('stores a 1-byte object', async function () {
        const data = Buffer.from([0xa7]);
        const id = await putBuffer(data);
        const { size, data: back } = await readRange(id);
        expect(size).to.equal(1);
        expect(back.equals(data)).to.equal(true);
      });

      it('streams a multi-MiB object sent in odd-sized chunks byte-exact', async function () {
        const data = randomBytes(5 * 1024 * 1024 + 7);
        const id = await putBuffer(data, 65_537);
        const { size, data: back } = await readRange(id);
        expect(size).to.equal(data.length);
        expect(sha256(back)).to.equal(sha256(data));
      });

      it('accepts the same content twice and serves it from both results', async function () {
        const data = randomBytes(4096);
        const a = await putBuffer(data);
        const b = await putBuffer(data);
        expect((await readRange(a)).data.equals(data)).to.equal(true);
        expect((await readRange(b)).data.equals(data)).to.equal(true);
      });

      it('stores concurrent puts of different content', async function () {
        const bodies = Array.from({ length: 8 }, (_, i) => randomBytes(1000 + i * 4099));
        const ids = await Promise.all(bodies.map((b) => putBuffer(b, 3001)));
        for (const [i, id] of ids.entries()) expect((await readRange(id)).data.equals(bodies[i]!)).to.equal(true);
      });

      it('keeps serving other readers when one consumer stops early', async function () {
        const data = randomBytes(3 * 1024 * 1024);
        const id = await putBuffer(data);
        const opened = await backend().open(id);
        await new Promise<void>((resolve) => {
          opened.stream.once('data', () => {
            opened.stream.destroy();
            resolve();
          });
        });
        expect(sha256((await readRange(id)).data)).to.equal(sha256(data));
      });

      it('answers check()', async function () {
        await backend().check();
      });
    });

    describe('ranges', function () {
      const data = randomBytes(300_001);
      let id = '';
      before(async function () {
        id = await putBuffer(data);
      });

      it('serves the first byte', async function () {
        const { size, data: back } = await readRange(id, { start: 0, end: 0 });
        expect(size).to.equal(data.length);
        expect(back.equals(data.subarray(0, 1))).to.equal(true);
      });

      it('serves the last byte', async function () {
        const last = data.length - 1;
        const { data: back } = await readRange(id, { start: last, end: last });
        expect(back.equals(data.subarray(last))).to.equal(true);
      });

      it('serves a slice from the middle', async function () {
        const { data: back } = await readRange(id, { start: 1000, end: 200_000 });
        expect(back.equals(data.subarray(1000, 200_001))).to.equal(true);
      });

      it('clamps an end past the object to its last byte', async function () {
        const { data: back } = await readRange(id, { start: 300_000, end: 10_000_000 });
        expect(back.equals(data.subarray(300_000))).to.equal(true);
      });

      it('serves the whole object as a range', async function () {
        const { data: back } = await readRange(id, { start: 0, end: data.length - 1 });
        expect(back.equals(data)).to.equal(true);
      });

      it('refuses a range starting at or past the end with RANGE_NOT_SATISFIABLE', async function () {
        for (const start of [data.length, data.length + 10]) {
          const err = await rejectionOf(backend().open(id, { range: { start, end: start + 5 } }));
          expect(codeOf(err)).to.equal('RANGE_NOT_SATISFIABLE');
        }
      });

      it('refuses any range of a 0-byte object with RANGE_NOT_SATISFIABLE', async function () {
        const empty = await putBuffer(Buffer.alloc(0));
        const err = await rejectionOf(backend().open(empty, { range: { start: 0, end: 0 } }));
        expect(codeOf(err)).to.equal('RANGE_NOT_SATISFIABLE');
      });
    });

    describe('unknown ids', function () {
      it('opens an unknown id with FILE_NOT_FOUND, and stat says null', async function () {
        const unknown = sha256(randomBytes(32));
        expect(codeOf(await rejectionOf(backend().open(unknown)))).to.equal('FILE_NOT_FOUND');
        expect(await backend().stat(unknown)).to.equal(null);
      });

      it('treats malformed ids as unknown and never leaves the store', async function () {
        for (const bad of ['../../../../etc/passwd', '', 'ABC', `${'a'.repeat(64)}/../x`]) {
          expect(codeOf(await rejectionOf(backend().open(bad))), bad).to.equal('FILE_NOT_FOUND');
          expect(await backend().stat(bad), bad).to.equal(null);
        }
      });
    });

    describe('failed puts leave nothing', function () {
      it('rejects with the signal reason when aborted midway', async function () {
        const before = await stored();
        const controller = new AbortController();
        const body = stallingBody(randomBytes(256 * 1024));
        const pending = backend().put(body, { key: key(), signal: controller.signal });
        await tick(50);
        const reason = new Error('client went away');
        controller.abort(reason);
        expect(await rejectionOf(pending)).to.equal(reason);
        expect(await stored()).to.deep.equal(before);
      });

      it('rejects at once with an already aborted signal', async function () {
        const before = await stored();
        const controller = new AbortController();
        const reason = new Error('already gone');
        controller.abort(reason);
        const body = streamOf(randomBytes(1000));
        expect(await rejectionOf(backend().put(body, { key: key(), signal: controller.signal }))).to.equal(reason);
        expect(await stored()).to.deep.equal(before);
      });

      it('rejects when the body stream fails', async function () {
        const before = await stored();
        const body = stallingBody(randomBytes(100_000));
        const pending = backend().put(body, { key: key() });
        await tick(30);
        const failure = new Error('connection reset');
        body.destroy(failure);
        const err = await rejectionOf(pending);
        expect(err).to.be.instanceOf(Error);
        expect(await stored()).to.deep.equal(before);
      });

      it('refuses more than maxBytes with PAYLOAD_TOO_LARGE', async function () {
        const before = await stored();
        const err = await rejectionOf(backend().put(streamOf(randomBytes(100_001), 10_000), { key: key(), maxBytes: 100_000 }));
        expect(codeOf(err)).to.equal('PAYLOAD_TOO_LARGE');
        expect(await stored()).to.deep.equal(before);
      });

      it('accepts exactly maxBytes', async function () {
        const data = randomBytes(100_000);
        const result = await backend().put(streamOf(data, 10_000), { key: key(), maxBytes: 100_000 });
        expect(result.size).to.equal(100_000);
      });
    });

    describe('delete', function () {
      it('is idempotent, also for unknown ids', async function () {
        await backend().delete(sha256(randomBytes(8)));
        const data = randomBytes(2048);
        const id = await putBuffer(data);
        await backend().delete(id);
        await backend().delete(id);
        if (subject?.deletesImmediately) {
          expect(await backend().stat(id)).to.equal(null);
          expect(codeOf(await rejectionOf(backend().open(id)))).to.equal('FILE_NOT_FOUND');
        } else {
          // Deferred to the collector: still readable now.
          expect((await readRange(id)).data.equals(data)).to.equal(true);
        }
      });
    });

    describe('aborting a read', function () {
      it('destroys the stream with the signal reason', async function () {
        const id = await putBuffer(randomBytes(4 * 1024 * 1024));
        const controller = new AbortController();
        const opened = await backend().open(id, { signal: controller.signal });
        const reason = new Error('reader went away');
        const failed = new Promise<unknown>((resolve) => opened.stream.once('error', resolve));
        controller.abort(reason);
        expect(await failed).to.equal(reason);
      });
    });
  });
}
