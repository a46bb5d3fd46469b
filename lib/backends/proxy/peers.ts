import https from 'node:https';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Logger } from '../../log/index.js';
import type { Metrics } from '../../metrics/index.js';
import { CallfsError } from '../../errors.js';

export interface PeerDirectoryOptions {
  /** This instance's id (never a peer of itself). */
  selfId: string;
  /** Peer id → base URL ("https://host:8443"). */
  endpoints: Record<string, string>;
  /** Bearer secret peers accept from each other. */
  secret: string;
  /** CA certificate file peers' certificates are verified against ('' = system CAs). */
  caFile?: string;
  /** Skip TLS verification (testing only). */
  skipTlsVerify?: boolean;
  /**
   * instance_discovery.peer_timeout: the longest a peer may take to start
   * answering — to connect and finish the TLS handshake, and, once the
   * request is sent, to send its response headers — before 502. A peer that
   * accepts TCP but never answers (stopped, overloaded) cannot hang a client.
   */
  firstByteTimeoutMs?: number;
  /**
   * More time a peer may take to answer a write once the whole body is sent:
   * it flushes and indexes the blob first (the composition root gives it
   * locks.wait_timeout).
   */
  writeGraceMs?: number;
  /**
   * A transfer that stops moving for this long is cut (502 before the
   * headers, a broken transfer after); a moving one never is. Keep it below
   * the server's own idle timeout, so that the peer is given up (and the
   * client told) before the client's connection is.
   */
  idleTimeoutMs?: number;
  logger: Logger;
  metrics: Metrics;
}

export interface PeerRequest {
  method: string;
  /** Path and query, already encoded ("/v1/files/a%20b?x=1"). */
  path: string;
  headers?: Record<string, string>;
  /** The caller a request is made for, named in the peer's log (X-CallFS-On-Behalf-Of); it grants nothing. */
  onBehalfOf?: string;
  body?: Readable | Buffer;
  signal?: AbortSignal;
  /** Label for metrics (get, put, patch, …). */
  operation: string;
  /**
   * How long the peer may work once it has the whole request, before its
   * response headers: `read` (default) within the first-byte timeout; a
   * `write` also gets the write grace (the peer flushes and indexes the blob
   * before it answers).
   */
  kind?: 'read' | 'write';
}

/** The other instances of the cluster, reached over HTTPS with keep-alive connections. */
export interface PeerDirectory {
  readonly ids: string[];
  has(id: string): boolean;
  /**
   * Send a request to a peer; resolves with its response (any status) once
   * the headers arrive. The caller consumes or destroys the response. Throws
   * BAD_GATEWAY when the peer cannot be reached or stops answering.
   */
  request(peerId: string, req: PeerRequest): Promise<http.IncomingMessage>;
  /** Liveness of one peer (its /health), for /ready. */
  check(peerId: string): Promise<void>;
  close(): void;
}

export const ON_BEHALF_OF = 'x-callfs-on-behalf-of';

export function createPeerDirectory(options: PeerDirectoryOptions): PeerDirectory {
  const endpoints = new Map(Object.entries(options.endpoints).filter(([id]) => id !== options.selfId).map(([id, url]) => [id, new URL(url)]));
  const ca = options.caFile !== undefined && options.caFile !== '' ? readFileSync(options.caFile) : undefined;
  const agentOptions = { keepAlive: true, maxSockets: 64, maxFreeSockets: 16 };
  const httpsAgent = new https.Agent({ ...agentOptions, ...(ca === undefined ? {} : { ca }), rejectUnauthorized: options.skipTlsVerify !== true });
  const httpAgent = new http.Agent(agentOptions);
  const firstByteTimeoutMs = options.firstByteTimeoutMs ?? 5000;
  const writeGraceMs = options.writeGraceMs ?? 10_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 20_000;
  const writeAnswerMs = firstByteTimeoutMs + writeGraceMs;

  const gateway = (peerId: string, why: string, cause?: unknown): CallfsError =>
    new CallfsError('BAD_GATEWAY', `peer instance ${peerId} ${why}`, { cause, component: 'peer' });

  function request(peerId: string, req: PeerRequest): Promise<http.IncomingMessage> {
    const base = endpoints.get(peerId);
    if (base === undefined) return Promise.reject(gateway(peerId, 'is not a configured peer (instance_discovery.peer_endpoints)'));
    const started = performance.now();
    const count = (outcome: string): void => {
      options.metrics.proxyOperations.inc({ peer: peerId, operation: req.operation, outcome });
      options.metrics.proxyDuration.observe({ peer: peerId, operation: req.operation }, (performance.now() - started) / 1000);
    };
    return new Promise((resolve, reject) => {
      const isHttps = base.protocol === 'https:';
      const outgoing = (isHttps ? https : http).request({
        method: req.method,
        hostname: base.hostname,
        port: base.port,
        path: req.path,
        agent: isHttps ? httpsAgent : httpAgent,
        headers: { ...req.headers, authorization: `Bearer ${options.secret}`, ...(req.onBehalfOf === undefined || req.onBehalfOf === '' ? {} : { [ON_BEHALF_OF]: req.onBehalfOf }) },
      });
      let settled = false;
      let deadline: NodeJS.Timeout | undefined;
      const fail = (err: CallfsError): void => {
        clearTimeout(deadline);
        if (settled) return;
        settled = true;
        count('unreachable');
        outgoing.destroy();
        reject(err);
      };
      const within = (ms: number, what: string): void => {
        clearTimeout(deadline);
        deadline = setTimeout(() => fail(gateway(peerId, `${what} within ${ms} ms`)), ms);
      };
      // One clock from the start bounds the connection and the TLS handshake and, for a read,
      // the answer too. A streamed body is bounded by the idle timeout while it flows; a
      // write's answer is due within its own time once the whole request is sent.
      within(firstByteTimeoutMs, 'did not answer');
      const streamed = req.body !== undefined && !Buffer.isBuffer(req.body);
      let established = false;
      let sent = false;
      const progress = (): void => {
        if (!established) return;
        if (!sent) {
          if (streamed) clearTimeout(deadline);
          return;
        }
        if (req.kind === 'write') within(writeAnswerMs, 'did not answer');
      };
      outgoing.once('socket', (socket) => {
        const onEstablished = (): void => {
          established = true;
          progress();
        };
        // A socket from the keep-alive pool is connected and secured already.
        if (!socket.connecting) onEstablished();
        else socket.once(isHttps ? 'secureConnect' : 'connect', onEstablished);
      });
      outgoing.once('finish', () => {
        sent = true;
        progress();
      });
      outgoing.setTimeout(idleTimeoutMs, () => fail(gateway(peerId, `stopped answering for ${idleTimeoutMs} ms`)));
      // The caller's abort ends the exchange with the caller's reason: before the answer the
      // request rejects with it, after it the response stream is destroyed with it.
      const { signal } = req;
      let response: http.IncomingMessage | null = null;
      const onAbort = (): void => {
        const reason = signal?.reason instanceof Error ? signal.reason : new Error(String(signal?.reason));
        clearTimeout(deadline);
        if (response !== null) {
          response.destroy(reason);
          return;
        }
        outgoing.destroy();
        if (settled) return;
        settled = true;
        reject(reason);
      };
      if (signal !== undefined) {
        if (signal.aborted) {
          queueMicrotask(onAbort);
        } else {
          signal.addEventListener('abort', onAbort, { once: true });
          outgoing.once('close', () => {
            if (response === null) signal.removeEventListener('abort', onAbort);
          });
        }
      }
      outgoing.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(deadline);
        if (signal?.aborted === true) return;
        fail(gateway(peerId, `is unreachable (${err.code ?? err.message})`, err));
      });
      outgoing.once('response', (res) => {
        clearTimeout(deadline);
        if (settled) {
          res.destroy();
          return;
        }
        settled = true;
        response = res;
        if (signal !== undefined) res.once('close', () => signal.removeEventListener('abort', onAbort));
        count(res.statusCode !== undefined && res.statusCode >= 500 ? 'error' : 'ok');
        // Once streaming, a stalled peer breaks the transfer rather than hanging it. The listener
        // leaves with the response: the socket goes back to the pool and serves other requests.
        const socket = res.socket;
        if (socket !== null) {
          const onIdle = (): void => {
            res.destroy(gateway(peerId, `stopped sending for ${idleTimeoutMs} ms`));
          };
          socket.setTimeout(idleTimeoutMs);
          socket.on('timeout', onIdle);
          res.once('close', () => socket.off('timeout', onIdle));
        }
        resolve(res);
      });
      const body = req.body;
      if (body === undefined) outgoing.end();
      else if (Buffer.isBuffer(body)) outgoing.end(body);
      else {
        body.once('error', (err) => outgoing.destroy(err));
        body.pipe(outgoing);
      }
    });
  }

  return {
    ids: [...endpoints.keys()],
    has: (id) => endpoints.has(id),
    request,
    async check(peerId) {
      const res = await request(peerId, { method: 'GET', path: '/health', operation: 'health' });
      res.resume();
      if (res.statusCode !== 200) throw gateway(peerId, `answered ${res.statusCode} to /health`);
    },
    close() {
      httpsAgent.destroy();
      httpAgent.destroy();
    },
  };
}
