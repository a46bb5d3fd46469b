import { Readable } from 'node:stream';
import { expect } from 'chai';
import type { User } from '../../lib/auth/users.js';
import { createEngine, type Engine, type EngineDeps } from '../../lib/engine/index.js';
import { CallfsError, type ErrorCode } from '../../lib/errors.js';
import { createLocalLockManager } from '../../lib/locks/index.js';
import { createSilentLogger } from '../../lib/log/index.js';
import type { Entry, MetadataStore } from '../../lib/metadata/types.js';
import { createMemoryBackend, type MemoryBackend } from '../fakes/memory-backend.js';
import { createMemoryMetadataStore } from '../fakes/memory-metadata-store.js';

/**
 * An engine on in-memory parts, for unit tests of its logic: the in-memory
 * metadata store, the in-process lock manager and the in-memory backend as
 * the CAS. EngineDeps are built here and only here, so that a change to
 * them is made in one place.
 */
export interface EngineUnderTest {
  engine: Engine;
  deps: EngineDeps;
  store: MetadataStore;
  backend: MemoryBackend;
  /** A directory as a test wants it, made directly in the store (no permission checks). */
  addDirectory(path: string, attrs: Attributes): Promise<Entry>;
  /** A file with `content` in the backend and its entry in the store (no permission checks). */
  addFile(path: string, content: string | Buffer, attrs: Attributes & { instanceId?: string }): Promise<Entry>;
  close(): Promise<void>;
}

export interface Attributes {
  mode: number;
  uid: number;
  gid: number;
}

export interface TestEngineOptions {
  /** Default 1 MiB. */
  maxUploadBytes?: number;
  /** Bytes the backend holds before refusing uploads (INSUFFICIENT_STORAGE). */
  capacityBytes?: number;
  /** The store answers cachedAncestors as a cache holding every ancestor would (see the memory store): small PUTs are then presumed new. */
  cachedAncestors?: boolean;
}

export const INSTANCE_ID = 'unit-instance';

export const root: User = Object.freeze({ name: 'root', uid: 0, gid: 0, groups: [] });
export const alice: User = Object.freeze({ name: 'alice', uid: 1001, gid: 1001, groups: [] });
export const bob: User = Object.freeze({ name: 'bob', uid: 1002, gid: 1002, groups: [] });
/** In alice's group (1001) besides her own. */
export const carol: User = Object.freeze({ name: 'carol', uid: 1003, gid: 1003, groups: [1001] });

export function createTestEngine(options: TestEngineOptions = {}): EngineUnderTest {
  const store = createMemoryMetadataStore({ cachedAncestors: options.cachedAncestors === true });
  const backend = createMemoryBackend(options.capacityBytes === undefined ? {} : { capacityBytes: options.capacityBytes });
  const locks = createLocalLockManager({ waitMs: 5000 });
  const deps: EngineDeps = {
    store,
    locks,
    backends: { cas: backend },
    defaultBackend: 'cas',
    instanceId: INSTANCE_ID,
    maxUploadBytes: options.maxUploadBytes ?? 1024 * 1024,
    logger: createSilentLogger(),
  };
  return {
    engine: createEngine(deps),
    deps,
    store,
    backend,
    addDirectory: (path, attrs) => store.create({ path, type: 'directory', ...attrs }, { parents: { mode: 0o755, uid: 0, gid: 0 } }),
    async addFile(path, content, attrs) {
      const stored = await backend.put(Readable.from([Buffer.from(content)]));
      const { instanceId = INSTANCE_ID, ...owner } = attrs;
      return store.create(
        { path, type: 'file', ...owner, size: stored.size, backend: 'cas', instanceId, blobId: stored.id, etag: stored.sha256 },
        { parents: { mode: 0o755, uid: 0, gid: 0 } },
      );
    },
    async close() {
      await locks.close();
      await backend.close();
      await store.close();
    },
  };
}

/** A request body. */
export const body = (content: string | Buffer): Readable => Readable.from([Buffer.from(content)]);

/** Read a stream whole (test sizes only). */
export async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}

/** Await `work` and assert it fails with a CallfsError of `code`; the error, for further checks. */
export async function rejectsWith(work: Promise<unknown>, code: ErrorCode): Promise<CallfsError> {
  let error: unknown;
  try {
    await work;
  } catch (err) {
    error = err;
  }
  expect(error, `expected ${code}`).to.be.instanceOf(CallfsError);
  expect((error as CallfsError).code, (error as Error).message).to.equal(code);
  return error as CallfsError;
}
