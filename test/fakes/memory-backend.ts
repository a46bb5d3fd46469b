import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Backend, BackendCallOptions, BackendState, BlobStat, OpenOptions, OpenResult, PutOptions, PutResult } from '../../lib/backends/types.js';
import { CallfsError, notFound, unavailable } from '../../lib/errors.js';
import { capabilitiesOf } from '../../lib/backends/registry.js';

export interface MemoryBackendOptions {
  /** Bytes it may hold: a put that would go past it is INSUFFICIENT_STORAGE, and check() says `full` once it is reached. */
  capacityBytes?: number;
}

/** The Backend contract plus what tests may look at. */
export interface MemoryBackend extends Backend {
  /** Ids of the stored objects. */
  ids(): string[];
}

const SHA256 = /^[0-9a-f]{64}$/;
/** Chunk size of reads: several chunks for anything but small objects, so that a reader can stop or be aborted midway. */
const CHUNK = 64 * 1024;

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The bytes of `data`, a chunk per read, destroyed with the signal's reason when it aborts. */
function streamOf(data: Buffer, signal: AbortSignal | undefined): Readable {
  let offset = 0;
  const stream = new Readable({
    read() {
      if (offset >= data.length) {
        this.push(null);
        return;
      }
      const end = Math.min(offset + CHUNK, data.length);
      this.push(data.subarray(offset, end));
      offset = end;
    },
  });
  if (signal !== undefined) {
    const onAbort = (): void => {
      stream.destroy(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  return stream;
}

/**
 * A content-addressed Backend in memory, for engine and HTTP unit tests:
 * ids are the SHA-256 of the bytes (so equal contents share one object, as
 * in the CAS), bytes are kept in a Map, and it passes the backend contract
 * suite (test/contract/backend-contract.ts). Its type is 'cas', so the
 * engine treats it as the CAS: uploads before the path lock, no delete()
 * calls (reclaiming is the collector's business there; here delete() drops
 * the bytes at once). After close() every call is SERVICE_UNAVAILABLE.
 *
 * Not modelled: durability, images, pins and the collector, the blob index.
 */
export function createMemoryBackend(options: MemoryBackendOptions = {}): MemoryBackend {
  const objects = new Map<string, Buffer>();
  const capacity = options.capacityBytes ?? Number.POSITIVE_INFINITY;
  let used = 0;
  let closed = false;

  const assertOpen = (): void => {
    if (closed) throw unavailable('cas', 'the in-memory backend is closed');
  };

  function receive(body: Readable, options: PutOptions): Promise<Buffer> {
    const { signal, maxBytes } = options;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const settle = (err: unknown, data?: Buffer): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err === null) resolve(data as Buffer);
        else reject(err);
      };
      const onAbort = (): void => {
        settle(signal?.reason);
        body.destroy();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      body.on('data', (chunk: Buffer) => {
        if (settled) return; // refused: the rest is read and dropped
        size += chunk.length;
        if (maxBytes !== undefined && size > maxBytes) settle(new CallfsError('PAYLOAD_TOO_LARGE', `more than ${maxBytes} bytes`));
        else chunks.push(chunk);
      });
      body.once('end', () => settle(null, Buffer.concat(chunks)));
      body.once('error', (err) => settle(err));
    });
  }

  return {
    type: 'cas',
    capabilities: capabilitiesOf('cas'),

    async put(body: Readable, putOptions: PutOptions = {}): Promise<PutResult> {
      if (closed || putOptions.signal?.aborted === true) {
        body.resume();
        assertOpen();
        putOptions.signal?.throwIfAborted();
      }
      const data = await receive(body, putOptions);
      const id = sha256(data);
      if (!objects.has(id)) {
        if (used + data.length > capacity) throw new CallfsError('INSUFFICIENT_STORAGE', `no room for ${data.length} bytes`, { component: 'cas' });
        objects.set(id, data);
        used += data.length;
      }
      return { id, size: data.length, sha256: id };
    },

    async open(id: string, openOptions: OpenOptions = {}): Promise<OpenResult> {
      assertOpen();
      openOptions.signal?.throwIfAborted();
      const data = SHA256.test(id) ? objects.get(id) : undefined;
      if (data === undefined) throw notFound(id);
      const { range } = openOptions;
      if (range === undefined) {
        if (openOptions.sha256 !== undefined && sha256(data) !== openOptions.sha256) {
          throw new CallfsError('INTEGRITY_ERROR', `${id} does not match sha256 ${openOptions.sha256}`);
        }
        return { size: data.length, stream: streamOf(data, openOptions.signal) };
      }
      if (range.start >= data.length || range.start > range.end) {
        throw new CallfsError('RANGE_NOT_SATISFIABLE', `bytes ${range.start}-${range.end} of ${data.length}`);
      }
      return { size: data.length, stream: streamOf(data.subarray(range.start, Math.min(range.end, data.length - 1) + 1), openOptions.signal) };
    },

    async stat(id: string, statOptions: BackendCallOptions = {}): Promise<BlobStat | null> {
      assertOpen();
      statOptions.signal?.throwIfAborted();
      const data = SHA256.test(id) ? objects.get(id) : undefined;
      return data === undefined ? null : { id, size: data.length };
    },

    async delete(id: string): Promise<void> {
      assertOpen();
      const data = objects.get(id);
      if (data === undefined) return;
      objects.delete(id);
      used -= data.length;
    },

    async check(): Promise<BackendState> {
      assertOpen();
      return used >= capacity ? 'full' : 'ok';
    },

    async close(): Promise<void> {
      closed = true;
    },

    ids: () => [...objects.keys()],
  };
}
