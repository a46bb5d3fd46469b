import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { CallfsError } from '../errors.js';

/**
 * Passes the request body through, failing with PAYLOAD_TOO_LARGE past
 * `maxBytes`. The request is piped in only when the consumer first reads:
 * before that, a transform would run ahead of its consumer up to its buffer
 * size and could fail before anyone listened for the error (a limit under
 * ~1 MiB, or a backend still choosing where to write), leaving the consumer
 * waiting on a stream that had already ended in error.
 */
class LimitedBody extends Transform {
  #seen = 0;
  #started = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly maxBytes: number,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _read(size: number): void {
    if (!this.#started) {
      this.#started = true;
      this.req.pipe(this);
    }
    super._read(size);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.maxBytes) callback(new CallfsError('PAYLOAD_TOO_LARGE', `the body is larger than the ${this.maxBytes}-byte limit`));
    else callback(null, chunk);
  }
}

/**
 * The request body as the stream a backend consumes, behind a size-limiting
 * Transform. Backends destroy what they are given when they fail; the
 * limiter takes that, so the socket survives to carry the error response
 * (and the rest of the body is drained: lingering-close.ts).
 */
export function uploadBody(req: IncomingMessage, maxBytes: number): Readable {
  const limiter = new LimitedBody(req, maxBytes);
  const detach = (): void => {
    req.unpipe(limiter);
  };
  limiter.once('error', detach);
  limiter.once('close', detach);
  req.once('error', (err) => limiter.destroy(err));
  req.once('aborted', () => limiter.destroy(new Error('the client went away during the upload')));
  return limiter;
}
