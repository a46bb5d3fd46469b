import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type tls from 'node:tls';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A small HTTPS client for setup and checks (not for measuring): keep-alive, bodies buffered. */
export interface HttpClient {
  request(method: string, path: string, options?: { body?: Buffer | Readable; headers?: Record<string, string>; timeoutMs?: number }): Promise<HttpResponse>;
  close(): void;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function createHttpClient(options: { port: number; tls: tls.ConnectionOptions; authorization?: string; maxSockets?: number }): HttpClient {
  const agent = new https.Agent({ ...options.tls, keepAlive: true, maxSockets: options.maxSockets ?? 8 });
  return {
    request(method, path, { body, headers = {}, timeoutMs = 120_000 } = {}) {
      return new Promise((resolve, reject) => {
        const all: Record<string, string> = { ...headers };
        if (options.authorization !== undefined) all.authorization = options.authorization;
        if (Buffer.isBuffer(body)) all['content-length'] = String(body.length);
        const req = https.request({ agent, host: '127.0.0.1', port: options.port, method, path, headers: all, timeout: timeoutMs }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
        req.on('error', reject);
        if (body === undefined) req.end();
        else if (Buffer.isBuffer(body)) req.end(body);
        else pipeline(body, req).catch(reject);
      });
    },
    close: () => agent.destroy(),
  };
}

/** Run `fn` over `items`, `limit` at a time; the first failure is thrown once all started ones end. */
export async function forEachLimit<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]();
  let failure: unknown = null;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (let next = it.next(); !next.done && failure === null; next = it.next()) {
        try {
          await fn(next.value);
        } catch (err) {
          failure ??= err;
        }
      }
    }),
  );
  if (failure !== null) throw failure;
}

/** Throw unless the response has one of the expected statuses. */
export function expectStatus(res: HttpResponse, what: string, ...ok: number[]): HttpResponse {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
  return res;
}
