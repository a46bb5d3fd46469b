import http from 'node:http';

/** How much of an unread request body is read and thrown away before the connection closes. */
export interface LingerLimits {
  /** Bytes of body drained at most. */
  maxBytes: number;
  /** Time spent draining at most (ms). */
  maxMs: number;
  /** Time without a byte from the client after which draining stops (ms). */
  idleMs: number;
}

/**
 * Bounds in the spirit of nginx's lingering_time / lingering_timeout: enough
 * for a client that finishes writing a few MiB before it reads, not enough for
 * one that keeps sending forever to hold the connection.
 */
export const DEFAULT_LINGER: LingerLimits = { maxBytes: 16 * 1024 * 1024, maxMs: 5000, idleMs: 1000 };

type EndCallback = () => void;

/**
 * A ServerResponse that, when it ends while its request's body is still
 * unread (a refused upload: 413, 401, 400), sends its bytes at once but
 * finishes only after draining that body, within `limits`.
 *
 * Node closes the socket as soon as a `Connection: close` response is
 * written. Closing a TCP socket with unread bytes in its receive buffer (or
 * receiving more after the close) makes the kernel answer with RST, which
 * discards whatever of the response is still queued, and a client that is
 * still sending sees EPIPE or ECONNRESET instead of the answer. Reading the
 * rest first, as Apache and nginx do ("lingering close"), lets the answer
 * arrive; the bounds keep a client that never stops from holding the
 * connection.
 */
export function lingeringResponse(limits: LingerLimits = DEFAULT_LINGER) {
  return class LingeringResponse<Request extends http.IncomingMessage = http.IncomingMessage> extends http.ServerResponse<Request> {
    #lingering = false;

    override end(chunk?: any, encoding?: any, callback?: any): this {
      const req = this.req;
      if (this.#lingering) return this;
      if (req.complete || req.destroyed || this.writableEnded || this.destroyed) return super.end(chunk, encoding, callback);
      this.#lingering = true;
      let cb: EndCallback | undefined = callback;
      if (typeof chunk === 'function') [cb, chunk] = [chunk, undefined];
      else if (typeof encoding === 'function') [cb, encoding] = [encoding, undefined];
      if (chunk !== undefined && chunk !== null) {
        // end(data) would frame the body by its length; write() alone would choose chunked.
        if (!this.headersSent && !this.hasHeader('content-length')) this.setHeader('Content-Length', Buffer.byteLength(chunk, encoding));
        this.write(chunk, encoding);
      } else if (!this.headersSent) {
        this.flushHeaders();
      }
      void drain(req, limits).then(() => super.end(cb));
      return this;
    }
  };
}

/** Read and discard the rest of a body until it ends, the client goes, or a bound is reached. */
function drain(req: http.IncomingMessage, limits: LingerLimits): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (): void => {
      clearTimeout(total);
      clearTimeout(idle);
      req.off('data', onData);
      req.off('end', finish);
      req.off('close', finish);
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > limits.maxBytes) finish();
      else idle.refresh();
    };
    const total = setTimeout(finish, limits.maxMs);
    const idle = setTimeout(finish, limits.idleMs);
    req.on('data', onData);
    req.once('end', finish);
    req.once('close', finish);
    req.resume();
  });
}
