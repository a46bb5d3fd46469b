import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { uploadBody } from '../../../lib/http/upload-body.js';
import { isCallfsError } from '../../../lib/errors.js';

/** Read a stream to its end: the bytes, or the code of the error it ended with. */
function consume(stream: Readable): Promise<{ bytes: number } | { code: string }> {
  return new Promise((resolve) => {
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    stream.once('end', () => resolve({ bytes }));
    stream.once('error', (err) => resolve({ code: isCallfsError(err) ? err.code : String(err) }));
  });
}

describe('uploadBody', () => {
  it('passes a body within the limit through', async () => {
    const req = new PassThrough();
    const body = uploadBody(req as unknown as IncomingMessage, 1024);
    req.end(Buffer.alloc(1024));
    expect(await consume(body)).to.deep.equal({ bytes: 1024 });
  });

  it('fails a consumer that starts reading late with PAYLOAD_TOO_LARGE, when the body already arrived past the limit', async () => {
    const req = new PassThrough();
    req.write(Buffer.alloc(8192));
    const body = uploadBody(req as unknown as IncomingMessage, 1024);
    // A backend first finds where to write; the body is already there meanwhile.
    for (let i = 0; i < 5; i++) await nextTurn();
    expect(await consume(body)).to.deep.equal({ code: 'PAYLOAD_TOO_LARGE' });
  });
});
