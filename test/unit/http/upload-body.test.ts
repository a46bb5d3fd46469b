import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { uploadBody } from '../../../lib/http/upload-body.js';

/** Read a stream to its end: the byte count. */
function consume(stream: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    stream.once('end', () => resolve(bytes));
    stream.once('error', reject);
  });
}

describe('uploadBody', () => {
  it('passes the body through', async () => {
    const req = new PassThrough();
    const body = uploadBody(req as unknown as IncomingMessage);
    req.end(Buffer.alloc(3000));
    expect(await consume(body)).to.equal(3000);
  });

  it('takes nothing from the request until the consumer first reads', async () => {
    const req = new PassThrough();
    req.write(Buffer.alloc(8192));
    const body = uploadBody(req as unknown as IncomingMessage);
    for (let i = 0; i < 5; i++) await nextTurn();
    expect(req.readableLength, 'still in the request').to.equal(8192);
    req.end();
    expect(await consume(body)).to.equal(8192);
  });

  it('survives a consumer that destroys it: the request is left alone to carry the answer', async () => {
    const req = new PassThrough();
    const body = uploadBody(req as unknown as IncomingMessage);
    body.on('error', () => {});
    body.resume();
    req.write(Buffer.alloc(1000));
    await nextTurn();
    body.destroy(new Error('the backend gave up'));
    await nextTurn();
    expect(req.destroyed).to.equal(false);
    req.write(Buffer.alloc(1000));
    expect(req.readableLength).to.equal(1000);
  });
});
