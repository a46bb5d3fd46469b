import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { finished } from 'node:stream/promises';
import type tls from 'node:tls';
import type { LoadResult } from './types.js';
import { summarizeLatencies } from './types.js';

/**
 * Large PUTs (scenarios 6 and 7): each request streams `body` in 1 MiB writes
 * with backpressure, optionally with its first 16 bytes replaced by random
 * ones so that every upload has new content. Runs `paths.length` uploads,
 * `concurrency` at a time, over keep-alive connections.
 */
export interface PutStreamOptions {
  port: number;
  tls: tls.ConnectionOptions;
  paths: string[];
  headers: Record<string, string>;
  body: Buffer;
  uniquePrefix: boolean;
  concurrency: number;
  signal?: AbortSignal;
}

const CHUNK = 1024 * 1024;

export async function runPutStreams(options: PutStreamOptions): Promise<LoadResult & { statuses: number[] }> {
  const agent = new https.Agent({ ...options.tls, keepAlive: true, maxSockets: options.concurrency });
  const latencies: number[] = [];
  const statuses: number[] = [];
  let socketErrors = 0;
  let bytes = 0;

  const putOne = async (path: string): Promise<void> => {
    const { body } = options;
    const sentAt = performance.now();
    const req = https.request({ agent, host: '127.0.0.1', port: options.port, method: 'PUT', path, headers: { ...options.headers, 'content-length': String(body.length) } });
    // A server may answer before the body is sent (an error status) or drop the connection: the
    // response, an error or the close settles this, so neither leaves the upload waiting forever.
    let answered = false;
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', (res: IncomingMessage) => {
        answered = true;
        resolve(res);
      });
      req.once('error', reject);
      req.once('close', () => reject(new Error('connection closed before a response')));
    });
    response.catch(() => undefined);
    const writable = (): Promise<void> =>
      new Promise((resolve) => {
        const done = (): void => {
          req.off('drain', done);
          req.off('close', done);
          resolve();
        };
        req.on('drain', done);
        req.on('close', done);
      });
    let sent = 0;
    if (options.uniquePrefix) {
      req.write(randomBytes(16));
      sent = 16;
    }
    while (sent < body.length && !answered && !req.destroyed) {
      const chunk = body.subarray(sent, Math.min(sent + CHUNK, body.length));
      sent += chunk.length;
      if (!req.write(chunk)) await writable();
    }
    if (sent === body.length && !req.destroyed) req.end();
    const res = await response;
    res.resume();
    await finished(res);
    // An answer before the whole body leaves the connection unusable for the next request.
    if (sent < body.length) req.destroy();
    latencies.push(performance.now() - sentAt);
    statuses.push(res.statusCode ?? 0);
    bytes += sent;
  };

  const queue = [...options.paths];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      for (let path = queue.shift(); path !== undefined && options.signal?.aborted !== true; path = queue.shift()) {
        await putOne(path).catch(() => void socketErrors++);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  const non2xx = statuses.filter((s) => s < 200 || s > 299).length;
  return { requests: statuses.length, seconds, bytes, non2xx, socketErrors, statuses, ...summarizeLatencies(latencies) };
}
