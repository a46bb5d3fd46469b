import { DetailedError, Upload, type PreviousUpload, type UrlStorage } from 'tus-js-client';
import { ApiError } from './api/errors.js';
import { SESSION_PREFIX } from './session.js';

/**
 * Uploads through tus at /v1/uploads: each file its own resumable upload,
 * a few at a time, with progress, cancel (which ends the upload on the
 * server) and retry (which goes on from the offset the server has). The
 * upload URLs are kept in sessionStorage, so re-adding the same file to the
 * same folder after a reload resumes it; signing out forgets them.
 */

export type UploadState = 'queued' | 'uploading' | 'done' | 'failed' | 'cancelled';

export interface UploadItem {
  id: number;
  name: string;
  /** Where the file goes. */
  path: string;
  size: number;
  sent: number;
  state: UploadState;
  error: unknown;
}

const STORE = `${SESSION_PREFIX}tus::`;
const RUNNING_AT_ONCE = 3;
/** Bytes per PATCH: a break costs at most this much again, and a proxy's body limit is rarely below it. */
const CHUNK_BYTES = 64 * 1024 * 1024;

/** tus-js-client's URL store, in sessionStorage instead of localStorage: nothing of it outlives the tab or a sign-out. */
class SessionUrlStorage implements UrlStorage {
  async findAllUploads(): Promise<PreviousUpload[]> {
    return this.find(STORE);
  }

  async findUploadsByFingerprint(fingerprint: string): Promise<PreviousUpload[]> {
    return this.find(`${STORE}${fingerprint}::`);
  }

  async removeUpload(urlStorageKey: string): Promise<void> {
    sessionStorage.removeItem(urlStorageKey);
  }

  async addUpload(fingerprint: string, upload: PreviousUpload): Promise<string> {
    const key = `${STORE}${fingerprint}::${crypto.randomUUID()}`;
    sessionStorage.setItem(key, JSON.stringify(upload));
    return key;
  }

  private find(prefix: string): PreviousUpload[] {
    const found: PreviousUpload[] = [];
    for (let i = 0; i < sessionStorage.length; i++) {
      const key = sessionStorage.key(i);
      if (key === null || !key.startsWith(prefix)) continue;
      try {
        found.push({ ...(JSON.parse(sessionStorage.getItem(key) ?? '') as PreviousUpload), urlStorageKey: key });
      } catch {
        sessionStorage.removeItem(key);
      }
    }
    return found;
  }
}

/** tus-js-client's error as the API's: the JSON envelope of the answer, when there was one. */
function apiErrorOf(err: Error): unknown {
  if (err instanceof DetailedError && err.originalResponse !== null) {
    const res = err.originalResponse;
    let body: { code?: unknown; message?: unknown; request_id?: unknown } = {};
    try {
      body = JSON.parse(res.getBody()) as typeof body;
    } catch {
      // no JSON body
    }
    return ApiError.of(res.getStatus(), body, res.getHeader('retry-after') ?? null);
  }
  if (err instanceof DetailedError) return new TypeError('the upload lost its connection to the server');
  return err;
}

export class UploadQueue {
  private items: UploadItem[] = [];
  private uploads = new Map<number, Upload>();
  private files = new Map<number, File>();
  private listeners = new Set<(items: readonly UploadItem[]) => void>();
  private nextId = 1;
  private readonly storage = new SessionUrlStorage();

  constructor(
    private readonly key: string,
    /** The user, so that one tab's uploads of two users never resume each other's. */
    private readonly user: string,
    private readonly onFinished: (item: UploadItem) => void,
  ) {}

  subscribe(listener: (items: readonly UploadItem[]) => void): () => void {
    this.listeners.add(listener);
    listener(this.items);
    return () => this.listeners.delete(listener);
  }

  /** Queue files for the paths given (one each). */
  add(files: { file: File; path: string }[]): void {
    for (const { file, path } of files) {
      const id = this.nextId++;
      this.files.set(id, file);
      this.items = [...this.items, { id, name: file.name, path, size: file.size, sent: 0, state: 'queued', error: null }];
    }
    this.emit();
    this.pump();
  }

  /** Stop an upload and end it on the server (its bytes are dropped). */
  cancel(id: number): void {
    const upload = this.uploads.get(id);
    this.uploads.delete(id);
    this.update(id, { state: 'cancelled' });
    upload?.abort(true).catch(() => {
      // Already gone on the server (finished or expired): nothing left to end.
    });
    this.pump();
  }

  /** Try a failed upload again: it goes on from what the server already has. */
  retry(id: number): void {
    this.update(id, { state: 'queued', error: null });
    this.pump();
  }

  /** Drop finished, failed and cancelled rows from the list. */
  clearFinished(): void {
    this.items = this.items.filter((i) => i.state === 'queued' || i.state === 'uploading');
    for (const id of [...this.files.keys()]) if (!this.items.some((i) => i.id === id)) this.files.delete(id);
    this.emit();
  }

  /** Cancel everything (signing out). */
  cancelAll(): void {
    for (const item of this.items) if (item.state === 'queued' || item.state === 'uploading') this.cancel(item.id);
  }

  private pump(): void {
    let running = this.items.filter((i) => i.state === 'uploading').length;
    for (const item of this.items) {
      if (running >= RUNNING_AT_ONCE) break;
      if (item.state !== 'queued') continue;
      running++;
      this.update(item.id, { state: 'uploading' });
      this.start(item);
    }
  }

  private start(item: UploadItem): void {
    const file = this.files.get(item.id);
    if (file === undefined) return;
    const upload = new Upload(file, {
      endpoint: new URL('/v1/uploads', location.origin).href,
      headers: { Authorization: `Bearer ${this.key}` },
      metadata: { path: item.path, filename: file.name },
      chunkSize: CHUNK_BYTES,
      retryDelays: [0, 1000, 3000, 5000],
      urlStorage: this.storage,
      removeFingerprintOnSuccess: true,
      fingerprint: async () => ['callfs', this.user, item.path, file.size, file.lastModified].join(':'),
      onProgress: (sent) => this.update(item.id, { sent }),
      onSuccess: () => {
        this.uploads.delete(item.id);
        this.update(item.id, { state: 'done', sent: item.size });
        this.files.delete(item.id);
        const done = this.items.find((i) => i.id === item.id);
        if (done !== undefined) this.onFinished(done);
        this.pump();
      },
      onError: (err) => {
        this.uploads.delete(item.id);
        this.update(item.id, { state: 'failed', error: apiErrorOf(err) });
        this.pump();
      },
    });
    this.uploads.set(item.id, upload);
    upload
      .findPreviousUploads()
      .then((previous) => {
        const last = previous[previous.length - 1];
        if (last !== undefined) upload.resumeFromPreviousUpload(last);
      })
      .catch(() => {
        // No record to resume from: start afresh.
      })
      .finally(() => {
        if (this.uploads.get(item.id) === upload) upload.start();
      });
  }

  private update(id: number, change: Partial<UploadItem>): void {
    const current = this.items.find((i) => i.id === id);
    if (current === undefined || (current.state === 'cancelled' && change.state !== 'queued')) return;
    this.items = this.items.map((i) => (i.id === id ? { ...i, ...change } : i));
    this.emit();
  }

  private emit(): void {
    for (const listener of this.listeners) listener(this.items);
  }
}
