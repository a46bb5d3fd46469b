import { createCipheriv, createHash } from 'node:crypto';
import https from 'node:https';
import { expect } from 'chai';
import { request, type TestResponse } from './http.js';

/** Helpers for tests of the resumable uploads (tus 1.0) at /v1/uploads. */

export const TUS_VERSION = '1.0.0';
export const OFFSET_TYPE = 'application/offset+octet-stream';
export const MiB = 1024 * 1024;

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
export const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

/** `Upload-Metadata` from plain values. */
export function uploadMetadata(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k} ${b64(v)}`)
    .join(',');
}

/**
 * `size` bytes that are the same on every run and never repeat (AES-128-CTR
 * of zeros under a key made from `seed`), so a misplaced block shows.
 */
export function patternBytes(size: number, seed = 'callfs-tus'): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

export interface TusCallOptions {
  token?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Leave out Tus-Resumable. */
  bare?: boolean;
}

/** A client of one server's tus endpoint: every request carries Tus-Resumable unless `bare`. */
export function tusClient(base: string, defaultToken: string) {
  const call = (method: string, path: string, options: TusCallOptions = {}): Promise<TestResponse> =>
    request(`${base}${path}`, {
      method,
      token: options.token ?? defaultToken,
      headers: { ...(options.bare === true ? {} : { 'tus-resumable': TUS_VERSION }), ...options.headers },
      ...(options.body === undefined ? {} : { body: options.body }),
    });
  return {
    call,
    /** POST /v1/uploads; resolves with the answer and the upload's Location (asserted 201 unless `expectStatus`). */
    async create(path: string, length: number, options: { token?: string; metadata?: Record<string, string>; body?: Buffer; headers?: Record<string, string> } = {}): Promise<{ res: TestResponse; location: string; id: string }> {
      const headers: Record<string, string> = { 'upload-length': String(length), 'upload-metadata': uploadMetadata({ path, ...options.metadata }), ...options.headers };
      if (options.body !== undefined) headers['content-type'] = OFFSET_TYPE;
      const res = await call('POST', '/v1/uploads', { headers, ...(options.token === undefined ? {} : { token: options.token }), ...(options.body === undefined ? {} : { body: options.body }) });
      if (res.status !== 201) throw new Error(`POST /v1/uploads for ${path}: ${res.status} ${res.text}`);
      const location = String(res.headers.location);
      return { res, location, id: location.slice(location.lastIndexOf('/') + 1) };
    },
    /** PATCH `body` at `offset`. */
    patch(location: string, offset: number, body: Buffer, options: { token?: string; headers?: Record<string, string> } = {}): Promise<TestResponse> {
      return call('PATCH', location, { headers: { 'content-type': OFFSET_TYPE, 'upload-offset': String(offset), ...options.headers }, body, ...(options.token === undefined ? {} : { token: options.token }) });
    },
    /** HEAD of an upload. */
    head(location: string, token?: string): Promise<TestResponse> {
      return call('HEAD', location, token === undefined ? {} : { token });
    },
  };
}

export type TusClient = ReturnType<typeof tusClient>;

/** GET a file and hash it as it streams (big files are never held whole). */
export function fetchSha256(url: string, token: string): Promise<{ status: number; sha256: string; size: number; etag: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const hash = createHash('sha256');
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        hash.update(chunk);
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sha256: hash.digest('hex'), size, etag: res.headers.etag }));
    });
    req.on('error', reject);
  });
}

/**
 * A PATCH whose body is sent piece by piece and may be left open: `send`
 * resolves once the bytes have left this process, `settled` with the status
 * (or the error that ended the exchange).
 */
export function openPatch(url: string, token: string, offset: number, contentLength: number): { send(bytes: Buffer): Promise<void>; end(): void; settled: Promise<number | string> } {
  const u = new URL(url);
  let settle!: (v: number | string) => void;
  const settled = new Promise<number | string>((resolve) => (settle = resolve));
  const req = https.request({
    method: 'PATCH',
    hostname: u.hostname,
    port: u.port,
    path: u.pathname,
    rejectUnauthorized: false,
    agent: false,
    headers: { authorization: `Bearer ${token}`, 'tus-resumable': TUS_VERSION, 'content-type': OFFSET_TYPE, 'upload-offset': String(offset), 'content-length': String(contentLength) },
  });
  req.on('response', (res) => {
    res.resume();
    res.on('end', () => settle(res.statusCode ?? 0));
    res.on('error', (err: NodeJS.ErrnoException) => settle(err.code ?? err.message));
  });
  req.on('error', (err: NodeJS.ErrnoException) => settle(err.code ?? err.message));
  return {
    async send(bytes: Buffer) {
      for (let at = 0; at < bytes.length; at += 256 * 1024) {
        if (!req.write(bytes.subarray(at, at + 256 * 1024))) {
          await new Promise<void>((resolve) => {
            const go = (): void => {
              req.off('drain', go).off('close', go);
              resolve();
            };
            req.on('drain', go).on('close', go);
          });
        }
        if (req.destroyed) throw new Error('the PATCH ended while its body was being sent');
      }
    },
    end: () => req.end(),
    settled,
  };
}

/** Poll `probe` until it returns a value, or fail after `timeoutMs` with `what`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Where POST /v1/uploads puts an upload. */
export const UPLOAD_PATH = /^\/v1\/uploads\/[0-9a-f]{32}$/;

/** The base64 digest an Upload-Checksum header carries. */
export const digest = (algorithm: 'sha1' | 'sha256' | 'md5', b: Buffer): string => b64(createHash(algorithm).update(b).digest());

export function expectError(res: TestResponse, status: number, code: string): void {
  expect(res.status, res.text).to.equal(status);
  expect(res.json?.code, res.text).to.equal(code);
}

/** A HEAD answer has no body to carry the code. */
export function expectHead404(res: TestResponse): void {
  expect(res.status, 'HEAD of the upload').to.equal(404);
  expect(res.headers['tus-resumable']).to.equal('1.0.0');
}
