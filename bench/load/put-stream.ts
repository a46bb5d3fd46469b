import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
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
    const response = once(req, 'response') as Promise<[IncomingMessage]>;
    // A failure while the body is still being written rejects both this and the write below.
    response.catch(() => undefined);
    if (options.uniquePrefix) req.write(randomBytes(16));
    for (let at = options.uniquePrefix ? 16 : 0; at < body.length; at += CHUNK) {
      if (!req.write(body.subarray(at, Math.min(at + CHUNK, body.length)))) await once(req, 'drain');
    }
    req.end();
    const [res] = await response;
    res.resume();
    await once(res, 'end');
    latencies.push(performance.now() - sentAt);
    statuses.push(res.statusCode ?? 0);
    bytes += body.length;
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
