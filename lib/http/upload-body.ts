import { Transform, type Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { CallfsError } from '../errors.js';

/**
 * The request body as the stream a backend consumes, behind a size-limiting
 * Transform. Backends destroy what they are given when they fail; the
 * limiter takes that, so the socket survives to carry the error response.
 */
export function uploadBody(req: IncomingMessage, maxBytes: number): Readable {
  let seen = 0;
  const limiter = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > maxBytes) callback(new CallfsError('PAYLOAD_TOO_LARGE', `the body is larger than the ${maxBytes}-byte limit`));
      else callback(null, chunk);
    },
  });
  const detach = (): void => {
    req.unpipe(limiter);
  };
  limiter.once('error', detach);
  limiter.once('close', detach);
  req.once('error', (err) => limiter.destroy(err));
  req.once('aborted', () => limiter.destroy(new Error('the client went away during the upload')));
  req.pipe(limiter);
  return limiter;
}
