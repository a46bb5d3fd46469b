import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import type { Logger } from '../log/index.js';

export interface HttpServerOptions {
  app: Koa<any>;
  /** PEM certificate and key; null serves plain HTTP (server.protocol: http). */
  tls: { cert: string | Buffer; key: string | Buffer } | null;
  /** Idle timeout (ms) while a request is being read. */
  readTimeoutMs: number;
  /** Idle timeout (ms) while a response is being written. */
  writeTimeoutMs: number;
}

/**
 * An HTTPS (TLS 1.2 minimum) or HTTP server for the app. Timeouts are idle
 * timeouts only: a transfer that keeps moving is never cut, however long.
 */
export function createHttpServer(options: HttpServerOptions): http.Server {
  const handler = options.app.callback();
  const server = options.tls === null
    ? http.createServer(handler)
    : https.createServer({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }, handler);
  // No deadline on a whole request (Node's default would cut a 5-minute upload).
  server.requestTimeout = 0;
  server.headersTimeout = Math.max(1000, options.readTimeoutMs);
  // Socket idle timeout: activity in either direction resets it.
  server.timeout = Math.max(options.readTimeoutMs, options.writeTimeoutMs);
  server.keepAliveTimeout = 5000;
  return server;
}

/** Listen on host:port ('' = all interfaces); resolves with the bound port. */
export function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host === '' ? undefined : host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Stop accepting connections, let in-flight requests finish until the
 * deadline, then cut what is left.
 */
export async function closeGracefully(server: http.Server, deadlineMs: number, logger?: Logger): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), deadlineMs);
  });
  const outcome = await Promise.race([closed, deadline]);
  clearInterval(idleSweep);
  clearTimeout(timer);
  if (outcome === 'deadline') {
    logger?.warn({ deadline_ms: deadlineMs }, 'shutdown deadline reached; closing remaining connections');
    server.closeAllConnections();
    await closed;
  }
}
