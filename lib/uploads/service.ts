import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { User } from '../auth/users.js';
import type { Engine } from '../engine/index.js';
import { CallfsError } from '../errors.js';
import type { LockManager } from '../locks/types.js';
import type { Logger } from '../log/index.js';
import type { Upload, UploadOps } from '../metadata/types.js';

/** A checksum a chunk must match (tus checksum extension). */
export interface ChunkChecksum {
  algorithm: 'sha1' | 'sha256';
  digest: Buffer;
}

export interface UploadServiceOptions {
  store: UploadOps;
  engine: Engine;
  /** The user an upload was created by, to write the file as at completion. */
  userByUid: (uid: number) => User | undefined;
  instanceId: string;
  /** Where this instance keeps the bytes of its uploads (<data_dir>/uploads). */
  dir: string;
  locks: LockManager;
  /** uploads.expire_after: an upload nobody added to for this long is removed. */
  expireMs: number;
  /** uploads.max_per_user: unfinished uploads one user may have. */
  maxPerUser: number;
  /** server.max_upload_bytes. */
  maxUploadBytes: number;
  logger: Logger;
}

/**
 * While a long chunk streams in, its bytes are flushed and the offset
 * recorded every this many bytes, so a crash (kill -9, power) loses at most
 * this much of it. A chunk with a checksum counts whole or not at all.
 */
const CHECKPOINT_BYTES = 16 * 1024 * 1024;

/** A part file without a row is left this long before it counts as an orphan (its row may be on its way). */
const ORPHAN_AFTER_MS = 10 * 60_000;

const UPLOAD_ID = /^[0-9a-f]{32}$/;

/**
 * Resumable uploads: the bytes received so far live in a file on the
 * instance that holds the upload, and their extent (flushed first, then
 * recorded) in the metadata store. Nothing is visible at the destination
 * path until the last byte: the whole then goes through the engine's write
 * (permissions checked again, atomic create or replace, the ETag the
 * SHA-256 of the whole). Operations on the bytes run on the holder only:
 * the HTTP layer sends them there.
 */
export class UploadService {
  readonly instanceId: string;
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: UploadServiceOptions) {
    this.instanceId = o.instanceId;
  }

  #part(id: string): string {
    return join(this.o.dir, `${id}.part`);
  }

  #expiry(): Date {
    return new Date(Date.now() + this.o.expireMs);
  }

  /** A new upload of `length` bytes to `path`, held by this instance. */
  async create(user: User, spec: { path: string; mode: number | null; length: number; metadata: string }): Promise<Upload> {
    if (spec.length > this.o.maxUploadBytes) throw new CallfsError('PAYLOAD_TOO_LARGE', `Upload-Length is over the ${this.o.maxUploadBytes}-byte limit`);
    await this.o.engine.checkWrite(user, spec.path);
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    // The bytes wait here until the last one, then go into the store: refuse one that cannot fit now rather than at 90 %.
    const fs = await statfs(this.o.dir);
    if (spec.length > fs.bavail * fs.bsize) throw new CallfsError('INSUFFICIENT_STORAGE', `no room for ${spec.length} bytes of upload on this instance`);
    const upload = await this.o.store.create({ id: randomUUID().replace(/-/g, ''), uid: user.uid, path: spec.path, mode: spec.mode, length: spec.length, metadata: spec.metadata, instanceId: this.o.instanceId, expiresAt: this.#expiry() }, this.o.maxPerUser);
    if (upload === null) throw new CallfsError('RATE_LIMIT_EXCEEDED', `${user.name} has ${this.o.maxPerUser} unfinished uploads (uploads.max_per_user): finish or terminate one first`, { retryAfterSeconds: 60 });
    // The row first, then the file: a file is never an orphan while its row is being made.
    await (await open(this.#part(upload.id), 'w', 0o600)).close();
    return upload;
  }

  /** The upload, if it exists, has not expired, and `user` created it; FILE_NOT_FOUND otherwise (another's is as good as missing). */
  async find(user: User, id: string): Promise<Upload> {
    const upload = await this.get(id);
    if (upload.uid !== user.uid) throw new CallfsError('FILE_NOT_FOUND', `no upload ${id}`);
    return upload;
  }

  /**
   * The upload as its holder has it now: once any chunk still being written
   * has recorded what it got (a HEAD right after a broken PATCH answers the
   * offset that PATCH reached, not its last checkpoint).
   */
  async current(id: string): Promise<Upload> {
    return this.o.locks.withLock([`upload:${id}`], async () => {
      const upload = await this.get(id);
      this.#holding(upload);
      if (upload.received === upload.length) await this.#finish(upload);
      return upload;
    });
  }

  /** The upload by id, unexpired (for the holder acting on a peer's behalf, which checked the owner). */
  async get(id: string): Promise<Upload> {
    const upload = UPLOAD_ID.test(id) ? await this.o.store.get(id) : null;
    if (upload === null || upload.expiresAt.getTime() <= Date.now()) throw new CallfsError('FILE_NOT_FOUND', `no upload ${id}`);
    return upload;
  }

  #holding(upload: Upload): void {
    if (upload.instanceId !== this.o.instanceId) throw new CallfsError('INTERNAL_ERROR', `upload ${upload.id} is held by ${upload.instanceId}, not here`);
  }

  /**
   * Add the bytes of `body` at `offset` (which must be the upload's offset:
   * UPLOAD_OFFSET_MISMATCH otherwise). Without a checksum, what arrives
   * counts even if the body breaks off: it is flushed and recorded. With one,
   * the chunk counts only whole and matching (CHECKSUM_MISMATCH, and the
   * offset does not move). The upload after it; the last byte completes it.
   */
  async append(id: string, offset: number, body: Readable, checksum: ChunkChecksum | null): Promise<{ upload: Upload; completed: boolean }> {
    return this.o.locks.withLock([`upload:${id}`], async () => {
      let upload = await this.get(id);
      this.#holding(upload);
      if (offset !== upload.received) {
        body.resume();
        throw new CallfsError('UPLOAD_OFFSET_MISMATCH', `Upload-Offset is ${offset}, the upload is at ${upload.received}`, { details: { offset: upload.received } });
      }
      const fh = await open(this.#part(id), 'r+').catch(async (err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || upload.received > 0) throw err;
        return open(this.#part(id), 'w+', 0o600);
      });
      const hash = checksum === null ? null : createHash(checksum.algorithm);
      let pos = offset;
      let recorded = offset;
      const record = async (): Promise<void> => {
        if (pos === recorded) return;
        await fh.datasync();
        const next = await this.o.store.advance(id, recorded, pos, this.#expiry());
        if (next === null) throw new CallfsError('UPLOAD_OFFSET_MISMATCH', `upload ${id} moved on meanwhile`);
        upload = next;
        recorded = pos;
      };
      try {
        try {
          for await (const data of body) {
            const chunk = data as Buffer;
            if (pos + chunk.length > upload.length) throw new CallfsError('BAD_REQUEST', `the bytes go past Upload-Length (${upload.length})`);
            await fh.write(chunk, 0, chunk.length, pos);
            pos += chunk.length;
            hash?.update(chunk);
            if (hash === null && pos - recorded >= CHECKPOINT_BYTES) await record();
          }
        } catch (err) {
          // What arrived before the break counts (unless the chunk is checksummed).
          if (hash === null) await record().catch((e: unknown) => this.o.logger.warn({ err: e, upload: id }, 'could not record the bytes of a broken chunk'));
          throw err;
        }
        if (hash !== null && checksum !== null && !hash.digest().equals(checksum.digest)) {
          throw new CallfsError('CHECKSUM_MISMATCH', `the chunk does not match its Upload-Checksum (${checksum.algorithm}); the offset stays at ${offset}`);
        }
        await record();
      } finally {
        await fh.close();
      }
      if (upload.received < upload.length) return { upload, completed: false };
      await this.#finish(upload);
      return { upload, completed: true };
    });
  }

  /** Write the whole as the user who created the upload (checked again now), then forget the upload. */
  async #finish(upload: Upload): Promise<void> {
    const owner = this.o.userByUid(upload.uid);
    if (owner === undefined) throw new CallfsError('PERMISSION_DENIED', `the user who created upload ${upload.id} is no longer configured`);
    const bytes = upload.length === 0 ? Readable.from([]) : createReadStream(this.#part(upload.id), { start: 0, end: upload.length - 1 });
    await this.o.engine.writeFile(owner, upload.path, bytes, { mustCreate: false, length: upload.length, ...(upload.mode === null ? {} : { mode: upload.mode }) });
    await this.#forget(upload.id);
  }

  async #forget(id: string): Promise<void> {
    await this.o.store.remove(id);
    await rm(this.#part(id), { force: true });
  }

  /** Termination: the upload and its bytes are gone. */
  async terminate(id: string): Promise<void> {
    await this.o.locks.withLock([`upload:${id}`], async () => {
      const upload = await this.get(id);
      this.#holding(upload);
      await this.#forget(id);
    });
  }

  /** Remove this instance's expired uploads, and part files no upload names. Returns how many uploads expired. */
  async sweep(): Promise<number> {
    let expired = 0;
    for (;;) {
      const ids = await this.o.store.on(this.o.instanceId, new Date(), 100);
      for (const id of ids) await this.#forget(id);
      expired += ids.length;
      if (ids.length < 100) break;
    }
    // Uploads of an instance that is gone: their rows go a day after they expired (their bytes,
    // should that instance come back, go with its own sweep of part files no row names).
    for (;;) {
      const ids = await this.o.store.on(null, new Date(Date.now() - 24 * 3600_000), 100);
      for (const id of ids) await this.o.store.remove(id);
      expired += ids.length;
      if (ids.length < 100) break;
    }
    const files = await readdir(this.o.dir).catch(() => [] as string[]);
    if (files.length > 0) {
      const known = new Set(await this.o.store.on(this.o.instanceId, null, 1_000_000));
      for (const file of files) {
        const id = file.replace(/\.part$/, '');
        if (known.has(id)) continue;
        const age = await stat(join(this.o.dir, file)).then((s) => Date.now() - s.mtimeMs, () => 0);
        if (age > ORPHAN_AFTER_MS) await rm(join(this.o.dir, file), { force: true });
      }
    }
    return expired;
  }

  /** Sweep every `intervalMs` (0: never). */
  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    const run = (): void => {
      this.sweep()
        .then((n) => n > 0 && this.o.logger.info({ expired: n }, 'resumable uploads: expired uploads removed'))
        .catch((err: unknown) => this.o.logger.warn({ err }, 'resumable uploads: sweep failed'))
        .finally(() => {
          if (this.#timer !== null) this.#timer = setTimeout(run, intervalMs).unref();
        });
    };
    this.#timer = setTimeout(run, Math.min(intervalMs, 5000)).unref();
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

