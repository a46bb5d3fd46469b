import { constants } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import type { Logger } from '../log/index.js';
import { lingeringResponse } from './lingering-close.js';

export interface TlsServerOptions {
  /** PEM certificate (chain) and private key. */
  cert: string | Buffer;
  key: string | Buffer;
  /** Lowest protocol version accepted (server.tls_min_version). */
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher string: the TLS 1.2 suites of server.tls_ciphers and the TLS 1.3 suites. */
  ciphers: string;
}

export interface HttpServerOptions {
  app: Koa<any>;
  /** Certificate and policy; null serves plain HTTP (server.protocol: http). */
  tls: TlsServerOptions | null;
  /** Idle timeout (ms) while a request is being read. */
  readTimeoutMs: number;
  /** Idle timeout (ms) while a response is being written. */
  writeTimeoutMs: number;
}

/**
 * An HTTPS or HTTP server for the app. Timeouts are idle timeouts only: a
 * transfer that keeps moving is never cut, however long.
 */
export function createHttpServer(options: HttpServerOptions): http.Server {
  const handler = options.app.callback();
  const { tls } = options;
  // A refused body is drained before the connection closes, so the refusal reaches the client.
  const ServerResponse = lingeringResponse();
  const server = tls === null
    ? http.createServer({ ServerResponse }, handler)
    : https.createServer(
        {
          ServerResponse,
          cert: tls.cert,
          key: tls.key,
          minVersion: tls.minVersion,
          ciphers: tls.ciphers,
          // OpenSSL answers a client's renegotiation with a no_renegotiation alert: renegotiation
          // costs the server a full handshake per request (a cheap DoS) and buys a client nothing
          // here. Node's own limit (3 per 10 minutes) would still allow it.
          secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
        },
        handler,
      );
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
