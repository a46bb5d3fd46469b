import { expect } from 'chai';
import { CallfsError, type ErrorCode } from '../../lib/errors.js';
import type { Entry, MetadataStore, NewEntry } from '../../lib/metadata/types.js';
import { parentOf } from '../../lib/paths.js';

/** Shared by the metadata contract suites. */
export interface ContractContext {
  /** The store under test (opened in the suite's before hook). */
  store(): MetadataStore;
  /** A fresh top-level directory name, unique within the suite. */
  uniquePath(): string;
}

/** Await `work` and assert it rejects with a CallfsError of `code`. */
export async function expectCode(work: Promise<unknown> | (() => Promise<unknown>), code: ErrorCode): Promise<CallfsError> {
  let error: unknown;
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (err) {
    error = err;
  }
  expect(error, `expected a ${code} error`).to.be.instanceOf(CallfsError);
  expect((error as CallfsError).code).to.equal(code);
  return error as CallfsError;
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export const DIR_ATTRS = { mode: 0o755, uid: 1000, gid: 1000 };

export function dir(path: string): NewEntry {
  return { path, type: 'directory', ...DIR_ATTRS };
}

export function file(path: string, extra: Partial<NewEntry> = {}): NewEntry {
  return { path, type: 'file', mode: 0o644, uid: 1000, gid: 1000, size: 0, ...extra };
}

/** A CAS file entry naming blob `sha` on `instanceId`. */
export function casFile(path: string, instanceId: string, sha: string, size = 10): NewEntry {
  return file(path, { size, backend: 'cas', instanceId, blobId: sha, etag: sha });
}

/** A distinct 64-hex sha256-shaped id. */
export function sha(n: number | string): string {
  return Buffer.from(String(n)).toString('hex').padEnd(64, '0').slice(0, 64);
}

/** Byte (UTF-8) order, the order the store sorts names and paths in. */
export function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Assert the tree below `root` is consistent: every entry's parentId is its
 * parent's id and its name is its last segment.
 */
export async function expectConsistentTree(store: MetadataStore, root: string): Promise<Array<Entry & { depth: number }>> {
  const rootEntry = await store.get(root);
  expect(rootEntry, `${root} exists`).to.not.equal(null);
  const entries = await collect(store.listRecursive(root, { maxDepth: 1000 }));
  const ids = new Map<string, string>([[root, rootEntry?.id ?? '']]);
  for (const e of entries) ids.set(e.path, e.id);
  for (const e of entries) {
    expect(e.parentId, `parent of ${e.path}`).to.equal(ids.get(parentOf(e.path)));
    expect(e.name).to.equal(e.path.slice(e.path.lastIndexOf('/') + 1));
  }
  return entries;
}
