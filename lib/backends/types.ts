import type { Readable, Writable } from 'node:stream';
import type { BlobRowToWrite } from '../metadata/types.js';
import type { BackendCapabilities } from './registry.js';

export type { Addressing, BackendCapabilities, BackendType, Locality } from './registry.js';

/**
 * The Backend contract: where file bytes live. One contract for the loop-image
 * CAS, S3 and the peer proxy; one compliance suite (test/contract/backend-contract.ts)
 * runs against every implementation.
 *
 * Every call takes an AbortSignal; an aborted call rejects with the signal's
 * reason and leaves nothing behind (no partial blob, no half object).
 */

export interface BackendCallOptions {
  signal?: AbortSignal;
}

export interface PutOptions extends BackendCallOptions {
  /**
   * A key hint for backends that name objects after paths (S3 uses the
   * canonical path); content-addressed backends ignore it.
   */
  key?: string;
  /** Refuse (PAYLOAD_TOO_LARGE) and store nothing once more bytes than this arrive. */
  maxBytes?: number;
  /**
   * The body's declared length (Content-Length), when there is one: the CAS
   * compares a large body with a stored blob of that length as it arrives,
   * and writes nothing while they match (see StoredTwin).
   */
  expectedSize?: number;
  /**
   * The caller commits an entry naming the blob next, and carries the blob's
   * index row into that commit (PutResult.index): a backend that keeps an
   * index (the CAS) may then leave the row to it instead of writing it in a
   * round trip of its own.
   */
  deferIndex?: boolean;
}

export interface PutResult {
  /** The id to store in the entry's blobId and pass to open/stat/delete. */
  id: string;
  size: number;
  /** sha256 hex of the bytes. */
  sha256: string;
  /**
   * Present on backends that reclaim unreferenced bytes by themselves (the
   * CAS): until it is called, the bytes are kept even though no committed
   * entry names them yet. Call it once the entry naming `id` is committed
   * or will not be (in a `finally`); later calls do nothing.
   */
  release?: () => void;
  /**
   * Present when the put left its index row to the caller (deferIndex): hand
   * it to the commit (createIfUnchanged, updateIfUnchanged), or call
   * `write()` before committing any other way. One never written is given
   * up by `release`.
   */
  index?: DeferredIndexRow;
}

/** A blob-index row a put left to its caller's commit (PutOptions.deferIndex). */
export interface DeferredIndexRow extends BlobRowToWrite {
  /** Write the row now, in a round trip of its own; nothing when it is written already. */
  write(): Promise<void>;
}

/** An inclusive byte range, as in HTTP. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface OpenOptions extends BackendCallOptions {
  range?: ByteRange;
  /**
   * The expected sha256 of the whole content. Backends that can verify check
   * full reads: a small object (what one read takes) before open() resolves,
   * which then throws INTEGRITY_ERROR; a larger one while it streams, whose
   * stream is then destroyed with INTEGRITY_ERROR.
   */
  sha256?: string;
}

export interface OpenResult {
  /** Size of the whole object. */
  size: number;
  /** The bytes (of the range when one was given). The caller consumes or destroys it. */
  stream: Readable;
}

/**
 * A stream that can instead write itself into an HTTP response and end it,
 * reusing its buffers (the CAS reader). Only for a stream nobody has read; on
 * failure the response is destroyed and `onError` told.
 */
export interface DirectSend {
  sendTo(dest: Writable, onError: (err: Error) => void): void;
}

export function canSendDirect(stream: Readable): stream is Readable & DirectSend {
  return typeof (stream as Partial<DirectSend>).sendTo === 'function';
}

/** What a backend that can serve reports about itself: `full` when it serves reads and deletes but refuses uploads for want of space. */
export type BackendState = 'ok' | 'full';

export interface BlobStat {
  id: string;
  size: number;
}

/**
 * What a backend that names its objects after paths (addressing `path`)
 * offers, so that the engine can keep object keys in step with renames.
 */
export interface PathKeys {
  /** The id (object key) of a canonical file path. Throws INVALID_PATH for a path it cannot name. */
  keyOf(path: string): string;
  /** The canonical path an id names, or null for an id outside the scheme. */
  pathOf(id: string): string | null;
  /** Server-side copy of `fromId` to `toId` (overwriting it). FILE_NOT_FOUND when the source is missing. */
  copy(fromId: string, toId: string, options?: BackendCallOptions): Promise<void>;
}

export interface Backend {
  /** The backend type its entries are recorded under ('cas', 's3'; lib/backends/registry.ts). */
  readonly type: string;

  /**
   * How its bytes are addressed and where they live: the capabilities of its
   * type in the registry (a peer instance's CAS is content-addressed and
   * instance-local like this one's).
   */
  readonly capabilities: BackendCapabilities;

  /** Present exactly when `capabilities.addressing` is `path`. */
  readonly pathKeys?: PathKeys;

  /**
   * Store a stream. Resolves once the bytes are durable. Throws
   * PAYLOAD_TOO_LARGE past `maxBytes`, INSUFFICIENT_STORAGE when the store
   * has no room for them, SERVICE_UNAVAILABLE when it is unreachable (or
   * briefly cannot take writes). A failed put keeps none of the bytes.
   * Consumes `body` whatever the outcome. See PutResult.release.
   */
  put(body: Readable, options?: PutOptions): Promise<PutResult>;

  /**
   * Open stored bytes. Throws FILE_NOT_FOUND before the first byte when the id
   * is unknown, RANGE_NOT_SATISFIABLE for a range outside the object,
   * INTEGRITY_ERROR when a small full read does not match `sha256`.
   */
  open(id: string, options?: OpenOptions): Promise<OpenResult>;

  /** Size of stored bytes, or null when the id is unknown. */
  stat(id: string, options?: BackendCallOptions): Promise<BlobStat | null>;

  /**
   * Drop the bytes. Idempotent. Content-addressed backends may defer this to
   * their collector (their bytes are shared through reference counts).
   */
  delete(id: string, options?: BackendCallOptions): Promise<void>;

  /**
   * Content-addressed, instance-local backends (the CAS, a peer): drop this
   * store's copy of a blob now, whatever references it — for a caller that
   * made sure enough copies exist elsewhere (rebalancing). False when a put
   * is using the blob right now (it stays). The metadata record of the copy
   * is the caller's business.
   */
  evict?(id: string, options?: BackendCallOptions): Promise<boolean>;

  /**
   * For /ready: resolves `full` while uploads would get INSUFFICIENT_STORAGE
   * (reads still work), `ok` or nothing when it serves; throws
   * SERVICE_UNAVAILABLE when it cannot serve.
   */
  check(): Promise<BackendState | void>;

  /** Release resources; background work stops. */
  close(): Promise<void>;
}
