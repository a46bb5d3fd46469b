import { PassThrough, type Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';

/**
 * The request body handed on lazily: the request is piped in only when the
 * consumer first reads. Before that, a stream in between would run ahead of
 * its consumer up to its buffer size and could fail before anyone listened
 * for the error.
 */
class LazyBody extends PassThrough {
  #started = false;

  constructor(private readonly req: IncomingMessage) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _read(size: number): void {
    if (!this.#started) {
      this.#started = true;
      this.req.pipe(this);
    }
    super._read(size);
  }
}

/**
 * The request body as the stream the engine consumes. The upload limit is
 * the engine's (and the backends count against it as they consume). Backends
 * destroy what they are given when they fail; this stream takes that, so the
 * socket survives to carry the error response (and the rest of the body is
 * drained: lingering-close.ts).
 */
export function uploadBody(req: IncomingMessage): Readable {
  const body = new LazyBody(req);
  const detach = (): void => {
    req.unpipe(body);
  };
  body.once('error', detach);
  body.once('close', detach);
  req.once('error', (err) => body.destroy(err));
  req.once('aborted', () => body.destroy(new Error('the client went away during the upload')));
  return body;
}

/** The body's declared length (Content-Length), for the engine's upload limit; absent for a chunked body. */
export function declaredLength(ctx: Context): { length?: number } {
  const length = ctx.get('content-length');
  return /^\d+$/.test(length) ? { length: Number(length) } : {};
}
