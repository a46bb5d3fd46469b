import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { request } from '../support/http.js';
import { sendForever, writeThenRead, type RawResult } from '../support/raw-http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';

/** Small enough that the limit is crossed by the body bytes that come with the request head. */
const MAX_UPLOAD = 1024;

const expectError = (res: RawResult, status: number, code: string): void => {
  expect(res.status, res.error ?? JSON.stringify(res.json)).to.equal(status);
  expect(res.json?.code).to.equal(code);
};

/**
 * A body the server refuses (413) must reach the client as a 413, whether the
 * client reads while it sends or only after, and a client that never stops
 * sending must not hold the connection.
 */
describe('a refused body: the client gets the 413', () => {
  let limited: TestServer;
  const auth = { Authorization: `Bearer ${KEYS.alice}` };
  const json = { ...auth, 'Content-Type': 'application/json' };
  const bigJson = (): Buffer => Buffer.from(`{"name":"${'x'.repeat(4 * 1024 * 1024)}"}`);
  const head = (path: string): Promise<number> => request(`${limited.url}${path}`, { method: 'HEAD', token: KEYS.alice }).then((r) => r.status);

  before(async () => {
    // Short idle timeouts: a connection that stalls fails the test in seconds.
    limited = await startTestServer({ server: { max_upload_bytes: MAX_UPLOAD, read_timeout: '5s', write_timeout: '5s' } });
  });
  after(async () => {
    await limited?.stop();
  });

  // First on this server on purpose: the first upload waits for the store's first write
  // area, which is when a limit crossed before the backend read a byte used to stall the
  // request until the idle timeout.
  it('a chunked upload over server.max_upload_bytes (PUT and POST)', async () => {
    for (const method of ['PUT', 'POST']) {
      const res = await writeThenRead(limited.url, { method, path: `/v1/files/edges/chunked-${method}.bin`, headers: auth, body: randomBytes(2 * 1024 * 1024), chunked: true });
      expectError(res, 413, 'PAYLOAD_TOO_LARGE');
      expect(res.headers.connection, method).to.equal('close');
      expect(await head(`/v1/files/edges/chunked-${method}.bin`), method).to.equal(404);
    }
    expect((await request(`${limited.url}/v1/files/edges/fits.bin`, { method: 'PUT', token: KEYS.alice, body: randomBytes(MAX_UPLOAD) })).status).to.equal(201);
  });

  it('a chunked JSON body over 64 KiB (PATCH), from a client that sends it all before reading', async () => {
    const res = await writeThenRead(limited.url, { method: 'PATCH', path: '/v1/files/edges/fits.bin', headers: json, body: bigJson(), chunked: true });
    expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(res.headers.connection).to.equal('close');
    expect(await head('/v1/files/edges/fits.bin')).to.equal(200);
  });

  it('a chunked JSON body over 64 KiB (POST /v1/links/generate), from a client that sends it all before reading', async () => {
    const res = await writeThenRead(limited.url, { method: 'POST', path: '/v1/links/generate', headers: json, body: bigJson(), chunked: true });
    expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(res.headers.connection).to.equal('close');
  });

  it('a Content-Length over the limit, from a client that sends the body anyway', async () => {
    const body = randomBytes(4 * 1024 * 1024);
    const json413 = await writeThenRead(limited.url, { method: 'PATCH', path: '/v1/files/edges/fits.bin', headers: json, body, chunked: false });
    expectError(json413, 413, 'PAYLOAD_TOO_LARGE');
    const upload413 = await writeThenRead(limited.url, { method: 'PUT', path: '/v1/files/edges/declared.bin', headers: auth, body, chunked: false });
    expectError(upload413, 413, 'PAYLOAD_TOO_LARGE');
    expect(upload413.headers.connection).to.equal('close');
    expect(await head('/v1/files/edges/declared.bin')).to.equal(404);
  });

  it('a client that never stops sending gets the 413, then the server closes the connection', async () => {
    for (const [method, path, headers] of [['PATCH', '/v1/files/edges/fits.bin', json], ['PUT', '/v1/files/edges/forever.bin', auth]] as const) {
      const res = await sendForever(limited.url, { method, path, headers });
      expectError(res, 413, 'PAYLOAD_TOO_LARGE');
      expect(res.headers.connection, method).to.equal('close');
    }
    expect((await request(`${limited.url}/health`)).status).to.equal(200);
  });
});
