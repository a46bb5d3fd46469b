import tls from 'node:tls';
import type { LoadResult } from './types.js';
import { summarizeLatencies } from './types.js';

/**
 * HEAD load over raw keep-alive TLS sockets. wrk 4.1 cannot do HEAD: its
 * parser waits for the Content-Length bytes a HEAD response announces but
 * never sends. A HEAD response ends at its blank line, so this client needs
 * no body parsing and stays cheap enough (tens of thousands of requests per
 * second on one core) not to be what limits the servers it measures.
 */
export interface HeadLoadOptions {
  port: number;
  tls: tls.ConnectionOptions;
  /** Paths are prefix + n, n uniform in [0, count). */
  prefix: string;
  count: number;
  authorization?: string;
  connections: number;
  seconds: number;
  signal?: AbortSignal;
}

const STATUS = /^HTTP\/1\.1 (\d{3})/;

export async function runHeadLoad(options: HeadLoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let non2xx = 0;
  let socketErrors = 0;
  let bytes = 0;
  const auth = options.authorization === undefined ? '' : `Authorization: ${options.authorization}\r\n`;
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const live = (): boolean => performance.now() < deadline && options.signal?.aborted !== true;

  // One connection: send, wait for the end of the headers, repeat; reconnect when the server closes.
  const connection = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = tls.connect({ ...options.tls, host: '127.0.0.1', port: options.port });
      let pending = '';
      let sentAt = 0;
      let closeAfter = false;
      const send = (): void => {
        if (!live()) {
          socket.end();
          return;
        }
        const n = Math.floor(Math.random() * options.count);
        sentAt = performance.now();
        socket.write(`HEAD ${options.prefix}${n} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}\r\n`);
      };
      socket.on('secureConnect', send);
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        bytes += chunk.length;
        pending += chunk;
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        latencies.push(performance.now() - sentAt);
        const status = Number(STATUS.exec(head)?.[1] ?? 0);
        if (status < 200 || status > 299) non2xx++;
        closeAfter = /\r\nconnection: *close/i.test(head);
        if (closeAfter) socket.end();
        else send();
      });
      socket.on('error', () => {
        if (live()) socketErrors++;
      });
      socket.on('close', (hadError) => {
        if (!live()) return resolve();
        // Closed by the server without saying so: a socket error (counted once), then carry on.
        if (!closeAfter && !hadError) socketErrors++;
        connection().then(resolve, resolve);
      });
    });

  await Promise.all(Array.from({ length: options.connections }, () => connection()));
  const seconds = (performance.now() - started) / 1000;
  return { requests: latencies.length, seconds, bytes, non2xx, socketErrors, ...summarizeLatencies(latencies) };
}
